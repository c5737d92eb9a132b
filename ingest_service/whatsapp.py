"""WhatsApp Business Cloud API webhooks (Meta): verification handshake and notifications."""

from flask import Blueprint, current_app, request

from ingest_service.intake import Refusal, enqueue, read_signed_json, refusal_response
from wa_analytics import signing

blueprint = Blueprint("whatsapp", __name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
WHATSAPP_OBJECT = "whatsapp_business_account"


@blueprint.get("/webhooks/whatsapp")
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


@blueprint.post("/webhooks/whatsapp")
def receive_notification():
    secret = current_app.extensions["wa_settings"].whatsapp_app_secret
    try:
        body, payload = read_signed_json(secret, SIGNATURE_HEADER)
        if not isinstance(payload, dict) or payload.get("object") != WHATSAPP_OBJECT:
            raise Refusal(422, f"unknown object; expected {WHATSAPP_OBJECT!r}")
    except Refusal as refusal:
        return refusal_response(refusal)
    return enqueue("whatsapp", body)
