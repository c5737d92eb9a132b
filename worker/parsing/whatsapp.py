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
    MESSAGE_SENT,
    STATUS_UPDATED,
    STATUSES,
    Event,
    Rejected,
    check_limits,
    optional_object,
    optional_text,
    parse_timestamp,
    require,
    required_id,
    required_text,
    text_length,
)
from worker.parsing.identity import contact_of, number_change
from worker.parsing.preferences import preference_event

# The agent of a message a person sent from the WhatsApp Business app (Meta's coexistence mode),
# which Meta reports as a message echo or in a history backfill: no API user sent it.
BUSINESS_APP = "business_app"


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
            parse = FIELD_PARSERS.get(change.get("field", "messages"))
            if parse is not None:
                yield from parse(change["value"], f"{path}.value", received_at)


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
    """A ``messages`` change: the contacts' messages and the statuses of the business's."""
    yield from _parse_items(value, path, received_at, (("messages", _message_event),
                                                       ("statuses", _status_event)))  # fmt: skip


def _parse_echoes(value: dict, path: str, received_at: datetime) -> Iterator[Event | Rejected]:
    """An ``smb_message_echoes`` change: messages a person sent from the WhatsApp Business app,
    which answer the contact like any other reply."""
    yield from _parse_items(value, path, received_at, (("message_echoes", _echo_event),))


def _parse_items(value: dict, path: str, received_at: datetime, kinds) -> Iterator:
    business = _business_properties(value.get("metadata"))
    for key, parse in kinds:
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


def _parse_history(value: dict, path: str, received_at: datetime) -> Iterator[Event | Rejected]:
    """A ``history`` change: the business app's past conversations, sent once when the number
    joins coexistence (Meta: up to 180 days before that day). Each message is marked
    ``is_backfill``; a chunk that only says the sync was declined (``errors``) carries none.
    Media that a later ``history`` change delivers for these messages adds no event."""
    business = _business_properties(value.get("metadata"))
    business_number = _digits(value.get("metadata", {}).get("display_phone_number"))
    chunks = value.get("history", [])
    if not isinstance(chunks, list):
        yield Rejected(f"{path}.history", "'history' is not a list", chunks)
        return
    for h, chunk in enumerate(chunks):
        threads = chunk.get("threads", []) if isinstance(chunk, dict) else None
        if not isinstance(threads, list):
            yield Rejected(f"{path}.history[{h}]", "'threads' is not a list", chunk)
            continue
        for t, thread in enumerate(threads):
            messages = thread.get("messages") if isinstance(thread, dict) else None
            if not isinstance(messages, list):
                yield Rejected(f"{path}.history[{h}].threads[{t}]", "'messages' is not a list",
                               thread)  # fmt: skip
                continue
            for m, message in enumerate(messages):
                try:
                    event = _history_event(message, thread, business_number, received_at)
                    event.properties.update(business)
                    yield check_limits(event)
                except ParseError as exc:
                    yield Rejected(f"{path}.history[{h}].threads[{t}].messages[{m}]", str(exc),
                                   message)  # fmt: skip


def _digits(value: object) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit()) if value is not None else ""


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
    user_id, props = contact_of(message, "from", "from_user_id")
    props |= {"direction": "inbound"} | _message_properties(message, message_type)
    if message_type == "system":
        props.update(number_change(message.get("system")))
    if (referral := optional_object(message, "referral")) is not None:
        props.update(_referral_properties(referral))
    return _event(MESSAGE_RECEIVED, message, user_id, props, received_at)


# The ad or post a click-to-WhatsApp message came from (`referral`), kept under these names; its
# body, media and welcome message are not kept.
REFERRAL_TEXTS = (("source_url", "referral_source_url"), ("headline", "referral_headline"),
                  ("ctwa_clid", "referral_ctwa_clid"))  # fmt: skip


def _referral_properties(referral: dict) -> dict:
    """What a message's ``referral`` says of the ad or post the contact clicked: its type and
    id (required: without them the click is attributed to nothing), URL, headline and click id."""
    props = {
        "referral_source_type": required_text(referral, "source_type", "referral"),
        "referral_source_id": required_id(referral, "source_id", "referral"),
    }
    for key, name in REFERRAL_TEXTS:
        if (found := optional_text(referral, key, "referral")) is not None:
            props[name] = found
    return props


def _event(name: str, message: dict, user_id: str, props: dict, received_at: datetime) -> Event:
    """The event of a message (a contact's, an echo, a past one): its id and time, as Meta
    writes them in each."""
    return Event(
        event_name=name,
        user_id=user_id,
        message_id=require(message, "id"),
        occurred_at=parse_timestamp(require(message, "timestamp", (str, int)), received_at),
        properties=props,
    )


def _echo_event(echo: object, received_at: datetime) -> Event:
    message_type = require(echo, "type")
    user_id, props = contact_of(echo, "to", "to_user_id")
    props |= {"direction": "outbound", "agent_id": BUSINESS_APP}
    return _event(MESSAGE_SENT, echo, user_id, props | _message_properties(echo, message_type),
                  received_at)  # fmt: skip


def _history_event(message: object, thread: dict, business: str, received_at: datetime) -> Event:
    """A past message of a thread: the business's when it names a recipient (``to``, as echoes
    do) or comes from the business's own number, the contact's otherwise."""
    message_type = require(message, "type")
    sender = message.get("from")
    if "to" in message or (business and _digits(sender) == business):
        if message.get("to") or message.get("to_user_id"):
            user_id, props = contact_of(message, "to", "to_user_id")
        else:
            user_id, props = _thread_contact(thread)
        props |= {"direction": "outbound", "agent_id": BUSINESS_APP}
        event_name = MESSAGE_SENT
    else:
        user_id, props = contact_of(message, "from", "from_user_id")
        props["direction"] = "inbound"
        event_name = MESSAGE_RECEIVED
    props |= _message_properties(message, message_type) | {"is_backfill": True}
    return _event(event_name, message, user_id, props, received_at)


def _thread_contact(thread: dict) -> tuple[str, dict]:
    """The contact of a history thread: its ``context`` (number and BSUID), or its ``id``."""
    context = thread.get("context") if isinstance(thread.get("context"), dict) else {}
    named = {"wa_id": context.get("wa_id") or thread.get("id"), "user_id": context.get("user_id")}
    return contact_of(named, "wa_id", "user_id")


def _message_properties(message: dict, message_type: str) -> dict:
    """What a message (a contact's, an echo, a past one) says about itself, without its text."""
    props = {
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
    return props


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
    if pricing is not None:
        _add_pricing(props, pricing)
    if "errors" in status:
        props.update(_error_properties(status["errors"]))
    user_id, identity = contact_of(status, "recipient_id", "recipient_user_id")
    props.update(identity)
    return Event(
        STATUS_UPDATED,
        user_id,
        require(status, "id"),
        parse_timestamp(require(status, "timestamp", (str, int)), received_at),
        name,
        props,
    )


# What a status's `pricing` says of its cost, kept under these names (docs/events.md).
PRICING_TEXTS = (("category", "pricing_category"), ("pricing_model", "pricing_model"),
                 ("type", "pricing_type"))  # fmt: skip


def _add_pricing(props: dict, pricing: object) -> None:
    """Add a status's pricing to ``props`` (what the message cost: Meta's category, model, type
    and billable); a ParseError for a pricing that is no object or holds a value of the wrong
    kind, since a cost read in part would be a wrong cost."""
    if type(pricing) is not dict:
        raise ParseError("'pricing' is not an object")
    for key, name in PRICING_TEXTS:
        found = pricing.get(key)
        if type(found) is str and found:
            props[name] = found
        elif found is not None:
            raise ParseError(f"'pricing.{key}' is not a non-empty string")
    billable = pricing.get("billable")
    if type(billable) is bool:
        props["is_billable"] = billable
    elif billable is not None:
        raise ParseError("'pricing.billable' is not true or false")


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


def _parse_preferences(value: dict, path: str, received_at: datetime) -> Iterator:
    """A ``user_preferences`` change: contacts who stopped or resumed marketing messages."""
    yield from _parse_items(value, path, received_at, (("user_preferences", preference_event),))


FIELD_PARSERS = {
    "messages": _parse_value,
    "smb_message_echoes": _parse_echoes,
    "history": _parse_history,
    "user_preferences": _parse_preferences,
}
