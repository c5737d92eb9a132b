"""WhatsApp Business Cloud API webhooks (Meta): verification handshake and notifications."""

from flask import Blueprint, current_app, request

from ingest_service.intake import Webhook
from wa_analytics.core import signing
from wa_analytics.core.config import Settings

blueprint = Blueprint("whatsapp", __name__)

PATH = "/webhooks/whatsapp"
SIGNATURE_HEADER = "X-Hub-Signature-256"
WHATSAPP_OBJECT = "whatsapp_business_account"


def webhook(settings: Settings) -> Webhook:
    """Notifications (POST), served by ``ingest_service.intake.Intake``."""
    return Webhook("whatsapp", settings.whatsapp_app_secret, SIGNATURE_HEADER, refuse, True)


def refuse(payload: object) -> str | None:
    if not isinstance(payload, dict) or payload.get("object") != WHATSAPP_OBJECT:
        return f"unknown object; expected {WHATSAPP_OBJECT!r}"
    return None


@blueprint.get(PATH)
def verify_subscription():
    """Meta's handshake: echo ``hub.challenge`` when the verify token matches."""
    token = current_app.extensions["wa_settings"].whatsapp_verify_token
    given = request.args.get("hub.verify_token", "")
    if (
        request.args.get("hub.mode") == "subscribe"
        and token
        and signing.constant_time_equal(given, token)
    ):
        return request.args.get("hub.challenge", ""), 200, {"Content-Type": "text/plain"}
    return {"error": "forbidden", "reason": "verify token does not match"}, 403
