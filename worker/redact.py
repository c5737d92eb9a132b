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


def redact_whatsapp(payload: dict) -> dict:
    """A copy of a Cloud API notification with texts, profile names and shared content removed.

    Only the containers on the way to what changes are copied (a deep copy cost more than all the
    parsing); what is kept unchanged (statuses, metadata) is shared with ``payload``.
    """
    result = dict(payload)
    if isinstance(result.get("entry"), list):
        result["entry"] = [_redact_entry(entry) for entry in result["entry"]]
    return result


def _redact_entry(entry: object) -> object:
    if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
        return entry
    return entry | {"changes": [_redact_change(change) for change in entry["changes"]]}


def _redact_change(change: object) -> object:
    if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
        return change
    value = dict(change["value"])
    if isinstance(value.get("contacts"), list):
        value["contacts"] = [
            contact | {"profile": _redact_content(contact["profile"])}
            if isinstance(contact, dict) and isinstance(contact.get("profile"), dict)
            else contact
            for contact in value["contacts"]
        ]
    if isinstance(value.get("messages"), list):
        value["messages"] = [_redact_message(message) for message in value["messages"]]
    return change | {"value": value}


def redact_crm(payload: dict) -> dict:
    """A copy of a CRM event with the message text, caption and contact name removed."""
    result = dict(payload)
    message = result.get("message")
    if isinstance(message, dict):
        result["message"] = {
            key: value if key in ("id", "type") else _redact_content(value)
            for key, value in message.items()
        }
    contact = result.get("contact")
    if isinstance(contact, dict):
        result["contact"] = contact = dict(contact)
        if "name" in contact:
            contact["name"] = _redact_content(contact["name"])
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
