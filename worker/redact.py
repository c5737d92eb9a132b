"""Strip message text (and other things people wrote) from a delivery before it is stored.

Deliveries are kept "verbatim" so events can be re-derived after a parser fix, but message text
must never be stored. Each piece of text is replaced by ``{"redacted_length": n}``, which the
parsers read as a text of length n, so re-deriving gives the same ``content_length``.
"""

from worker.parsing.errors import ParseError
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
MESSAGE_KEYS_KEPT = frozenset({"from", "id", "timestamp", "type", "context", "errors"})
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
     "pricing", "errors"}
)  # fmt: skip
STATUS_INNER_KEYS_KEPT = {
    "conversation": frozenset({"id", "origin", "expiration_timestamp"}),
    "pricing": frozenset({"billable", "pricing_model", "category", "type"}),
}
# The CRM event's keys kept as they are; contact, message, agent and error keep their ids only.
CRM_KEYS_KEPT = frozenset({"event", "timestamp", "status"})
CRM_INNER_KEYS_KEPT = {
    "contact": frozenset({"phone"}),
    "message": frozenset({"id", "type"}),
    "agent": frozenset({"id"}),
    "error": frozenset({"code", "title"}),
}


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
    value = _kept(change["value"], VALUE_KEYS_WITHOUT_TEXT | {"contacts", "messages"})
    if "metadata" in value:
        value["metadata"] = _kept_dict(value["metadata"], METADATA_KEYS_KEPT)
    if isinstance(value.get("statuses"), list):
        value["statuses"] = [_redact_status(status) for status in value["statuses"]]
    elif "statuses" in value:
        value["statuses"] = _redact_content(value["statuses"])
    if isinstance(value.get("contacts"), list):
        value["contacts"] = [
            contact | {"profile": _redact_content(contact["profile"])}
            if isinstance(contact, dict) and isinstance(contact.get("profile"), dict)
            else contact
            for contact in value["contacts"]
        ]
    elif "contacts" in value:
        value["contacts"] = _redact_content(value["contacts"])
    if isinstance(value.get("messages"), list):
        value["messages"] = [_redact_message(message) for message in value["messages"]]
    elif "messages" in value:
        value["messages"] = _redact_content(value["messages"])
    change["value"] = value
    return change


def _redact_status(status: object) -> object:
    status = _kept_dict(status, STATUS_KEYS_KEPT)
    for key, kept in STATUS_INNER_KEYS_KEPT.items():
        if isinstance(status, dict) and key in status:
            status[key] = _kept_dict(status[key], kept)
    return status


def _kept_dict(value: object, kept: frozenset) -> object:
    """``_kept`` for what should be an object; anything else is redacted whole."""
    return _kept(value, kept) if isinstance(value, dict) else _redact_content(value)


def redact_crm(payload: dict) -> dict:
    """A copy of a CRM event with the message text, caption, names and any key it does not
    know redacted: only the event, its times, ids, the contact's number and error are kept."""
    result = _kept(payload, CRM_KEYS_KEPT | CRM_INNER_KEYS_KEPT.keys())
    for key, kept in CRM_INNER_KEYS_KEPT.items():
        if key in result:
            result[key] = _kept_dict(result[key], kept)
    return result


def _redact_message(message: object) -> object:
    if not isinstance(message, dict):
        return _redact_content(message)
    return {
        key: value if key in MESSAGE_KEYS_KEPT else _redact_content(value)
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
    may still be shared with the received payload.
    """
    if source == "crm":
        contact = stored.get("contact")
        if isinstance(contact, dict) and "phone" in contact:
            contact["phone"] = _pseudonym(contact["phone"], rules, crm=True)
        return stored
    for entry in _dicts(stored.get("entry")):
        for change in _dicts(entry.get("changes")):
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            for key, field in (("messages", "from"), ("statuses", "recipient_id"),
                               ("contacts", "wa_id")):  # fmt: skip
                if isinstance(value.get(key), list):
                    value[key] = [
                        item | {field: _pseudonym(item[field], rules, crm=False)}
                        if isinstance(item, dict) and field in item
                        else item
                        for item in value[key]
                    ]
    return stored


def _pseudonym(number: object, rules: PhoneRules, crm: bool) -> str:
    try:
        if crm:
            e164 = crm_phone_to_e164(number, rules.default_region)
        else:
            e164 = whatsapp_id_to_e164(number)
    except ParseError as exc:
        return UNPARSEABLE_PREFIX + str(exc)
    return pseudonymise(e164, rules.hash_key)
