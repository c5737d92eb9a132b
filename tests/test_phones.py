"""Identity resolution: Meta's ids and a CRM's formatted numbers resolve to one E.164 user_id."""

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def test_an_id_parsed_in_one_drain_process_is_not_parsed_again_in_another(monkeypatch):
    """A drain's helpers are forked from the worker: an id one of them parsed is known to the
    others without parsing; an id whose E.164 form is not itself is never taken as it is."""
    import multiprocessing

    from worker import phones

    fork = multiprocessing.get_context("fork")
    for wa_id in ("447911654321", "4407911654322"):  # the second loses its national prefix
        helper = fork.Process(target=phones.whatsapp_id_to_e164, args=(wa_id,))
        helper.start()
        helper.join()
        assert helper.exitcode == 0
    assert phones.CanonicalIds.key("447911654321") in phones.CANONICAL_IDS
    assert phones.CanonicalIds.key("4407911654322") not in phones.CANONICAL_IDS

    def parse_again(*args):
        raise AssertionError(f"parsed again: {args}")

    monkeypatch.setattr(phones, "_parse", parse_again)
    assert phones.whatsapp_id_to_e164("447911654321") == "+447911654321"
    with pytest.raises(AssertionError, match="parsed again"):
        phones.whatsapp_id_to_e164("4407911654322")
    with pytest.raises(AssertionError, match="parsed again"):
        phones.whatsapp_id_to_e164("٤٤٧٩١١٦٥٤٣٢١")  # the same number in other digits
