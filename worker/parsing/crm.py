"""The CRM's webhook (docs/webhooks/crm-webhook.schema.json) → one event."""

from datetime import datetime

from worker.parsing.errors import ParseError
from worker.parsing.event import (
    MESSAGE_RECEIVED,
    MESSAGE_SENT,
    STATUS_UPDATED,
    STATUSES,
    Event,
    check_limits,
    optional_object,
    optional_text,
    parse_timestamp,
    require,
    required_id,
    required_text,
    text_length,
)
from worker.phones import crm_phone_to_e164

EVENT_NAMES = {
    "whatsapp.message.received": MESSAGE_RECEIVED,
    "whatsapp.message.sent": MESSAGE_SENT,
    "whatsapp.status.updated": STATUS_UPDATED,
}


def parse_crm_event(
    payload: dict, received_at: datetime, default_region: str | None = None
) -> Event:
    crm_event = payload.get("event")
    if crm_event not in EVENT_NAMES:
        raise ParseError(f"unknown event {crm_event!r}")
    event_name = EVENT_NAMES[crm_event]
    contact = require(payload, "contact", dict)
    message = require(payload, "message", dict)
    props: dict = {"direction": "inbound" if event_name == MESSAGE_RECEIVED else "outbound"}
    status = None
    if event_name == STATUS_UPDATED:
        status = require(payload, "status")
        if status not in STATUSES:
            raise ParseError(
                f"unknown status {status!r}; expected one of {', '.join(sorted(STATUSES))}"
            )
        props["status"] = status
    else:
        media = message.get("media")
        message_type = message.get("type") if isinstance(message.get("type"), str) else None
        props["message_type"] = message_type or ("media" if media else "text")
        caption = media.get("caption") if isinstance(media, dict) else None
        props["content_length"] = text_length(message.get("text")) or text_length(caption)
        props["has_media"] = bool(media)
        if isinstance(media, dict) and isinstance(media.get("mime_type"), str):
            props["media_mime_type"] = media["mime_type"]
    agent = payload.get("agent")
    if event_name == MESSAGE_SENT and isinstance(agent, dict) and agent.get("id") is not None:
        props["agent_id"] = str(agent["id"])
    if event_name == MESSAGE_SENT:
        props.update(_template_properties(message) | _campaign_properties(payload))
    error = payload.get("error")
    if isinstance(error, dict):
        if isinstance(error.get("code"), int) and not isinstance(error["code"], bool):
            props["error_code"] = error["code"]
        if isinstance(error.get("title"), str):
            props["error_title"] = error["title"]
    timestamp = payload.get("timestamp")
    if timestamp is None:
        raise ParseError("'timestamp' is missing")
    event = Event(
        event_name=event_name,
        user_id=crm_phone_to_e164(require(contact, "phone", (str, int)), default_region),
        message_id=require(message, "id"),
        status=status,
        occurred_at=parse_timestamp(timestamp, received_at),
        properties=props,
    )
    return check_limits(event)


def _template_properties(message: dict) -> dict:
    """The template a send used (``message.template``: its name, and language and category when
    given); a template without a name is refused, since its sends would count under none."""
    template = optional_object(message, "template")
    if template is None:
        return {}
    props = {"template_name": required_text(template, "name", "template")}
    for key in ("language", "category"):
        if (found := optional_text(template, key, "template")) is not None:
            props[f"template_{key}"] = found
    return props


def _campaign_properties(payload: dict) -> dict:
    """The campaign a send belongs to (``campaign``: its id, a string or an integer kept as a
    string, and its name when given)."""
    campaign = optional_object(payload, "campaign")
    if campaign is None:
        return {}
    props = {"campaign_id": required_id(campaign, "id", "campaign")}
    if (name := optional_text(campaign, "name", "campaign")) is not None:
        props["campaign_name"] = name
    return props
