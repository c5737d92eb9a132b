"""Identity resolution: Meta's ids and a CRM's formatted numbers resolve to one E.164 user_id."""

import random
import time

import orjson
import phonenumbers
import pytest
from helpers import cloud_api_delivery, crm_event, status, text_message
from hypothesis import assume, given
from hypothesis import strategies as st

from wa_analytics.core.queueing import Envelope, delivery_id_for
from worker import phones, processing
from worker.parsing.errors import ParseError
from worker.phones import PhoneRules, crm_phone_to_e164, whatsapp_id_to_e164
from worker.redact import pseudonymise_phones


@pytest.mark.parametrize(
    ("wa_id", "expected"),
    [
        ("16315551234", "+16315551234"),
        ("447400900123", "+447400900123"),
        ("5511912345678", "+5511912345678"),
        ("919876543210", "+919876543210"),
        ("4930901820", "+4930901820"),
        (16315551234, "+16315551234"),
    ],
)
def test_whatsapp_ids_are_international_digits(wa_id, expected):
    assert whatsapp_id_to_e164(wa_id) == expected


@pytest.mark.parametrize(
    "phone",
    [
        "+1 631-555-1234",
        "+1 (631) 555-1234",
        "+1.631.555.1234",
        "001 631 555 1234",
        "16315551234",
        "+16315551234",
        "tel:+1-631-555-1234",
        " +1 631 555 1234 ",
    ],
)
def test_crm_formats_resolve_to_the_same_contact(phone):
    assert crm_phone_to_e164(phone) == whatsapp_id_to_e164("16315551234")


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+55 (11) 91234-5678", "+5511912345678"),
        ("+49 30 901820", "+4930901820"),
        ("+91 98765 43210", "+919876543210"),
    ],
)
def test_crm_international_formats(phone, expected):
    assert crm_phone_to_e164(phone) == expected


def test_national_format_uses_the_configured_region():
    assert crm_phone_to_e164("(631) 555-1234", "US") == "+16315551234"
    assert crm_phone_to_e164("020 7946 0958", "GB") == "+442079460958"


def test_bare_digits_are_international_first_whatever_the_region():
    """WhatsApp's own form (Meta writes 16315551234) is the same person from the CRM, also where
    WA_DEFAULT_PHONE_REGION is set; digits that are no international number are national."""
    assert crm_phone_to_e164("16315551234", "BR") == whatsapp_id_to_e164("16315551234")
    assert crm_phone_to_e164("02079460958", "GB") == "+442079460958"


@pytest.mark.parametrize(
    "phone",
    ["(631) 555-1234", "631-555-1234", "12345", "not-a-number", "+1 555", "", "+999 1234 5678"],
)
def test_unparseable_numbers_are_refused_not_guessed(phone):
    with pytest.raises(ParseError):
        crm_phone_to_e164(phone)


@pytest.mark.parametrize("wa_id", ["", "+", "1631555123a", "16 31", "12"])
def test_bad_whatsapp_ids_are_refused(wa_id):
    with pytest.raises(ParseError):
        whatsapp_id_to_e164(wa_id)


def test_errors_do_not_repeat_the_whole_number():
    with pytest.raises(ParseError) as error:
        crm_phone_to_e164("631-555-1234")
    assert "631-555-1234" not in str(error.value)


# -- only valid numbers, without extensions ------------------------------------------------------


def test_two_numbers_with_a_hash_are_refused_not_merged():
    """The parser reads '123456#' as an extension of '+44 7911', which it finds possible (for
    local dialling): two people became one."""
    for phone in ("+44 7911 123456#", "+44 7911 654321#"):
        with pytest.raises(ParseError, match="extension"):
            crm_phone_to_e164(phone)


@pytest.mark.parametrize(
    "phone",
    [
        "+44 7400 123456#",
        "+44 7400 123456 #",
        "+1 631 555 1234 #12",
        "+1 631-555-1234-12#",
        "+1 631 555 1234 x12",
        "+1 631 555 1234 x",
        "+1 631 555 1234 ext. 12",
        "+1 631 555 1234 ext",
        "+1 631 555 1234, 12",
        "+1 631 555 1234;12",
        "tel:+1-631-555-1234;ext=12",
        "+1 631 555 1234 EXT 12",
        "+1 800 FLOWERS",
    ],
)
def test_extensions_and_letters_are_refused_with_the_reason(phone):
    with pytest.raises(ParseError, match="extension") as error:
        crm_phone_to_e164(phone)
    assert "send the number alone" in str(error.value)


def test_an_extension_the_parser_finds_is_refused_even_without_a_marker_character(monkeypatch):
    """Whatever the parser reads as an extension is refused, not only what the characters
    checked before parsing announce."""
    number = phonenumbers.parse("+16315551234")
    number.extension = "12"
    monkeypatch.setattr(phones.phonenumbers, "parse", lambda text, region: number)
    with pytest.raises(ParseError, match="extension"):
        phones._parse("+16315551234", None, "+16315551234")


@pytest.mark.parametrize(
    "written",
    [
        "+447700900123",  # the range Ofcom keeps for drama: possible, never valid
        "447700900123",
        "+44 7911",  # possible only for local dialling
        "+1 631 555",
        "+49 1234",
        "+55 20 98765 4321",  # no area code 20 in Brazil
        "+52 1 12 3456 7890",  # Mexico's '1' dropped, but no ten-digit number starts with 1
    ],
)
def test_possible_but_invalid_numbers_are_refused(written):
    with pytest.raises(ParseError, match="not a valid number|does not parse"):
        crm_phone_to_e164(written)
    digits = written.removeprefix("+").replace(" ", "")
    with pytest.raises(ParseError):
        whatsapp_id_to_e164(digits)


# -- WhatsApp's own spellings ----------------------------------------------------------------------


def test_a_mexican_wa_id_is_the_crm_number_without_the_mobile_1():
    canonical = "+525512345678"
    assert whatsapp_id_to_e164("5215512345678") == canonical
    for written in ("+52 55 1234 5678", "+52 1 55 1234 5678", "0052 1 55 1234 5678",
                    "525512345678", "5215512345678", "tel:+52-1-55-1234-5678"):  # fmt: skip
        assert crm_phone_to_e164(written) == canonical, written
    assert crm_phone_to_e164("55 1234 5678", "MX") == canonical


def test_an_old_brazilian_wa_id_is_the_crm_number_with_the_ninth_digit():
    canonical = "+5511987654321"
    assert whatsapp_id_to_e164("551187654321") == canonical
    assert whatsapp_id_to_e164("5511987654321") == canonical
    for written in ("+55 11 98765-4321", "+55 (11) 8765-4321", "005511987654321", "551187654321"):
        assert crm_phone_to_e164(written) == canonical, written
    assert crm_phone_to_e164("(11) 8765-4321", "BR") == canonical


@pytest.mark.parametrize(
    "wa_id",
    [
        "551132345678",  # a landline: eight digits starting with 2-5
        "551152345678",
        "551172345678",  # eight digits starting with 7: still valid as written (trunked radio)
    ],
)
def test_brazilian_numbers_that_may_be_another_line_are_never_given_a_ninth_digit(wa_id):
    assert whatsapp_id_to_e164(wa_id) == "+" + wa_id
    with_nine = wa_id[:4] + "9" + wa_id[4:]
    assert whatsapp_id_to_e164(with_nine) == "+" + with_nine != "+" + wa_id


@st.composite
def brazilian_mobiles(draw) -> str:
    """A valid Brazilian mobile with the ninth digit, whose eight digits start with 6, 8 or 9."""
    area = draw(st.sampled_from(["11", "21", "31", "41", "51", "61", "71", "81", "91", "47"]))
    rest = draw(st.sampled_from("689")) + draw(st.text("0123456789", min_size=7, max_size=7))
    digits = f"55{area}9{rest}"
    assume(phonenumbers.is_valid_number(phonenumbers.parse("+" + digits)))
    return digits


@given(brazilian_mobiles())
def test_every_brazilian_mobile_is_one_contact_with_or_without_its_ninth_digit(digits):
    without = digits[:4] + digits[5:]
    assert whatsapp_id_to_e164(without) == whatsapp_id_to_e164(digits) == "+" + digits
    assert crm_phone_to_e164(f"+55 {digits[2:4]} {digits[5:9]}-{digits[9:]}") == "+" + digits


@given(st.text("0123456789", min_size=10, max_size=10))
def test_every_mexican_number_is_one_contact_with_or_without_the_mobile_1(ten):
    valid = phonenumbers.is_valid_number(phonenumbers.parse("+52" + ten))
    assume(valid or ten[0] == "1")
    if valid:
        assert whatsapp_id_to_e164("521" + ten) == whatsapp_id_to_e164("52" + ten) == "+52" + ten
    else:
        for digits in ("521" + ten, "52" + ten):
            with pytest.raises(ParseError):
                whatsapp_id_to_e164(digits)


# -- properties of every valid number --------------------------------------------------------------

REGIONS = ["US", "CA", "GB", "BR", "IN", "DE", "MX", "NG", "ID", "ES", "FR", "AR", "ZA", "RU"]


@st.composite
def valid_numbers(draw) -> phonenumbers.PhoneNumber:
    """A valid number near one of a region's examples (a mobile or a landline)."""
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE,
                                 phonenumbers.PhoneNumberType.FIXED_LINE]))  # fmt: skip
    example = phonenumbers.example_number_for_type(region, kind)
    national = phonenumbers.national_significant_number(example)
    keep = draw(st.integers(min_value=2, max_value=len(national)))
    tail = draw(st.text("0123456789", min_size=len(national) - keep, max_size=len(national) - keep))
    number = phonenumbers.parse(f"+{example.country_code}{national[:keep]}{tail}")
    assume(phonenumbers.is_valid_number(number))
    return number


def _written_forms(number: phonenumbers.PhoneNumber) -> list[str]:
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return [
        e164,
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966),
        "00" + e164[1:],
        e164[1:],
    ]


@given(valid_numbers())
def test_every_written_form_of_a_valid_number_resolves_to_it(number):
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert whatsapp_id_to_e164(e164[1:]) == e164
    for written in _written_forms(number):
        assert crm_phone_to_e164(written) == e164, written
    region = phonenumbers.region_code_for_number(number)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    assert crm_phone_to_e164(national, region) == e164


@given(valid_numbers(), valid_numbers())
def test_two_different_valid_numbers_never_resolve_alike(first, second):
    assume(first != second)
    assert {crm_phone_to_e164(w) for w in _written_forms(first)}.isdisjoint(
        crm_phone_to_e164(w) for w in _written_forms(second)
    )


@given(st.text(max_size=30))
def test_arbitrary_text_either_resolves_to_a_valid_number_or_is_refused(text):
    try:
        result = crm_phone_to_e164(text)
    except ParseError:
        return
    assert result.startswith("+") and result[1:].isdigit()
    assert phonenumbers.is_valid_number(phonenumbers.parse(result))


@given(st.text("0123456789", min_size=1, max_size=16))
def test_arbitrary_digits_either_resolve_to_a_valid_number_or_are_refused(digits):
    try:
        result = whatsapp_id_to_e164(digits)
    except ParseError:
        return
    assert phonenumbers.is_valid_number(phonenumbers.parse(result))


# -- numbers that are not text --------------------------------------------------------------------

NOT_TEXT = [{"number": "16315551234"}, ["16315551234"], True, False, 16315551234.0, 1.5, None]


@pytest.mark.parametrize("value", NOT_TEXT, ids=repr)
def test_a_number_that_is_not_a_string_or_integer_is_refused(value):
    with pytest.raises(ParseError, match="not a string or an integer"):
        whatsapp_id_to_e164(value)
    with pytest.raises(ParseError, match="not a string or an integer"):
        crm_phone_to_e164(value, "US")


@pytest.mark.parametrize("value", NOT_TEXT, ids=repr)
def test_hashing_numbers_that_are_not_text_quarantines_them(value):
    """With WA_PHONE_HASH_KEY set, numbers are hashed before anything checks their type."""
    rules = PhoneRules(hash_key="a-key")
    now = int(time.time())
    whatsapp = cloud_api_delivery(
        messages=[text_message("wamid.A", "16315551234", now) | {"from": value}],
        statuses=[status("wamid.B", "16315551234", now) | {"recipient_id": value}],
        contacts=[{"profile": {"name": "A"}, "wa_id": value}],
    )
    crm = crm_event("whatsapp.message.received", "wamid.C", "16315551234", now)
    crm["contact"]["phone"] = value
    stored = pseudonymise_phones(orjson.loads(orjson.dumps(crm)), "crm", rules)
    assert stored["contact"]["phone"].startswith(phones.UNPARSEABLE_PREFIX)
    envelopes = [
        Envelope(delivery_id_for(source, body), source, now, body)
        for source, body in (("whatsapp", orjson.dumps(whatsapp)), ("crm", orjson.dumps(crm)))
    ]
    batch = processing.build_batch(envelopes, rules)
    assert batch.events == []
    assert len(batch.quarantine) == 3
    assert all("not a string or an integer" in str(row) for row in batch.quarantine)


# -- the fast path ---------------------------------------------------------------------------------


def _parsed(digits: str) -> str | None:
    try:
        return phones._parse("+" + digits, None, digits)
    except ParseError:
        return None


def test_ids_skip_the_parser_only_where_it_gives_them_back():
    """Every country code, every national length, national numbers starting with each digit
    (national prefixes among them), and numbers near each country's examples: an id taken
    without parsing is one the parser would have returned as it is, valid; and every valid
    mobile example is taken so."""
    rng = random.Random(7)
    skipped = 0
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        candidates = [
            f"{code}{first}" + "".join(rng.choices("0123456789", k=length - 1))
            for length in range(1, 16)
            for first in "0123456789"
        ]
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]:
            for kind in (phonenumbers.PhoneNumberType.MOBILE,
                         phonenumbers.PhoneNumberType.FIXED_LINE):  # fmt: skip
                if example := phonenumbers.example_number_for_type(region, kind):
                    national = phonenumbers.national_significant_number(example)
                    candidates += [
                        f"{code}{national[:-3]}{rng.randrange(1000):03d}" for _ in range(5)
                    ]
        for digits in candidates:
            if phones.plainly_canonical(digits):
                skipped += 1
                assert _parsed(digits) == "+" + digits, digits
    assert skipped > 1500
    for region in REGIONS:
        mobile = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        e164 = phonenumbers.format_number(mobile, phonenumbers.PhoneNumberFormat.E164)
        assert phones.plainly_canonical(e164[1:]), region


@given(st.text(alphabet="0123456789", min_size=1, max_size=18))
def test_any_digits_taken_without_parsing_parse_to_themselves(digits):
    if phones.plainly_canonical(digits):
        assert _parsed(digits) == "+" + digits


def _resolved(resolve, digits: str) -> str | None:
    try:
        return resolve(digits)
    except ParseError:
        return None


@given(
    st.sampled_from(["521", "52", "55", "5511", "5521", "5591", "5520", "5590", "550"]),
    st.text("0123456789", min_size=5, max_size=11),
)
def test_mexican_and_brazilian_ids_resolved_without_the_parser_are_what_the_parser_gives(
    prefix, rest
):
    digits = prefix + rest
    assert _resolved(lambda d: phones._international(d, d), digits) == _parsed(digits)


def test_the_fast_validity_check_is_phonenumbers_own():
    """Across every country code: random national numbers, and numbers near each region's
    examples of every kind, get the same verdict from both."""
    rng = random.Random(11)
    kinds = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
             phonenumbers.PhoneNumberType.TOLL_FREE, phonenumbers.PhoneNumberType.VOIP)  # fmt: skip
    valid = 0
    for code, regions in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.items():
        examples = [
            phonenumbers.national_significant_number(example)
            for region in regions
            for kind in kinds
            if (
                example := phonenumbers.example_number_for_non_geo_entity(code)
                if region == "001"
                else phonenumbers.example_number_for_type(region, kind)
            )
        ]
        for _ in range(60):
            if examples and rng.random() < 0.7:
                base = rng.choice(examples)
                keep = rng.randrange(len(base))
                size = len(base) - keep + rng.choice((-1, 0, 0, 1))
                national = base[:keep] + "".join(rng.choices("0123456789", k=max(size, 0)))
            else:
                size = rng.randrange(15)
                national = rng.choice("123456789") + "".join(rng.choices("0123456789", k=size))
            if not national or national[0] == "0":
                continue
            number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
            expected = phonenumbers.is_valid_number(number)
            valid += expected
            assert phones.is_valid_national_number(code, national) == expected, (code, national)
    assert valid > 3000


def test_ids_that_the_parser_would_change_are_parsed(monkeypatch):
    def parse(*args):
        raise AssertionError(f"parsed: {args}")

    monkeypatch.setattr(phones, "_parse", parse)
    phones._whatsapp_id_to_e164.cache_clear()
    assert phones.whatsapp_id_to_e164("447400654321") == "+447400654321"
    assert phones.whatsapp_id_to_e164("5491123456789") == "+5491123456789"  # Argentina
    # WhatsApp's spellings of Mexican and Brazilian mobiles are read without it too
    assert phones.whatsapp_id_to_e164("5215512345678") == "+525512345678"
    assert phones.whatsapp_id_to_e164("551187654321") == "+5511987654321"
    for wa_id in ("4407400654322", "٤٤٧٤٠٠٦٥٤٣٢١", "999123456", "1", "447700900123",
                  "5211234567890", "552087654321"):  # fmt: skip
        # a national prefix after the country code, other digits, no such country, too short,
        # not valid, WhatsApp's spellings of numbers that are not valid either
        with pytest.raises(AssertionError, match="parsed"):
            phones.whatsapp_id_to_e164(wa_id)
