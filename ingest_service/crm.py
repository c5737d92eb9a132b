"""The CRM's own webhook (format: docs/webhooks/crm-webhook.schema.json)."""

from flask import Blueprint, current_app

from ingest_service.intake import Refusal, enqueue, read_signed_json, refusal_response

blueprint = Blueprint("crm", __name__)

SIGNATURE_HEADER = "X-Signature-256"
CRM_EVENTS = frozenset(
    {"whatsapp.message.received", "whatsapp.message.sent", "whatsapp.status.updated"}
)


@blueprint.post("/webhooks/crm")
def receive_event():
    secret = current_app.extensions["wa_settings"].crm_webhook_secret
    try:
        body, payload = read_signed_json(secret, SIGNATURE_HEADER)
        if not isinstance(payload, dict) or payload.get("event") not in CRM_EVENTS:
            raise Refusal(422, "unknown event; expected one of " + ", ".join(sorted(CRM_EVENTS)))
    except Refusal as refusal:
        return refusal_response(refusal)
    return enqueue("crm", body)
