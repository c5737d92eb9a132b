"""Identity resolution: Meta's ids and a CRM's formatted numbers resolve to one E.164 user_id."""

import random

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker import phones
from worker.parsing.errors import ParseError
from worker.phones import crm_phone_to_e164, whatsapp_id_to_e164


@pytest.mark.parametrize(
    ("wa_id", "expected"),
    [
        ("16315551234", "+16315551234"),
        ("447700900123", "+447700900123"),
        ("5511912345678", "+5511912345678"),
        ("919876543210", "+919876543210"),
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


REGIONS = ["US", "GB", "BR", "IN", "DE", "MX", "NG", "ID", "ES", "FR"]


@given(region=st.sampled_from(REGIONS), data=st.data())
def test_every_written_form_of_a_valid_number_resolves_alike(region, data):
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    style = data.draw(
        st.sampled_from(
            [
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                phonenumbers.PhoneNumberFormat.RFC3966,
            ]
        )
    )
    written = phonenumbers.format_number(example, style)
    assert crm_phone_to_e164(written) == e164
    assert crm_phone_to_e164(e164[1:]) == e164
    assert whatsapp_id_to_e164(e164[1:]) == e164
    national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
    assert crm_phone_to_e164(national, region) == e164


@given(st.text(max_size=30))
def test_arbitrary_text_either_resolves_to_e164_or_is_refused(text):
    try:
        result = crm_phone_to_e164(text)
    except ParseError:
        return
    assert result.startswith("+") and result[1:].isdigit()


def _parsed(digits: str) -> str | None:
    try:
        return phones._parse("+" + digits, None, digits)
    except ParseError:
        return None


def test_ids_skip_the_parser_only_where_it_gives_them_back():
    """Every country code, every national length, national numbers starting with each digit
    (national prefixes among them): an id taken without parsing is one the parser would have
    returned as it is, and most valid mobile numbers are taken so."""
    rng = random.Random(7)
    skipped = 0
    for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        for length in range(1, 16):
            for first in "0123456789":
                digits = f"{code}{first}" + "".join(rng.choices("0123456789", k=length - 1))
                if phones.plainly_canonical(digits):
                    skipped += 1
                    assert _parsed(digits) == "+" + digits, digits
    assert skipped > 3000
    for region in REGIONS:
        mobile = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        e164 = phonenumbers.format_number(mobile, phonenumbers.PhoneNumberFormat.E164)
        assert phones.plainly_canonical(e164[1:]), region


@given(st.text(alphabet="0123456789", min_size=1, max_size=18))
def test_any_digits_taken_without_parsing_parse_to_themselves(digits):
    if phones.plainly_canonical(digits):
        assert _parsed(digits) == "+" + digits


def test_ids_that_the_parser_would_change_are_parsed(monkeypatch):
    def parse(*args):
        raise AssertionError(f"parsed: {args}")

    monkeypatch.setattr(phones, "_parse", parse)
    phones.whatsapp_id_to_e164.cache_clear()
    assert phones.whatsapp_id_to_e164("447911654321") == "+447911654321"
    for wa_id in ("4407911654322", "٤٤٧٩١١٦٥٤٣٢١", "999123456", "1"):
        # a national prefix after the country code, other digits, no such country, too short
        with pytest.raises(AssertionError, match="parsed"):
            phones.whatsapp_id_to_e164(wa_id)
