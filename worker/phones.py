"""Identity resolution: every way a contact's number is written gives one E.164 ``user_id``."""

import hashlib
import hmac
import mmap
import re
import struct
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

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


class CanonicalIds:
    """WhatsApp ids whose E.164 form is '+' and the id itself (nearly all: Meta sends
    international digits), in memory shared by the processes forked after it is made.

    A drain's helpers are forked from the worker, and each would otherwise parse every contact
    of a campaign again (about 9 us a number, a few percent of a drain). An open-addressed table
    of 8-byte slots, each written once, from 0 to an id, by one aligned native store (a single
    copy on x86-64 and arm64): a reader sees the id or nothing. Two writers racing for a slot
    leave one of the ids: the other is just parsed again later.
    """

    SLOTS = 1 << 18  # 2 MiB; a campaign to 100,000 contacts fills 40% of it
    PROBES = 16
    SLOT = struct.Struct("@q")

    def __init__(self):
        self.memory = mmap.mmap(-1, self.SLOTS * self.SLOT.size)  # shared, anonymous

    @staticmethod
    def key(digits: str) -> int:
        """The id as a number, or 0 for one that cannot be kept (a leading zero would be
        lost, and non-ASCII digits are normalised by parsing)."""
        if digits.isascii() and 0 < len(digits) <= 18 and digits[0] != "0":
            return int(digits)
        return 0

    def _offsets(self, key: int):
        start = (key * 0x9E3779B97F4A7C15 >> 24) % self.SLOTS
        for probe in range(self.PROBES):
            yield ((start + probe) % self.SLOTS) * self.SLOT.size

    def __contains__(self, key: int) -> bool:
        for offset in self._offsets(key):
            (found,) = self.SLOT.unpack_from(self.memory, offset)
            if found == key:
                return True
            if found == 0:
                return False
        return False

    def add(self, key: int) -> None:
        for offset in self._offsets(key):
            (found,) = self.SLOT.unpack_from(self.memory, offset)
            if found == key:
                return
            if found == 0:
                self.SLOT.pack_into(self.memory, offset, key)
                return


# Made at import, so that the worker and every drain helper it forks share it.
CANONICAL_IDS = CanonicalIds()


@lru_cache(maxsize=65536)
def whatsapp_id_to_e164(wa_id: str) -> str:
    """Meta's ``wa_id`` / ``from`` / ``recipient_id``: international digits without '+'."""
    if resolved := _already_resolved(wa_id):
        return resolved
    digits = str(wa_id).strip().removeprefix("+")
    if not digits.isdigit():
        raise ParseError(f"WhatsApp id {_mask(wa_id)} is not all digits")
    key = CanonicalIds.key(digits)
    if key and key in CANONICAL_IDS:
        return "+" + digits
    e164 = _parse("+" + digits, None, wa_id)
    if key and e164 == "+" + digits:
        CANONICAL_IDS.add(key)
    return e164


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
