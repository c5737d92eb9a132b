"""Identity resolution: every way a contact's number is written gives one E.164 ``user_id``."""

import hashlib
import hmac
import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata

from worker.parsing.errors import ParseError

PSEUDONYM = re.compile(r"h:[0-9a-f]{64}")
# What a stored delivery holds in place of a number that did not parse (with hashing on).
UNPARSEABLE_PREFIX = "unparseable:"


@dataclass(frozen=True)
class PhoneRules:
    """How numbers become user ids: the region for numbers without a country code, and the
    key of the opt-in pseudonymisation (WA_PHONE_HASH_KEY)."""

    default_region: str | None = None
    hash_key: str | None = None

    @classmethod
    def from_settings(cls, settings) -> "PhoneRules":
        return cls(settings.default_phone_region, settings.phone_hash_key)


def pseudonymise(user_id: str, key: str) -> str:
    """A keyed hash of an E.164 number: the same on every source, so identities still join,
    and useless without the key."""
    if PSEUDONYM.fullmatch(user_id):
        return user_id
    return "h:" + hmac.new(key.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def _already_resolved(value: object) -> str | None:
    """A pseudonym stored in place of a number resolves to itself; a stored parse failure
    fails again with its reason."""
    text = str(value)
    if PSEUDONYM.fullmatch(text):
        return text
    if text.startswith(UNPARSEABLE_PREFIX):
        raise ParseError(text.removeprefix(UNPARSEABLE_PREFIX))
    return None


@lru_cache(maxsize=65536)
def whatsapp_id_to_e164(wa_id: str) -> str:
    """Meta's ``wa_id`` / ``from`` / ``recipient_id``: international digits without '+'."""
    if resolved := _already_resolved(wa_id):
        return resolved
    digits = str(wa_id).strip().removeprefix("+")
    if not digits.isdigit():
        raise ParseError(f"WhatsApp id {_mask(wa_id)} is not all digits")
    if plainly_canonical(digits):
        return "+" + digits
    return _parse("+" + digits, None, wa_id)


def plainly_canonical(digits: str) -> bool:
    """True when parsing '+' and ``digits`` would surely give them back as a possible number;
    False means "parse it" (the answer may still be the same).

    A campaign's statuses bring tens of thousands of numbers a worker has not seen; the parser
    takes about 22 us a number, mostly normalising text that is already bare digits. This takes
    the steps it would take on such a number: the country code, no national prefix to strip
    (the national number does not start with one), and a length the country's numbers can have.
    """
    if not digits.isascii():
        return False  # the parser turns other scripts' digits into ASCII ones
    for size in (1, 2, 3):
        if (rules := _country_rules(digits[:size])) is not None:
            national_prefix, lengths = rules
            national = digits[size:]
            return (
                len(national) in lengths
                and national[:1] not in ("", "0")
                and not (national_prefix and national_prefix.match(national))
            )
    return False


@lru_cache(maxsize=1024)
def _country_rules(code: str) -> tuple[re.Pattern | None, frozenset[int]] | None:
    """The national-prefix pattern and possible national lengths behind country code ``code``;
    None if it is no country code (a code without metadata has no lengths: always parsed)."""
    if code[:1] in ("", "0") or int(code) not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        return None
    region = phonenumbers.region_code_for_country_code(int(code))
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(int(code), region)
    if metadata is None:
        return None, frozenset()
    prefix = metadata.national_prefix_for_parsing
    lengths = frozenset(n for n in metadata.general_desc.possible_length if n > 0)
    return (re.compile(prefix) if prefix else None), lengths


@lru_cache(maxsize=65536)
def crm_phone_to_e164(phone: str, default_region: str | None = None) -> str:
    """A CRM's number as a person typed it: '+1 631-555-1234', '0044 20 ...', '16315551234'.

    With a '+' or '00' prefix it is international. Bare digits are read the way WhatsApp writes
    numbers (international, no '+'). A formatted number without a country code needs
    ``default_region`` (WA_DEFAULT_PHONE_REGION); without one it is refused, not guessed.
    """
    if resolved := _already_resolved(phone):
        return resolved
    text = str(phone).strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    compact = "".join(ch for ch in text if ch not in " -.()/\u00a0")
    if compact.startswith("00") and compact[2:].isdigit():
        return _parse("+" + compact[2:], None, phone)
    if compact.startswith("+"):
        return _parse(text, None, phone)
    if default_region:
        return _parse(text, default_region, phone)
    if compact.isdigit() and compact == text:
        return _parse("+" + compact, None, phone)
    raise ParseError(
        f"phone number {_mask(phone)} has no country code; "
        "send it in international form or set WA_DEFAULT_PHONE_REGION"
    )


def _parse(text: str, region: str | None, original: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ParseError(f"phone number {_mask(original)} does not parse: {exc._msg}") from exc
    if not phonenumbers.is_possible_number(number):
        raise ParseError(f"phone number {_mask(original)} is not a possible number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _mask(value: object) -> str:
    """Enough of a number to debug with, not enough to identify the person (errors are stored)."""
    text = str(value)
    if len(text) <= 4:
        return repr("*" * len(text))
    return repr(text[:3] + "*" * (len(text) - 5) + text[-2:])
