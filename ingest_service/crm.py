"""The CRM's own webhook (format: docs/webhooks/crm-webhook.schema.json)."""

from ingest_service.intake import Webhook
from wa_analytics.core.config import Settings

PATH = "/webhooks/crm"
SIGNATURE_HEADER = "X-Signature-256"
CRM_EVENTS = frozenset(
    {"whatsapp.message.received", "whatsapp.message.sent", "whatsapp.status.updated"}
)


def webhook(settings: Settings) -> Webhook:
    """Served by ``ingest_service.intake.Intake`` (POST only)."""
    return Webhook("crm", settings.crm_webhook_secret, SIGNATURE_HEADER, refuse)


def refuse(payload: object) -> str | None:
    event = payload.get("event") if isinstance(payload, dict) else None
    if not isinstance(event, str) or event not in CRM_EVENTS:
        return "unknown event; expected one of " + ", ".join(sorted(CRM_EVENTS))
    return None
