"""Identity resolution: every way a contact's number is written gives one E.164 ``user_id``.

A number is accepted only if it is valid in its country's numbering plan (phonenumbers'
metadata), written without an extension; anything else is refused with a ParseError saying why
(the worker quarantines the item), never guessed. WhatsApp's own spellings of Mexican and
Brazilian mobiles are read as the number the CRM writes (``_whatsapp_spelling``; docs/events.md,
"Phone numbers").
"""

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
# What may stand between the digits of a number as people write it. Anything else ('#', ';',
# ',', letters such as 'ext' or 'x') the parser reads as an extension or as keypad letters.
SEPARATORS = frozenset(" -.()/[]\u00a0\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
PLUS_SIGNS = frozenset("+\uff0b")


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


def _already_resolved(value: str | int) -> str | None:
    """A pseudonym stored in place of a number resolves to itself; a stored parse failure
    fails again with its reason."""
    text = str(value)
    if PSEUDONYM.fullmatch(text):
        return text
    if text.startswith(UNPARSEABLE_PREFIX):
        raise ParseError(text.removeprefix(UNPARSEABLE_PREFIX))
    return None


def _require_text_or_integer(value: object, what: str) -> str | int:
    # A payload's number is a JSON value: an object, a list, a bool or a float is no number
    # (and an unhashable one would break the caches below).
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise ParseError(f"{what} is {_json_type(value)}, not a string or an integer")


def whatsapp_id_to_e164(wa_id: object) -> str:
    """Meta's ``wa_id`` / ``from`` / ``recipient_id``: international digits without '+'.

    The E.164 number, the same for every spelling of it; a ParseError if it is no valid number.
    """
    return _whatsapp_id_to_e164(_require_text_or_integer(wa_id, "WhatsApp id"))


@lru_cache(maxsize=65536)
def _whatsapp_id_to_e164(wa_id: str | int) -> str:
    if resolved := _already_resolved(wa_id):
        return resolved
    digits = str(wa_id).strip().removeprefix("+")
    if not digits.isdigit():
        raise ParseError(f"WhatsApp id {_mask(wa_id)} is not all digits")
    return _international(digits, wa_id)


def plainly_canonical(digits: str) -> bool:
    """True when parsing '+' and ``digits`` would surely give them back as a valid number;
    False means "parse it" (the answer may still be the same).

    A campaign's statuses bring tens of thousands of numbers a worker has not seen; the parser
    takes about 20 us a number, mostly normalising text that is already bare digits. This takes
    the steps it would take on such a number: the country code, no national prefix to strip
    (the national number does not start with one), and a national number valid in the country's
    plan, checked against the same metadata as ``phonenumbers.is_valid_number``.
    """
    if not digits.isascii():
        return False  # the parser turns other scripts' digits into ASCII ones
    for size in (1, 2, 3):
        if (plan := _numbering_plan(digits[:size])) is not None:
            national_prefix, regions = plan
            national = digits[size:]
            return (
                national[:1] not in ("", "0")
                and not (
                    national.startswith(national_prefix)
                    if type(national_prefix) is str
                    else _strips_something(national_prefix, national)
                )
                and _is_valid_in(regions, national)
            )
    return False


def _strips_something(national_prefix: re.Pattern | None, national: str) -> bool:
    # Argentina's pattern matches nothing at the start of most numbers, which keeps them as
    # they are (an empty match captures no group for the transform rule to use).
    found = national_prefix.match(national) if national_prefix is not None else None
    return found is not None and found.end() > 0


# Per region of a country code: its leading-digits pattern, its valid numbers by length, its name.
_Regions = tuple[tuple[re.Pattern | None, dict[int, re.Pattern], str], ...]


@lru_cache(maxsize=1024)
def _numbering_plan(code: str) -> tuple[re.Pattern | str | None, _Regions] | None:
    """What the fast path needs of country code ``code``: the national prefix the parser strips
    (a string when it is a plain one, else its pattern; None if there is none) and the valid
    numbers of its regions (``_valid_patterns``). None if ``code`` is no country code."""
    if code[:1] in ("", "0") or int(code) not in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        return None
    region = phonenumbers.region_code_for_country_code(int(code))
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(int(code), region)
    prefix = metadata.national_prefix_for_parsing if metadata is not None else None
    national_prefix = (prefix if prefix.isdigit() else re.compile(prefix)) if prefix else None
    return national_prefix, _valid_patterns(int(code))


def is_valid_national_number(country_code: int, national: str) -> bool:
    """``phonenumbers.is_valid_number`` for the number ``country_code`` + ``national`` (its
    national significant digits), at a fraction of its cost: the same metadata, the same order
    of regions, one precompiled pattern per region and length."""
    return _is_valid_in(_valid_patterns(country_code), national)


def _is_valid_in(regions: _Regions, national: str) -> bool:
    if len(regions) == 1:
        pattern = regions[0][1].get(len(national))
        return pattern is not None and pattern.fullmatch(national) is not None
    for leading_digits, by_length, _ in regions:
        pattern = by_length.get(len(national))
        if leading_digits is not None:
            # The region whose leading digits match is the number's region, valid there or not.
            if leading_digits.match(national):
                return pattern is not None and pattern.fullmatch(national) is not None
        elif pattern is not None and pattern.fullmatch(national) is not None:
            return True
    return False


def region_of_number(e164: str) -> str | None:
    """The region of a valid E.164 number, as ``phonenumbers.region_code_for_number`` gives it
    (ISO 3166-1 alpha-2), from the same precompiled metadata as ``plainly_canonical``; None for
    a non-geographic number (+800, +882, ...: region "001") or one no region claims."""
    digits = e164[1:]
    if e164[:1] != "+" or not (digits.isascii() and digits.isdigit()):
        return None
    for size in (1, 2, 3):
        if (plan := _numbering_plan(digits[:size])) is not None:
            return _region_in(plan[1], digits[size:])
    return None


def _region_in(regions: _Regions, national: str) -> str | None:
    if len(regions) == 1:
        return None if regions[0][2] == "001" else regions[0][2]
    # A code shared by several regions (+1, +7, +44, ...): the first whose leading digits match,
    # or, for a region without them, in which the number is valid (phonenumbers' own order).
    for leading_digits, by_length, region in regions:
        if leading_digits is not None:
            if leading_digits.match(national):
                return region
        elif (pattern := by_length.get(len(national))) and pattern.fullmatch(national):
            return region
    return None


# The kinds of number phonenumbers' is_valid_number accepts (_number_type_helper's order).
_NUMBER_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line", "mobile",
)  # fmt: skip


@lru_cache(maxsize=1024)
def _valid_patterns(code: int) -> _Regions:
    """Per region of country code ``code``, in phonenumbers' order: its leading-digits pattern
    (which decides the region of a number sharing the code), per length of national number one
    pattern matching exactly the numbers of that length valid in the region, and its name."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ())
    if len(regions) == 1:
        # A code of one region (or of a non-geographic entity, "001") has no leading digits.
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0])
        return ((None, _patterns_by_length(metadata), regions[0]),)
    found = []
    for region in regions:
        metadata = PhoneMetadata.metadata_for_region(region, None)
        if metadata is not None:
            leading = re.compile(metadata.leading_digits) if metadata.leading_digits else None
            found.append((leading, _patterns_by_length(metadata), region))
    return tuple(found)


def _patterns_by_length(metadata: PhoneMetadata | None) -> dict[int, re.Pattern]:
    if metadata is None:
        return {}
    result = {}
    for length in range(1, 18):
        if not _has_length(metadata.general_desc, length):
            continue
        kinds = [
            getattr(metadata, kind)
            for kind in _NUMBER_TYPES
            if not (kind == "mobile" and metadata.same_mobile_and_fixed_line_pattern)
        ]
        alternatives = [
            f"(?:{desc.national_number_pattern})" for desc in kinds if _has_length(desc, length)
        ]
        if alternatives:
            general = metadata.general_desc.national_number_pattern
            result[length] = re.compile(f"(?=(?:{general})\\Z)(?:{'|'.join(alternatives)})")
    return result


def _has_length(desc, length: int) -> bool:
    """Whether numbers of ``length`` digits may match ``desc`` (as phonenumbers decides it)."""
    return (
        desc is not None
        and bool(desc.national_number_pattern)
        and (not desc.possible_length or length in desc.possible_length)
    )


@lru_cache(maxsize=65536)
def _crm_phone_to_e164(phone: str | int, default_region: str | None) -> str:
    if resolved := _already_resolved(phone):
        return resolved
    text = str(phone).strip()
    if text.lower().startswith("tel:"):
        text = text[4:]
    if odd := next((ch for ch in text if not _is_number_character(ch)), None):
        raise ParseError(
            f"phone number {_mask(phone)} holds {odd!r}: the parser reads '#', 'ext', 'x', ';' "
            "or ',' as the start of an extension, and letters as keypad digits; send the number "
            "alone, in digits"
        )
    compact = "".join(ch for ch in text if ch not in SEPARATORS)
    if compact.startswith("00") and compact[2:].isdigit():
        return _international(compact[2:], phone)
    if compact[:1] in PLUS_SIGNS:
        if compact[1:].isdigit() and plainly_canonical(compact[1:]):
            return "+" + compact[1:]
        return _parse(text, None, phone)
    if compact.isdigit() and compact == text:
        # Bare digits are WhatsApp's own form: international. Only if they are no number that
        # way are they read in WA_DEFAULT_PHONE_REGION, as a national number.
        try:
            return _international(compact, phone)
        except ParseError:
            if not default_region:
                raise
    if default_region:
        return _parse(text, default_region, phone)
    raise ParseError(
        f"phone number {_mask(phone)} has no country code; "
        "send it in international form or set WA_DEFAULT_PHONE_REGION"
    )


def crm_phone_to_e164(phone: object, default_region: str | None = None) -> str:
    """A CRM's number as a person typed it: '+1 631-555-1234', '0044 20 ...', '16315551234'.

    With a '+' or '00' prefix it is international. Bare digits are read the way WhatsApp writes
    numbers (international, no '+'). A formatted number without a country code needs
    ``default_region`` (WA_DEFAULT_PHONE_REGION); without one it is refused, not guessed. So is
    a number with anything but digits, a leading '+' and separators (spaces, '-', '.', '/',
    brackets): an extension, letters.
    """
    return _crm_phone_to_e164(_require_text_or_integer(phone, "phone number"), default_region)


def _international(digits: str, original: str | int) -> str:
    """The number whose international digits (no '+') are ``digits``."""
    if plainly_canonical(digits):
        return "+" + digits
    # Meta's ids of older Mexican and Brazilian accounts, without the parser (a campaign to
    # Mexico brings thousands): the same rule, on the digits, where the result is plain.
    code, national = digits[:2], digits[2:]
    respelled = _whatsapp_national(int(code), national) if code in ("52", "55") else None
    if (
        respelled
        and plainly_canonical(code + respelled)
        and not is_valid_national_number(int(code), national)
    ):
        return "+" + code + respelled
    return _parse("+" + digits, None, original)


def _is_number_character(ch: str) -> bool:
    return ch.isdecimal() or ch in SEPARATORS or ch in PLUS_SIGNS


def _parse(text: str, region: str | None, original: str | int) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ParseError(f"phone number {_mask(original)} does not parse: {exc._msg}") from exc
    if number.extension:
        raise ParseError(
            f"phone number {_mask(original)} has an extension; a contact's number has none: "
            "send the number alone"
        )
    if not phonenumbers.is_valid_number(number):
        number = _whatsapp_spelling(number)
        if not phonenumbers.is_valid_number(number):
            raise ParseError(
                f"phone number {_mask(original)} is not a valid number in the numbering plan "
                f"of +{number.country_code}; check its digits and its country code"
            )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _whatsapp_spelling(number: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    """The number ``number`` stands for if it is one of WhatsApp's spellings, else itself."""
    national = None
    if not number.italian_leading_zero:
        national = _whatsapp_national(number.country_code, str(number.national_number))
    if national is None:
        return number
    return phonenumbers.PhoneNumber(country_code=number.country_code, national_number=int(national))


# WhatsApp's own spellings of a number, read as the number itself (docs/events.md, "Phone
# numbers", gives the sources). Each rewrites only a number that is not valid as written, and
# the result must be valid: a valid number is never changed, so no two people are merged.
# - Mexico (+52): until the IFT's numbering plan change (2019-2020) a mobile was dialled from
#   abroad as +52 1 and ten digits; Meta's wa_id still has the '1'. No Mexican number has
#   eleven digits now: +52 1 and ten digits is +52 and the ten digits.
# - Brazil (+55): Anatel put a ninth digit, 9, in front of every mobile (completed 2016); the
#   wa_id of an account older than that may lack it. An area code and eight digits starting
#   with 6, 8 or 9 is no number now, only such a mobile without its 9. Eight digits starting
#   with 2-5 (landlines) or 7 (trunked radio, still valid as written) are never changed.
def _whatsapp_national(country_code: int, national: str) -> str | None:
    """The national number that ``national`` spells in WhatsApp's ids, or None if it is none."""
    if country_code == 52 and len(national) == 11 and national[0] == "1":
        return national[1:]
    if country_code == 55 and len(national) == 10 and national[2] in "689":
        return national[:2] + "9" + national[2:]
    return None


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", bool: "true or false", float: "a decimal number"}
    return "null" if value is None else names.get(type(value), f"a {type(value).__name__}")


def _mask(value: object) -> str:
    """Enough of a number to debug with, not enough to identify the person (errors are stored)."""
    text = str(value)
    if len(text) <= 4:
        return repr("*" * len(text))
    return repr(text[:3] + "*" * (len(text) - 5) + text[-2:])
