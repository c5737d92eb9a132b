"""Strip message text (and other things people wrote) from a delivery before it is stored.

Deliveries are kept "verbatim" so events can be re-derived after a parser fix, but message text
must never be stored. Each piece of text is replaced by ``{"redacted_length": n}``, which the
parsers read as a text of length n, so re-deriving gives the same ``content_length``.
"""

import re
from collections.abc import Callable

from worker.parsing.errors import ParseError
from worker.parsing.identity import region_of
from worker.phones import (
    UNPARSEABLE_PREFIX,
    PhoneRules,
    crm_phone_to_e164,
    pseudonymise,
    whatsapp_id_to_e164,
)

# Keys inside a message's content that are identifiers or structure, not what a person wrote.
STRUCTURAL_KEYS = frozenset(
    {"id", "type", "mime_type", "sha256", "animated", "voice", "message_id", "filename_length"}
)
# A message's keys kept as they are (a contact's message, a business app's echo, a past message
# of a history backfill); its content (the key named by its type) is redacted but for the keys
# above, and a system message keeps the ids it names (a number change's new number and BSUIDs).
MESSAGE_KEYS_KEPT = frozenset(
    {"from", "to", "id", "timestamp", "type", "context", "errors", "from_user_id",
     "from_parent_user_id", "to_user_id", "to_parent_user_id", "history_context"}
)  # fmt: skip
# A click-to-WhatsApp message's ``referral`` keeps the ad's ids, type, link and headline (the
# advertiser's words); its body and welcome message are redacted like text.
REFERRAL_KEYS_KEPT = frozenset(
    {"source_url", "source_id", "source_type", "headline", "ctwa_clid", "media_type"}
)
SYSTEM_KEYS_KEPT = frozenset(
    {"type", "wa_id", "new_wa_id", "user_id", "parent_user_id", "previous_user_id",
     "previous_parent_user_id"}
)  # fmt: skip
# The keys of a Cloud API notification kept at each level: structure, ids and Meta's own words.
# Any other key's value is redacted like text: a field Meta adds (the message echoes of a
# business app, say) or a sender invents may hold what people wrote. Contacts and messages are
# kept item by item, their text redacted.
PAYLOAD_KEYS_KEPT = frozenset({"object", "entry"})
ENTRY_KEYS_KEPT = frozenset({"id", "time", "changes"})
CHANGE_KEYS_KEPT = frozenset({"field", "value"})
VALUE_KEYS_WITHOUT_TEXT = frozenset({"messaging_product", "metadata", "statuses", "errors"})
# Inside a value, the metadata and each status keep these keys (and the inner objects named
# here, these of theirs): a status may carry more, such as `biz_opaque_callback_data`, which
# the business that sent the message writes as it likes.
METADATA_KEYS_KEPT = frozenset({"display_phone_number", "phone_number_id"})
STATUS_KEYS_KEPT = frozenset(
    {"id", "status", "timestamp", "recipient_id", "recipient_type", "type", "conversation",
     "pricing", "errors", "recipient_user_id", "recipient_parent_user_id",
     "parent_recipient_user_id"}
)  # fmt: skip
# A history backfill (field `history`) keeps each chunk's progress and errors, each thread's
# contact ids (not the username) and its messages, redacted as messages are.
HISTORY_CHUNK_KEYS_KEPT = frozenset({"metadata", "errors"})
# A preference change (field `user_preferences`) keeps the contact's ids and what changed; its
# `detail` (a sentence) is redacted.
PREFERENCE_KEYS_KEPT = frozenset(
    {"wa_id", "user_id", "parent_user_id", "category", "value", "timestamp"}
)
THREAD_KEYS_KEPT = frozenset({"id"})
THREAD_CONTEXT_KEYS_KEPT = frozenset({"wa_id", "user_id", "parent_user_id"})
CONVERSATION_KEYS_KEPT = frozenset({"id", "origin", "expiration_timestamp"})
STATUS_INNER_KEYS_KEPT = {
    "conversation": CONVERSATION_KEYS_KEPT,
    "pricing": frozenset({"billable", "pricing_model", "category", "type"}),
}
# The CRM event's keys kept as they are; contact, message, agent and error keep their ids only.
CRM_KEYS_KEPT = frozenset({"event", "timestamp", "status"})
CRM_INNER_KEYS_KEPT = {
    "contact": frozenset({"phone"}),
    "message": frozenset({"id", "type", "template"}),
    "agent": frozenset({"id"}),
    "error": frozenset({"code", "title"}),
}
# A send's template (inside `message`) and campaign: names and ids a business chose, no one's text.
TEMPLATE_KEYS_KEPT = frozenset({"name", "language", "category"})
CAMPAIGN_KEYS_KEPT = frozenset({"id", "name"})
# Where a delivery stored with its numbers hashed keeps each pseudonym's region, which the
# number no longer shows (the event's `contact_region` is read from it on re-derivation).
PSEUDONYM_REGIONS_KEY = "pseudonym_regions"
REGION = re.compile(r"[A-Z]{2}")


def holds_no_text(payload: dict) -> bool:
    """Whether a Cloud API notification has nothing to redact: every key at every level is one
    kept as it is (a campaign's status notifications), so it can be stored as received."""
    entries = payload.get("entry")
    if not payload.keys() <= PAYLOAD_KEYS_KEPT or not isinstance(entries, list):
        return False
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list) or not entry.keys() <= ENTRY_KEYS_KEPT:
            return False
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict) or not change.keys() <= CHANGE_KEYS_KEPT:
                return False
            if not value.keys() <= VALUE_KEYS_WITHOUT_TEXT or not _holds_no_text(value):
                return False
    return True


def _holds_no_text(value: dict) -> bool:
    """Whether a value's metadata and statuses hold only the keys kept as they are."""
    metadata, statuses = value.get("metadata", {}), value.get("statuses", [])
    if not isinstance(metadata, dict) or not metadata.keys() <= METADATA_KEYS_KEPT:
        return False
    if not isinstance(statuses, list):
        return False
    for status in statuses:
        if not isinstance(status, dict) or not status.keys() <= STATUS_KEYS_KEPT:
            return False
        for key, kept in STATUS_INNER_KEYS_KEPT.items():
            inner = status.get(key, {})
            if not isinstance(inner, dict) or not inner.keys() <= kept:
                return False
    return True


def redact_whatsapp(payload: dict) -> dict:
    """A copy of a Cloud API notification with texts, profile names and shared content removed.

    Only the containers on the way to what changes are copied (a deep copy cost more than all the
    parsing); what is kept unchanged (statuses, metadata) is shared with ``payload``.
    """
    result = _kept(payload, PAYLOAD_KEYS_KEPT)
    if isinstance(result.get("entry"), list):
        result["entry"] = [_redact_entry(entry) for entry in result["entry"]]
    return result


def _kept(mapping: dict, kept: frozenset) -> dict:
    """A copy of ``mapping`` with the values of keys not in ``kept`` redacted."""
    return {key: value if key in kept else _redact_content(value) for key, value in mapping.items()}


def _redact_entry(entry: object) -> object:
    if not isinstance(entry, dict):
        return _redact_content(entry)
    entry = _kept(entry, ENTRY_KEYS_KEPT)
    if isinstance(entry.get("changes"), list):
        entry["changes"] = [_redact_change(change) for change in entry["changes"]]
    return entry


def _redact_change(change: object) -> object:
    if not isinstance(change, dict):
        return _redact_content(change)
    change = _kept(change, CHANGE_KEYS_KEPT)
    if not isinstance(change.get("value"), dict):
        return change
    value = _kept(
        change["value"],
        VALUE_KEYS_WITHOUT_TEXT
        | {"contacts", "messages", "message_echoes", "history", "user_preferences"},
    )
    if "metadata" in value:
        value["metadata"] = _kept_dict(value["metadata"], METADATA_KEYS_KEPT)
    _redact_each(value, "statuses", _redact_status)
    if isinstance(value.get("contacts"), list):
        value["contacts"] = [
            contact | {"profile": _redact_content(contact["profile"])}
            if isinstance(contact, dict) and isinstance(contact.get("profile"), dict)
            else contact
            for contact in value["contacts"]
        ]
    elif "contacts" in value:
        value["contacts"] = _redact_content(value["contacts"])
    _redact_each(value, "messages", _redact_message)
    _redact_each(value, "message_echoes", _redact_message)
    if "history" in value:
        value["history"] = _redact_history(value["history"])
    _redact_each(value, "user_preferences", lambda item: _kept_dict(item, PREFERENCE_KEYS_KEPT))
    change["value"] = value
    return change


def _redact_history(chunks: object) -> object:
    if not isinstance(chunks, list):
        return _redact_content(chunks)
    redacted = []
    for chunk in chunks:
        if not isinstance(chunk, dict):
            redacted.append(_redact_content(chunk))
            continue
        kept = _kept(chunk, HISTORY_CHUNK_KEYS_KEPT | {"threads"})
        _redact_each(kept, "threads", _redact_thread)
        redacted.append(kept)
    return redacted


def _redact_thread(thread: object) -> object:
    if not isinstance(thread, dict):
        return _redact_content(thread)
    kept = _kept(thread, THREAD_KEYS_KEPT | {"context", "messages"})
    if "context" in kept:
        kept["context"] = _kept_dict(kept["context"], THREAD_CONTEXT_KEYS_KEPT)
    _redact_each(kept, "messages", _redact_message)
    return kept


def _redact_each(mapping: dict, key: str, redact) -> None:
    """Redact each item of the list ``mapping[key]`` with ``redact``; anything but a list whole."""
    if isinstance(mapping.get(key), list):
        mapping[key] = [redact(item) for item in mapping[key]]
    elif key in mapping:
        mapping[key] = _redact_content(mapping[key])


def _redact_status(status: object) -> object:
    status = _kept_dict(status, STATUS_KEYS_KEPT)
    if isinstance(status, dict):
        if "conversation" in status:
            status["conversation"] = _kept_dict(status["conversation"], CONVERSATION_KEYS_KEPT)
        if "pricing" in status:
            status["pricing"] = _kept_object(status["pricing"], STATUS_INNER_KEYS_KEPT["pricing"])
    return status


def _kept_dict(value: object, kept: frozenset) -> object:
    """``_kept`` for what should be an object; anything else is redacted whole."""
    return _kept(value, kept) if isinstance(value, dict) else _redact_content(value)


def _kept_object(value: object, kept: frozenset) -> object:
    """``_kept`` for an object the parser refuses when it is malformed (a status's pricing, an
    ad's referral, a send's template and campaign): what is redacted stays refused. Anything but
    an object is redacted whole inside a list (a redacted text is an object), and so is a kept
    key's value that is an object or a list (which may hold text)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return [_redact_content(value)]
    return {
        key: inner if key in kept and not isinstance(inner, dict | list) else _redact_content(inner)
        for key, inner in value.items()
    }


def redact_crm(payload: dict) -> dict:
    """A copy of a CRM event with the message text, caption, names and any key it does not
    know redacted: only the event, its times, ids, the contact's number, error, template and
    campaign are kept."""
    result = _kept(payload, CRM_KEYS_KEPT | CRM_INNER_KEYS_KEPT.keys() | {"campaign"})
    for key, kept in CRM_INNER_KEYS_KEPT.items():
        if key in result:
            result[key] = _kept_dict(result[key], kept)
    message = result.get("message")
    if isinstance(message, dict) and "template" in message:
        message["template"] = _kept_object(message["template"], TEMPLATE_KEYS_KEPT)
    if "campaign" in result:
        result["campaign"] = _kept_object(result["campaign"], CAMPAIGN_KEYS_KEPT)
    return result


def _redact_message(message: object) -> object:
    if not isinstance(message, dict):
        return _redact_content(message)
    return {
        key: value
        if key in MESSAGE_KEYS_KEPT
        else _kept_dict(value, SYSTEM_KEYS_KEPT)
        if key == "system" and message.get("type") == "system"
        else _kept_object(value, REFERRAL_KEYS_KEPT)
        if key == "referral"
        else _redact_content(value)
        for key, value in message.items()
    }


def _redact_content(value: object) -> object:
    if isinstance(value, dict):
        return {
            key: inner
            if key in STRUCTURAL_KEYS and isinstance(inner, str | int | bool)
            else _redact_content(inner)
            for key, inner in value.items()
        }
    if isinstance(value, list):
        return [_redact_content(item) for item in value]
    if isinstance(value, str):
        return {"redacted_length": len(value)}
    if isinstance(value, bool) or value is None:
        return value
    # Numbers a person shared (a location's coordinates) are personal too.
    return None


def _dicts(value: object) -> list[dict]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def pseudonymise_phones(stored: dict, source: str, rules: PhoneRules) -> dict:
    """Replace every contact number in a (redacted) delivery by its keyed hash, or by the reason
    it does not parse, so that re-deriving gives the same user ids and the same quarantine.

    Changes ``stored`` (a result of ``redact_*``) in place, copying the items it changes, which
    may still be shared with the received payload. The region of each number (which its
    pseudonym no longer shows) is recorded in ``stored``, for ``recorded_regions``.
    """
    regions: dict[str, str] = {}

    def pseudonym(number: object, crm: bool = False) -> str:
        try:
            if crm:
                e164 = crm_phone_to_e164(number, rules.default_region)
            else:
                e164 = whatsapp_id_to_e164(number)
        except ParseError as exc:
            return UNPARSEABLE_PREFIX + str(exc)
        hashed = pseudonymise(e164, rules.hash_key)
        if (region := region_of(e164)) is not None:
            regions[hashed] = region
        return hashed

    _pseudonymise_numbers(stored, source, pseudonym)
    stored.pop(PSEUDONYM_REGIONS_KEY, None)  # a sender's own key of that name (redacted)
    if regions:
        stored[PSEUDONYM_REGIONS_KEY] = regions
    return stored


def recorded_regions(stored: dict) -> dict[str, str]:
    """The regions ``pseudonymise_phones`` recorded in a stored delivery, by pseudonym (none for
    a delivery stored without hashing, or before regions were recorded)."""
    found = stored.get(PSEUDONYM_REGIONS_KEY)
    if not isinstance(found, dict):
        return {}
    return {key: region for key, region in found.items()
            if type(region) is str and REGION.fullmatch(region)}  # fmt: skip


def _pseudonymise_numbers(stored: dict, source: str, pseudonym: Callable) -> None:
    if source == "crm":
        contact = stored.get("contact")
        if isinstance(contact, dict) and "phone" in contact:
            contact["phone"] = pseudonym(contact["phone"], crm=True)
        return
    for entry in _dicts(stored.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            business = value.get("metadata", {})
            business = business.get("display_phone_number") if isinstance(business, dict) else None
            for key, fields in (("messages", ("from",)), ("statuses", ("recipient_id",)),
                                ("contacts", ("wa_id",)), ("message_echoes", ("to",)),
                                ("user_preferences", ("wa_id",))):  # fmt: skip
                if isinstance(value.get(key), list):
                    value[key] = [_pseudonymised(item, fields, pseudonym) for item in value[key]]
            for chunk in _dicts(value.get("history")):
                if isinstance(chunk.get("threads"), list):
                    threads = chunk["threads"]
                    chunk["threads"] = [
                        _pseudonymised_thread(thread, business, pseudonym) for thread in threads
                    ]


def _pseudonymised(item: object, fields: tuple, pseudonym: Callable, business=None) -> object:
    """A copy of ``item`` with the numbers under ``fields`` (and a number change's new number)
    replaced by their pseudonyms; the business's own number is no contact's and stays."""
    if not isinstance(item, dict):
        return item
    item = item | {
        field: pseudonym(item[field])
        for field in fields
        if field in item and (business is None or item[field] != business)
    }
    if isinstance(item.get("system"), dict):
        system = item["system"]
        item["system"] = system | {
            field: pseudonym(system[field]) for field in ("wa_id", "new_wa_id") if system.get(field)
        }
    return item


def _pseudonymised_thread(thread: object, business: object, pseudonym: Callable) -> object:
    if not isinstance(thread, dict):
        return thread
    thread = _pseudonymised(thread, ("id",), pseudonym)
    if isinstance(thread.get("context"), dict):
        thread["context"] = _pseudonymised(thread["context"], ("wa_id",), pseudonym)
    if isinstance(thread.get("messages"), list):
        thread["messages"] = [
            _pseudonymised(message, ("from", "to"), pseudonym, business)
            for message in thread["messages"]
        ]
    return thread
