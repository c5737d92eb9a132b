"""WhatsApp Business Cloud API notifications → events.

One delivery can batch several entries, changes, messages and statuses; each becomes an event, and
an item that cannot be parsed is rejected on its own without holding back its neighbours.
"""

from collections.abc import Iterator
from datetime import datetime
from functools import lru_cache

from worker.parsing.errors import ParseError
from worker.parsing.event import (
    MEDIA_TYPES,
    MESSAGE_RECEIVED,
    STATUS_UPDATED,
    STATUSES,
    Event,
    Rejected,
    check_limits,
    parse_timestamp,
    require,
    text_length,
)
from worker.phones import whatsapp_id_to_e164


def parse_notification(payload: dict, received_at: datetime) -> Iterator[Event | Rejected]:
    entries = payload.get("entry")
    if not isinstance(entries, list):
        yield Rejected("$", "'entry' is missing or not a list", payload)
        return
    for e, entry in enumerate(entries):
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            yield Rejected(f"entry[{e}]", "'changes' is missing or not a list", entry)
            continue
        for c, change in enumerate(changes):
            path = f"entry[{e}].changes[{c}]"
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                yield Rejected(path, "'value' is missing or not an object", change)
                continue
            # Other subscribed fields (template status, account updates) carry no messages.
            if change.get("field", "messages") != "messages":
                continue
            yield from _parse_value(change["value"], f"{path}.value", received_at)


def single_status(payload: dict) -> tuple[dict, dict] | None:
    """``(value, status)`` when the notification carries one status and nothing else, as Meta
    sends nearly every outbound message's sent, delivered and read; None for any other shape.

    A campaign's traffic is almost all such notifications: for them the worker skips the general
    walk below (and the search for text to redact), which cost as much as parsing the status.
    """
    try:
        (entry,) = payload["entry"]
        (change,) = entry["changes"]
        value = change["value"]
        (status,) = value["statuses"]
    except (KeyError, TypeError, ValueError):
        return None
    if (
        type(status) is not dict
        or "messages" in value
        or "contacts" in value
        or change.get("field", "messages") != "messages"
    ):
        return None
    return value, status


def status_event(value: dict, status: dict, received_at: datetime) -> Event:
    """The event of one status in ``value`` (a change's value), with the business's number."""
    event = _status_event(status, received_at)
    event.properties.update(_business_properties(value.get("metadata")))
    return check_limits(event)


def _parse_value(value: dict, path: str, received_at: datetime) -> Iterator[Event | Rejected]:
    business = _business_properties(value.get("metadata"))
    for key, parse in (("messages", _message_event), ("statuses", _status_event)):
        items = value.get(key, [])
        if not isinstance(items, list):
            yield Rejected(f"{path}.{key}", f"'{key}' is not a list", items)
            continue
        for i, item in enumerate(items):
            try:
                event = parse(item, received_at)
                event.properties.update(business)
                yield check_limits(event)
            except ParseError as exc:
                yield Rejected(f"{path}.{key}[{i}]", str(exc), item)


def _business_properties(metadata: object) -> dict:
    """The business's number ids, as properties (the dict is shared: copy it to change it)."""
    if not isinstance(metadata, dict):
        return {}
    ids = (metadata.get("phone_number_id"), metadata.get("display_phone_number"))
    if type(ids[0]) is str and type(ids[1]) is str:
        # One business number sends a campaign: its properties are built once.
        return _number_properties(*ids)
    return _read_business_properties(metadata)


@lru_cache(maxsize=256)
def _number_properties(phone_number_id: str, display_phone_number: str) -> dict:
    return _read_business_properties(
        {"phone_number_id": phone_number_id, "display_phone_number": display_phone_number}
    )


def _read_business_properties(metadata: dict) -> dict:
    props = {}
    for key in ("phone_number_id", "display_phone_number"):
        if isinstance(metadata.get(key), str | int):
            props[f"business_{key}"] = str(metadata[key])
    return props


def _message_event(message: object, received_at: datetime) -> Event:
    message_type = require(message, "type")
    props = {
        "direction": "inbound",
        "message_type": message_type,
        "content_length": _content_length(message, message_type),
        "has_media": message_type in MEDIA_TYPES,
    }
    content = message.get(message_type)
    if message_type in MEDIA_TYPES and isinstance(content, dict) and content.get("mime_type"):
        props["media_mime_type"] = str(content["mime_type"])
    if message_type == "reaction" and isinstance(content, dict) and content.get("message_id"):
        props["reaction_message_id"] = str(content["message_id"])
    context = message.get("context")
    if isinstance(context, dict):
        if context.get("id"):
            props["context_message_id"] = str(context["id"])
        if context.get("forwarded") or context.get("frequently_forwarded"):
            props["is_forwarded"] = True
    props.update(_error_properties(message.get("errors")))
    return Event(
        event_name=MESSAGE_RECEIVED,
        user_id=whatsapp_id_to_e164(require(message, "from", (str, int))),
        message_id=require(message, "id"),
        occurred_at=parse_timestamp(require(message, "timestamp", (str, int)), received_at),
        properties=props,
    )


def _content_length(message: dict, message_type: str) -> int:
    """Length of the text a person wrote or chose; media count their caption."""
    content = message.get(message_type)
    if not isinstance(content, dict):
        return 0
    if message_type == "text":
        return text_length(content.get("body"))
    if message_type in MEDIA_TYPES:
        return text_length(content.get("caption"))
    if message_type == "button":
        return text_length(content.get("text"))
    if message_type == "interactive":
        reply = content.get(content.get("type")) if isinstance(content.get("type"), str) else None
        return text_length(reply.get("title")) if isinstance(reply, dict) else 0
    if message_type == "reaction":
        return text_length(content.get("emoji"))
    if message_type in ("order", "system"):
        return text_length(content.get("text") or content.get("body"))
    return 0


def _status_event(status: object, received_at: datetime) -> Event:
    name = require(status, "status")
    if name not in STATUSES:
        raise ParseError(f"unknown status {name!r}; expected one of {', '.join(sorted(STATUSES))}")
    props = {"direction": "outbound", "status": name}
    # Read with as few steps as the checks allow: a campaign brings hundreds of thousands.
    conversation = status.get("conversation")
    if isinstance(conversation, dict):
        if found := conversation.get("id"):
            props["conversation_id"] = str(found)
        origin = conversation.get("origin")
        if isinstance(origin, dict) and (found := origin.get("type")):
            props["conversation_origin_type"] = str(found)
    pricing = status.get("pricing")
    if isinstance(pricing, dict):
        if found := pricing.get("category"):
            props["pricing_category"] = str(found)
        if found := pricing.get("pricing_model"):
            props["pricing_model"] = str(found)
        if isinstance(found := pricing.get("billable"), bool):
            props["is_billable"] = found
    if "errors" in status:
        props.update(_error_properties(status["errors"]))
    return Event(
        STATUS_UPDATED,
        whatsapp_id_to_e164(require(status, "recipient_id", (str, int))),
        require(status, "id"),
        parse_timestamp(require(status, "timestamp", (str, int)), received_at),
        name,
        props,
    )


def _error_properties(errors: object) -> dict:
    """The first error Meta reports (it sends one per failure in practice)."""
    if not isinstance(errors, list) or not errors or not isinstance(errors[0], dict):
        return {}
    error = errors[0]
    props = {}
    if isinstance(error.get("code"), int) and not isinstance(error.get("code"), bool):
        props["error_code"] = error["code"]
    if isinstance(error.get("title"), str):
        props["error_title"] = error["title"]
    return props
