"""Who a Cloud API item is about: a number, a business-scoped user id, or both (docs/events.md,
"Contacts").

Meta identifies a WhatsApp user to a business by their number (``wa_id``, ``from``,
``recipient_id``, ``to``) and, since 2026, by a business-scoped user id (BSUID: ``user_id``,
``from_user_id``, ``recipient_user_id``, ``to_user_id``), a country code, a period and letters or
digits (``US.13491208655302741918``). The number may be left out for a user with a username;
the BSUID never is. An event's ``user_id`` is the number (E.164) when there is one and the BSUID
otherwise; when it carries both, ``contact_user_id`` keeps the BSUID, which is Meta's statement
that the two are one person. dbt links identifiers only on such statements
(models/intermediate/identity).
"""

import re
from functools import lru_cache

from worker.parsing.errors import ParseError
from worker.phones import PSEUDONYM, region_of_number, whatsapp_id_to_e164

# Meta's documented form; a parent BSUID (shared across a business's portfolios) has one more
# part, "US.ENT.118...". Nothing that could be a number fits it.
BUSINESS_SCOPED_ID = re.compile(r"[A-Za-z]{2}(\.[A-Za-z0-9]{1,128}){1,2}")
# user_changed_number: the user has a new number (and a new BSUID); user_changed_user_id: only the
# BSUID changed. customer_changed_number is the name Graph API versions before v12 used.
NUMBER_CHANGES = frozenset({"user_changed_number", "customer_changed_number"})
USER_ID_CHANGES = frozenset({"user_changed_user_id"})
# The properties that hold a contact's identifiers besides user_id (hashed like it).
IDENTITY_PROPERTIES = frozenset(
    {"contact_user_id", "changed_to_user_id", "changed_to_contact_user_id",
     "changed_from_contact_user_id"}
)  # fmt: skip


def business_scoped_id(value: object) -> str:
    """A BSUID as Meta sends it (or its pseudonym, on re-derivation); a ParseError otherwise."""
    if type(value) is str and (BUSINESS_SCOPED_ID.fullmatch(value) or PSEUDONYM.fullmatch(value)):
        return value
    raise ParseError("business-scoped user id is not a country code, '.' and letters or digits")


@lru_cache(maxsize=65536)
def region_of(user_id: str) -> str | None:
    """The contact's region (ISO 3166-1 alpha-2) from their ``user_id``: their number's, or the
    country code a BSUID starts with; None when it is unknown (a pseudonym, a non-geographic
    number). Cached: every event asks, a campaign's statuses many times per contact."""
    if user_id[:1] == "+":
        return region_of_number(user_id)
    if BUSINESS_SCOPED_ID.fullmatch(user_id) and (prefix := user_id[:2].upper()) != "ZZ":
        return prefix
    return None


def contact_of(item: dict, number_key: str, user_id_key: str) -> tuple[str, dict]:
    """The event's ``user_id`` for the contact ``item`` names under ``number_key`` (a WhatsApp
    number) and ``user_id_key`` (a BSUID), and the properties that link the two."""
    number, scoped = item.get(number_key), item.get(user_id_key)
    if scoped is not None:
        scoped = business_scoped_id(scoped)
    if number is None or number == "":
        if scoped is None:
            raise ParseError(f"{number_key!r} and {user_id_key!r} are both missing")
        return scoped, {}
    user_id = whatsapp_id_to_e164(number)
    return user_id, ({"contact_user_id": scoped} if scoped else {})


def number_change(system: object) -> dict:
    """The properties of a ``system`` message that says a user changed number or BSUID: the new
    identifier (``changed_to_user_id``: the new number, or the new BSUID when no number is
    shared), the new BSUID beside a new number (``changed_to_contact_user_id``) and the previous
    BSUID (``changed_from_contact_user_id``). Empty for other system messages."""
    if not isinstance(system, dict) or system.get("type") not in NUMBER_CHANGES | USER_ID_CHANGES:
        return {}
    props = {"system_type": system["type"]}
    new_number = system.get("wa_id") or system.get("new_wa_id")
    new_scoped = system.get("user_id")
    if system["type"] in NUMBER_CHANGES and new_number:
        props["changed_to_user_id"] = whatsapp_id_to_e164(new_number)
        if new_scoped:
            props["changed_to_contact_user_id"] = business_scoped_id(new_scoped)
    elif new_scoped:
        props["changed_to_user_id"] = business_scoped_id(new_scoped)
    else:
        raise ParseError(f"{system['type']} names no new number or business-scoped user id")
    if previous := system.get("previous_user_id"):
        props["changed_from_contact_user_id"] = business_scoped_id(previous)
    return props
