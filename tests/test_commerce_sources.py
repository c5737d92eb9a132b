"""What WhatsApp cost, which template and campaign a send belonged to, which ad a contact came
from, who stopped marketing messages, and where each contact is (issue 22): Meta's status
pricing, the CRM's template and campaign, Meta's ad referrals and user_preferences webhook, and
the contact's region on every event. Parsed (each malformed part quarantined with its reason),
stored without their text, and through the real path (signed webhooks, Redis, the RQ worker,
PostgreSQL), with and without hashed numbers."""

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import orjson
import phonenumbers
import pytest
from helpers import BUSINESS, cloud_api_delivery, crm_event, run_worker, signed_post, status

from wa_analytics.core.queueing import Envelope, delivery_id_for
from worker import processing
from worker.parsing.crm import parse_crm_event
from worker.parsing.errors import ParseError, reason_class
from worker.parsing.event import Event, Rejected
from worker.parsing.whatsapp import parse_notification
from worker.phones import PhoneRules, pseudonymise, region_of_number
from worker.redact import pseudonymise_phones, redact_crm, redact_whatsapp
from worker.reprocess import reprocess

RECEIVED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
T0 = int(datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp())
NOW = int(time.time())
WA_ID, E164 = "16315551234", "+16315551234"
BSUID = "BR.13491208655302741918"
WA = "/webhooks/whatsapp"
CRM = "/webhooks/crm"
DOCS = Path(__file__).parent.parent / "docs" / "webhooks"


def notification(field: str, **value) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": field, "value": {"messaging_product": "whatsapp", "metadata": BUSINESS, **value}}
    ]}]}  # fmt: skip


def outcomes(payload: dict) -> tuple[list[Event], list[Rejected]]:
    found = list(parse_notification(payload, RECEIVED))
    return [o for o in found if isinstance(o, Event)], [o for o in found if isinstance(o, Rejected)]


def only_event(payload: dict) -> Event:
    events, rejected = outcomes(payload)
    assert not rejected and len(events) == 1, (events, rejected)
    return events[0]


# --- Pricing: what a message cost -------------------------------------------------------------

PRICED = {"billable": False, "pricing_model": "PMP", "category": "service",
          "type": "free_customer_service"}  # fmt: skip


@pytest.mark.parametrize(
    ("category", "pricing_type"),
    [("marketing", "regular"), ("marketing_lite", "regular"), ("utility", "free_entry_point"),
     ("authentication_international", "regular"), ("referral_conversion", "free_entry_point"),
     ("service", "free_customer_service")],
)  # fmt: skip
def test_a_status_keeps_its_pricing_type(category, pricing_type):
    pricing = {"billable": True, "pricing_model": "PMP", "category": category,
               "type": pricing_type}  # fmt: skip
    event = only_event(
        notification("messages", statuses=[status("wamid.S", WA_ID, T0, pricing=pricing)])
    )
    assert event.properties["pricing_category"] == category
    assert event.properties["pricing_model"] == "PMP"
    assert event.properties["pricing_type"] == pricing_type
    assert event.properties["is_billable"] is True


@pytest.mark.parametrize("pricing", [None, {}, {"type": None, "billable": None}])
def test_pricing_absent_or_null_is_unknown_not_malformed(pricing):
    event = only_event(
        notification("messages", statuses=[status("wamid.S", WA_ID, T0, pricing=pricing)])
    )
    assert (
        not {"pricing_category", "pricing_model", "pricing_type", "is_billable"}
        & event.properties.keys()
    )


MALFORMED_PRICING = [
    ("free", "'pricing' is not an object"),
    (["regular"], "'pricing' is not an object"),
    (7, "'pricing' is not an object"),
    (PRICED | {"billable": "yes"}, "'pricing.billable' is not true or false"),
    (PRICED | {"billable": 1}, "'pricing.billable' is not true or false"),
    (PRICED | {"category": 5}, "'pricing.category' is not a non-empty string"),
    (PRICED | {"category": ""}, "'pricing.category' is not a non-empty string"),
    (PRICED | {"pricing_model": ["PMP"]}, "'pricing.pricing_model' is not a non-empty string"),
    (PRICED | {"type": {"name": "regular"}}, "'pricing.type' is not a non-empty string"),
]


@pytest.mark.parametrize(("pricing", "reason"), MALFORMED_PRICING)
def test_a_malformed_pricing_quarantines_its_status_alone(pricing, reason):
    good = status("wamid.GOOD", WA_ID, T0, pricing=PRICED)
    bad = status("wamid.BAD", WA_ID, T0, pricing=pricing)
    events, rejected = outcomes(notification("messages", statuses=[good, bad]))
    assert [e.message_id for e in events] == ["wamid.GOOD"]
    assert [r.reason for r in rejected] == [reason]
    assert rejected[0].path.endswith("statuses[1]")


def _one_status_batch(pricing, hash_key=None):
    """The worker's batch of a notification of one status (the fast path's shape)."""
    payload = notification("messages", statuses=[status("wamid.ONE", WA_ID, T0, pricing=pricing)])
    body = orjson.dumps(payload)
    envelope = Envelope(delivery_id_for("whatsapp", body), "whatsapp", RECEIVED.timestamp(), body)
    return processing.build_batch([envelope], PhoneRules(hash_key=hash_key))


@pytest.mark.parametrize(("pricing", "reason"), MALFORMED_PRICING)
@pytest.mark.parametrize("hash_key", [None, "a-secret-key"])
def test_a_malformed_pricing_on_the_fast_path_is_quarantined_with_its_reason(
    pricing, reason, hash_key
):
    """The one-status fast path gives up on a status it cannot parse; the general path
    quarantines it, from the stored (redacted) delivery, with the same reason."""
    batch = _one_status_batch(pricing, hash_key)
    assert batch.events == [] and len(batch.deliveries) == 1
    [row] = batch.quarantine
    assert row[3] == reason


def test_the_fast_path_keeps_the_pricing_type_and_the_region():
    [row] = _one_status_batch(PRICED).events
    properties = orjson.loads(row[10][1:])
    assert properties["pricing_type"] == "free_customer_service"
    assert properties["contact_region"] == "US"


# --- Click-to-WhatsApp ads: the referral of a contact's first message -------------------------

REFERRAL = {"source_url": "https://fb.me/3cr4Wqqkv", "source_id": "120212345678900123",
            "source_type": "ad", "headline": "Summer sale", "body": "Half price, this week only",
            "media_type": "image", "image_url": "https://scontent.example/ad.jpg",
            "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4ir",
            "welcome_message": {"text": "Hi! How can we help?"}}  # fmt: skip


def referred(message_id: str, referral: object, wa_id: str = WA_ID) -> dict:
    return {"from": wa_id, "id": message_id, "timestamp": str(T0), "type": "text",
            "text": {"body": "Is the sale still on?"}, "referral": referral}  # fmt: skip


def test_a_message_from_an_ad_keeps_what_the_ad_was():
    event = only_event(notification("messages", messages=[referred("wamid.AD", REFERRAL)]))
    assert {k: v for k, v in event.properties.items() if k.startswith("referral_")} == {
        "referral_source_type": "ad",
        "referral_source_id": "120212345678900123",
        "referral_source_url": "https://fb.me/3cr4Wqqkv",
        "referral_headline": "Summer sale",
        "referral_ctwa_clid": REFERRAL["ctwa_clid"],
    }
    assert "Half price" not in orjson.dumps(event.properties).decode()


def test_a_post_with_an_integer_id_and_nothing_else():
    event = only_event(notification("messages", messages=[
        referred("wamid.POST", {"source_type": "post", "source_id": 987654321, "headline": ""})]))  # fmt: skip
    assert event.properties["referral_source_type"] == "post"
    assert event.properties["referral_source_id"] == "987654321"
    assert "referral_headline" not in event.properties  # empty: not known


@pytest.mark.parametrize(
    ("referral", "reason"),
    [
        ("https://fb.me/3cr4Wqqkv", "'referral' is not an object"),
        ([REFERRAL], "'referral' is not an object"),
        ({k: v for k, v in REFERRAL.items() if k != "source_id"}, "'referral.source_id' is missing or not a string or an integer"),
        (REFERRAL | {"source_id": True}, "'referral.source_id' is missing or not a string or an integer"),
        (REFERRAL | {"source_id": ""}, "'referral.source_id' is missing or not a string or an integer"),
        ({k: v for k, v in REFERRAL.items() if k != "source_type"}, "'referral.source_type' is missing or not a non-empty string"),
        (REFERRAL | {"source_type": 1}, "'referral.source_type' is missing or not a non-empty string"),
        (REFERRAL | {"headline": 5}, "'referral.headline' is not a string"),
        (REFERRAL | {"source_url": ["x"]}, "'referral.source_url' is not a string"),
        (REFERRAL | {"ctwa_clid": {"id": "x"}}, "'referral.ctwa_clid' is not a string"),
        (REFERRAL | {"ctwa_clid": "c" * 257}, "'referral_ctwa_clid' longer than 256 characters"),
    ],
)  # fmt: skip
def test_a_malformed_referral_quarantines_its_message_alone(referral, reason):
    messages = [referred("wamid.GOOD", REFERRAL), referred("wamid.BAD", referral)]
    events, rejected = outcomes(notification("messages", messages=messages))
    assert [e.message_id for e in events] == ["wamid.GOOD"]
    assert [r.reason for r in rejected] == [reason]
    # Refused the same way from the stored delivery, whose text is redacted.
    again = outcomes(redact_whatsapp(notification("messages", messages=messages)))
    assert [r.reason for r in again[1]] == [reason]


def test_the_stored_delivery_keeps_the_ad_and_not_its_text():
    payload = notification("messages", messages=[referred("wamid.AD", REFERRAL)])
    stored = redact_whatsapp(payload)
    kept = stored["entry"][0]["changes"][0]["value"]["messages"][0]["referral"]
    for key in ("source_type", "source_id", "source_url", "headline", "ctwa_clid", "media_type"):
        assert kept[key] == REFERRAL[key]
    text = orjson.dumps(stored).decode()
    for words in ("Half price", "How can we help", "Is the sale still on?"):
        assert words not in text
    assert only_event(stored).properties == only_event(payload).properties


@pytest.mark.parametrize(
    "reply",
    [
        {"type": "button", "button": {"payload": "TRACK", "text": "Track my order"}},
        {"type": "interactive", "interactive": {"type": "button_reply",
                                                "button_reply": {"id": "yes", "title": "Yes"}}},
        {"type": "interactive", "interactive": {"type": "list_reply",
                                                "list_reply": {"id": "r1", "title": "Red",
                                                               "description": "The red one"}}},
    ],
)  # fmt: skip
def test_a_reply_to_a_template_names_the_template_message(reply):
    message = {"from": WA_ID, "id": "wamid.REPLY", "timestamp": str(T0),
               "context": {"from": BUSINESS["display_phone_number"], "id": "wamid.TEMPLATE"},
               **reply}  # fmt: skip
    payload = notification("messages", messages=[message])
    event = only_event(payload)
    assert event.properties["context_message_id"] == "wamid.TEMPLATE"
    assert event.properties["message_type"] == reply["type"]
    assert only_event(redact_whatsapp(payload)).properties == event.properties


# --- The CRM's template and campaign ------------------------------------------------------------

TEMPLATE = {"name": "summer_sale", "language": "en_US", "category": "marketing"}
CAMPAIGN = {"id": "cmp-2026-07", "name": "Summer sale"}


def template_send(message_id: str = "wamid.T", **extra) -> dict:
    payload = crm_event("whatsapp.message.sent", message_id, "+1 631-555-1234", T0, **extra)
    payload["message"] = {"id": message_id, "type": "template", "template": TEMPLATE}
    return payload


def test_a_crm_template_send_keeps_its_template_and_campaign():
    event = parse_crm_event(template_send(campaign=CAMPAIGN), RECEIVED)
    assert {k: event.properties[k] for k in event.properties if k.startswith(("template_", "campaign_"))} == {
        "template_name": "summer_sale", "template_language": "en_US",
        "template_category": "marketing", "campaign_id": "cmp-2026-07", "campaign_name": "Summer sale",
    }  # fmt: skip


def test_an_integer_campaign_id_is_kept_as_a_string_and_optional_parts_may_be_absent():
    payload = template_send(campaign={"id": 4711})
    payload["message"]["template"] = {"name": "order_update"}
    event = parse_crm_event(payload, RECEIVED)
    assert event.properties["campaign_id"] == "4711"
    assert event.properties["template_name"] == "order_update"
    assert not {"campaign_name", "template_language", "template_category"} & event.properties.keys()


MALFORMED_SENDS = [
    ({"template": "summer_sale"}, None, "'template' is not an object"),
    ({"template": {"language": "en_US"}}, None, "'template.name' is missing or not a non-empty string"),
    ({"template": {"name": ""}}, None, "'template.name' is missing or not a non-empty string"),
    ({"template": {"name": 3}}, None, "'template.name' is missing or not a non-empty string"),
    ({"template": TEMPLATE | {"language": 1}}, None, "'template.language' is not a string"),
    ({"template": TEMPLATE | {"category": ["marketing"]}}, None, "'template.category' is not a string"),
    ({}, "cmp-2026-07", "'campaign' is not an object"),
    ({}, {"name": "Summer sale"}, "'campaign.id' is missing or not a string or an integer"),
    ({}, {"id": True}, "'campaign.id' is missing or not a string or an integer"),
    ({}, {"id": 1.5}, "'campaign.id' is missing or not a string or an integer"),
    ({}, {"id": "c1", "name": {"en": "Sale"}}, "'campaign.name' is not a string"),
]  # fmt: skip


@pytest.mark.parametrize(("message", "campaign", "reason"), MALFORMED_SENDS)
def test_a_malformed_template_or_campaign_is_refused_also_once_stored(message, campaign, reason):
    payload = template_send()
    payload["message"] |= message
    if campaign is not None:
        payload["campaign"] = campaign
    for form in (payload, redact_crm(payload)):
        with pytest.raises(ParseError) as refused:
            parse_crm_event(form, RECEIVED)
        assert str(refused.value) == reason


def test_a_template_is_read_on_sends_only():
    received = crm_event("whatsapp.message.received", "wamid.R", "+16315551234", T0,
                         campaign="not read here")  # fmt: skip
    assert "campaign_id" not in parse_crm_event(received, RECEIVED).properties


def test_the_stored_crm_delivery_keeps_template_and_campaign_and_no_text():
    payload = template_send(campaign=CAMPAIGN)
    payload["message"]["text"] = "Olá Ana, 50% off today"
    stored = redact_crm(payload)
    assert stored["message"]["template"] == TEMPLATE and stored["campaign"] == CAMPAIGN
    text = orjson.dumps(stored).decode()
    assert "50% off" not in text and "Ana Souza" not in text
    assert (
        parse_crm_event(stored, RECEIVED).properties
        == parse_crm_event(payload, RECEIVED).properties
    )


def test_the_schema_and_the_readme_examples_agree():
    """The CRM's JSON schema accepts the README's examples and refuses a template without a
    name, as the worker does."""
    schema = json.loads((DOCS / "crm-webhook.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    readme = (DOCS / "README.md").read_text()
    examples = [json.loads(block.split("```", 1)[0]) for block in readme.split("```json\n")[1:]
                if block.lstrip().startswith('{"event"')]  # fmt: skip
    assert len(examples) == 2 and "campaign" in examples[1]
    for example in examples + [template_send(campaign={"id": 4711})]:
        jsonschema.validate(example, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(template_send() | {"campaign": {"name": "x"}}, schema)


# --- Marketing opt-outs: Meta's user_preferences webhook -----------------------------------------


def preference(value: str = "stop", at: object = T0, **ids) -> dict:
    item = ids or {"wa_id": WA_ID}
    return item | {"detail": f"User requested to {value} marketing messages",
                   "category": "marketing_messages", "value": value, "timestamp": at}  # fmt: skip


def preferences(*items: dict) -> dict:
    return notification("user_preferences", user_preferences=list(items),
                        contacts=[{"profile": {"name": "Ana Souza"}, "wa_id": WA_ID}])  # fmt: skip


def test_a_preference_change_is_an_event_about_the_contact():
    event = only_event(preferences(preference("stop")))
    assert (event.event_name, event.user_id, event.status) == ("preference_updated", E164, None)
    assert event.occurred_at == datetime.fromtimestamp(T0, UTC)
    assert event.properties == {
        "direction": "inbound", "preference_category": "marketing_messages", "preference": "stop",
        "business_phone_number_id": BUSINESS["phone_number_id"],
        "business_display_phone_number": BUSINESS["display_phone_number"],
    }  # fmt: skip
    fact = f"{E164}|marketing_messages|stop|{T0}"
    assert event.message_id == "pref." + hashlib.sha256(fact.encode()).hexdigest()[:40]


def test_a_retry_gives_the_same_id_and_another_change_another():
    first = only_event(preferences(preference("stop")))
    assert only_event(preferences(preference("stop", str(T0)))).message_id == first.message_id
    ids = {only_event(preferences(item)).message_id
           for item in (preference("resume"), preference("stop", T0 + 1),
                        preference(wa_id="447400123456"))}  # fmt: skip
    assert first.message_id not in ids and len(ids) == 3


def test_a_preference_names_the_contact_by_bsuid_like_any_item():
    only_bsuid = only_event(preferences(preference(user_id=BSUID)))
    assert only_bsuid.user_id == BSUID and "contact_user_id" not in only_bsuid.properties
    both = only_event(preferences(preference(wa_id=WA_ID, user_id=BSUID)))
    assert (both.user_id, both.properties["contact_user_id"]) == (E164, BSUID)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (preference("maybe"), "'value' is missing or not 'stop' or 'resume'"),
        ({k: v for k, v in preference().items() if k != "value"}, "'value' is missing or not 'stop' or 'resume'"),
        (preference() | {"value": ["stop"]}, "'value' is missing or not 'stop' or 'resume'"),
        ({k: v for k, v in preference().items() if k != "category"}, "'category' is missing or not a string"),
        ({k: v for k, v in preference().items() if k != "timestamp"}, "'timestamp' is missing"),
        (preference(at=5), "implausible"),
        (preference(at="soon"), "not ISO 8601"),
        ({k: v for k, v in preference().items() if k != "wa_id"}, "'wa_id' and 'user_id' are both missing"),
        (preference(user_id="not-an-id"), "business-scoped user id"),
        (preference(wa_id="12"), "phone number"),
        ("stop", "expected an object"),
    ],
)  # fmt: skip
def test_a_malformed_preference_is_quarantined_and_its_siblings_are_not(item, reason):
    events, rejected = outcomes(preferences(preference("resume", user_id=BSUID), item))
    assert [e.properties["preference"] for e in events] == ["resume"]
    [refused] = rejected
    assert reason in refused.reason and refused.path.endswith("user_preferences[1]")


def test_the_stored_preference_keeps_the_change_and_not_the_words_or_the_name():
    payload = preferences(preference("stop", user_id=BSUID))
    stored = redact_whatsapp(payload)
    text = orjson.dumps(stored).decode()
    assert "requested" not in text and "Ana Souza" not in text
    assert only_event(stored) == only_event(payload)


def test_with_hashing_the_preference_id_is_derived_from_the_pseudonym():
    key = "a-secret-key"
    rules = PhoneRules(None, key)
    payload = preferences(preference("stop"), preference("resume", user_id=BSUID))
    stored = pseudonymise_phones(redact_whatsapp(payload), "whatsapp", rules)
    assert WA_ID not in orjson.dumps(stored).decode()
    rows, rejected = processing.derived_rows(b"\0" * 16, "whatsapp", RECEIVED, stored, rules)
    direct, _ = processing.derived_rows(b"\0" * 16, "whatsapp", RECEIVED, payload, rules)
    assert not rejected and rows == direct
    by_number, by_bsuid = rows
    pseudonym = pseudonymise(E164, key)
    assert by_number[3] == pseudonym
    assert (
        by_number[4]
        == "pref."
        + hashlib.sha256(f"{pseudonym}|marketing_messages|stop|{T0}".encode()).hexdigest()[:40]
    )
    plain = outcomes(payload)[0][0].message_id
    assert by_number[4] != plain
    assert by_bsuid[3] == pseudonymise(BSUID, key) and by_bsuid[4].startswith("pref.")


# --- The contact's region, on every path -------------------------------------------------------


def _regions(rows) -> list:
    return [orjson.loads(row[10][1:]).get("contact_region") for row in rows]


ON_EVERY_PATH = [
    ("whatsapp", notification("messages", messages=[referred("wamid.M", REFERRAL, "5215512345678")]), ["MX"]),
    ("whatsapp", notification("messages", statuses=[status("wamid.S", "447400123456", T0),
                                                    status("wamid.S2", "16846221234", T0)]), ["GB", "AS"]),
    ("whatsapp", notification("smb_message_echoes", message_echoes=[
        {"from": BUSINESS["display_phone_number"], "to": "551187654321", "id": "wamid.E",
         "timestamp": str(T0), "type": "text", "text": {"body": "On it"}}]), ["BR"]),
    ("whatsapp", notification("history", history=[{"threads": [{"id": "919876543210", "messages": [
        {"from": "919876543210", "id": "wamid.H", "timestamp": str(T0), "type": "text",
         "text": {"body": "Old"}}]}]}]), ["IN"]),
    ("whatsapp", preferences(preference(wa_id="14165551234"), preference(user_id="us.9876543210")), ["CA", "US"]),
    ("whatsapp", notification("messages", statuses=[
        {"id": "wamid.N", "status": "sent", "timestamp": str(T0), "recipient_user_id": "ZZ.42"},
        {"id": "wamid.N2", "status": "sent", "timestamp": str(T0), "recipient_id": "80012345678"}]), [None, None]),
    ("crm", template_send(campaign=CAMPAIGN), ["US"]),
    ("crm", crm_event("whatsapp.message.received", "wamid.C", "+44 20 7946 0958", T0), ["GB"]),
]  # fmt: skip


@pytest.mark.parametrize(("source", "payload", "regions"), ON_EVERY_PATH)
@pytest.mark.parametrize("hash_key", [None, "a-secret-key"])
def test_every_event_knows_its_contacts_region_hashed_or_not(source, payload, regions, hash_key):
    rules = PhoneRules(None, hash_key)
    stored, _ = processing.stored_form(payload, orjson.dumps(payload), source, rules, redact=True)
    rows, rejected = processing.derived_rows(b"\0" * 16, source, RECEIVED, stored, rules)
    assert not rejected and _regions(rows) == regions
    if hash_key:
        assert all(row[3].startswith("h:") for row in rows)
        # The delivery as stored, re-derived (reprocess): the same regions, no number.
        again = orjson.loads(orjson.dumps(stored))
        assert (
            _regions(processing.derived_rows(b"\0" * 16, source, RECEIVED, again, rules)[0])
            == regions
        )


@pytest.mark.parametrize(
    "region", ["US", "CA", "AS", "PR", "GB", "GG", "JE", "IM", "RU", "KZ", "IT", "VA", "FI", "AX",
               "MX", "BR", "IN", "DE", "SJ", "NO", "CC", "AU", "GP", "MF", "CW", "BQ", "EH", "YT"],
)  # fmt: skip
def test_the_region_is_the_one_phonenumbers_gives(region):
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
        number = phonenumbers.example_number_for_type(region, kind)
        if number is None:
            continue
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        assert region_of_number(e164) == phonenumbers.region_code_for_number(number)
    assert region_of_number("+80012345678") is None  # non-geographic: "001"


def test_every_new_reason_is_counted_under_a_class():
    reasons = (
        [reason for _, reason in MALFORMED_PRICING]
        + [r for *_, r in MALFORMED_SENDS]
        + [
            "'referral.source_id' is missing or not a string or an integer",
            "'referral.headline' is not a string",
            "'value' is missing or not 'stop' or 'resume'",
            "'wa_id' and 'user_id' are both missing",
        ]
    )
    assert [r for r in reasons if reason_class(r) == "other"] == []


# --- Through the real path -----------------------------------------------------------------------


def _events(db, event_name: str) -> dict[str, tuple]:
    rows = db.execute(
        "select message_id, user_id, properties from raw.events where event_name = %s",
        (event_name,),
    )
    return {message_id: (user_id, properties) for message_id, user_id, properties in rows}


def _quarantine(db) -> dict[str, str]:
    return dict(db.execute("select item_path, reason from raw.quarantine").fetchall())


def _send_everything(client) -> None:
    """Each kind of issue 22's content, good beside malformed in one delivery where Meta batches
    items, and a preference sent twice (Meta's retry) and again in another delivery."""
    statuses = cloud_api_delivery(statuses=[
        status("wamid.PRICED", WA_ID, NOW - 60, "sent",
               pricing={"billable": True, "pricing_model": "PMP", "category": "marketing",
                        "type": "regular"}),
        status("wamid.BADPRICE", WA_ID, NOW - 60, "sent", pricing={"billable": "yes"}),
    ])  # fmt: skip
    one_bad_status = notification("messages", statuses=[
        status("wamid.FASTBAD", WA_ID, NOW - 60, pricing=PRICED | {"type": 7})])  # fmt: skip
    ads = cloud_api_delivery(messages=[
        referred("wamid.FROMAD", REFERRAL, "447400123456") | {"timestamp": str(NOW - 120)},
        referred("wamid.BADAD", {"source_type": "ad"}) | {"timestamp": str(NOW - 120)},
    ])  # fmt: skip
    opt_out = preferences(preference("stop", NOW - 30),
                          preference("sometimes", NOW - 30, user_id=BSUID))  # fmt: skip
    again_with_another = preferences(preference("stop", NOW - 30),
                                     preference("resume", NOW - 20, user_id=BSUID))  # fmt: skip
    send = template_send("wamid.TEMPLATED", campaign=CAMPAIGN) | {"timestamp": NOW - 90}
    bad_send = template_send("wamid.BADTEMPLATE") | {"timestamp": NOW - 90}
    bad_send["message"]["template"] = {"language": "en_US"}
    for path, payload in [(WA, statuses), (WA, one_bad_status), (WA, ads), (WA, opt_out),
                          (WA, opt_out), (WA, again_with_another), (CRM, send), (CRM, bad_send)]:  # fmt: skip
        assert signed_post(client, path, payload).status_code == 200


PATH = "entry[0].changes[0].value"
EXPECTED_QUARANTINE = {
    f"{PATH}.statuses[1]": "'pricing.billable' is not true or false",
    f"{PATH}.statuses[0]": "'pricing.type' is not a non-empty string",  # one status: the fast path's fallback
    f"{PATH}.messages[1]": "'referral.source_id' is missing or not a string or an integer",
    f"{PATH}.user_preferences[1]": "'value' is missing or not 'stop' or 'resume'",
    "$": "'template.name' is missing or not a non-empty string",
}


def test_issue_22_content_through_the_real_path(client, db, redis_conn, settings):
    _send_everything(client)
    assert run_worker(redis_conn, settings)
    _, priced = _events(db, "status_updated")["wamid.PRICED"]
    assert (priced["pricing_type"], priced["pricing_category"], priced["contact_region"]) == (
        "regular", "marketing", "US")  # fmt: skip
    user_id, from_ad = _events(db, "message_received")["wamid.FROMAD"]
    assert (user_id, from_ad["contact_region"], from_ad["referral_source_id"]) == (
        "+447400123456", "GB", REFERRAL["source_id"])  # fmt: skip
    assert from_ad["referral_ctwa_clid"] == REFERRAL["ctwa_clid"]
    _, sent = _events(db, "message_sent")["wamid.TEMPLATED"]
    assert (sent["template_name"], sent["campaign_id"], sent["campaign_name"]) == (
        "summer_sale", "cmp-2026-07", "Summer sale")  # fmt: skip
    changes = _events(db, "preference_updated")
    # The retry and the same change in another delivery added no row; the other item did.
    assert sorted((user_id, p["preference"], p["contact_region"]) for user_id, p in changes.values()) == [
        (E164, "stop", "US"), (BSUID, "resume", "BR")]  # fmt: skip
    # The malformed ones, each with its reason (rows of several deliveries share a path).
    reasons = db.execute("select item_path, reason from raw.quarantine").fetchall()
    assert sorted(reasons) == sorted(EXPECTED_QUARANTINE.items())
    stored = db.execute("select body::text from raw.deliveries").fetchall()
    text = " ".join(body for (body,) in stored)
    for words in ("requested to", "Ana Souza", "Half price", "Is the sale still on?", "Olá"):
        assert words not in text


def test_with_hashed_numbers_regions_stay_and_ids_hide_the_number(
    client, db, redis_conn, settings, monkeypatch
):
    key = "a-secret-key"
    monkeypatch.setenv("WA_PHONE_HASH_KEY", key)
    _send_everything(client)
    assert run_worker(redis_conn, settings)
    events = db.execute("select message_id, user_id, properties from raw.events").fetchall()
    assert events and all(user_id.startswith("h:") for _, user_id, _ in events)
    assert {p.get("contact_region") for *_, p in events} == {"US", "GB", "BR"}
    changes = _events(db, "preference_updated")
    plain = {
        "pref."
        + hashlib.sha256(f"{E164}|marketing_messages|stop|{NOW - 30}".encode()).hexdigest()[:40]
    }
    assert len(changes) == 2 and not plain & changes.keys()
    assert pseudonymise(E164, key) in {user_id for user_id, _ in changes.values()}
    bodies = " ".join(body for (body,) in db.execute("select body::text from raw.deliveries"))
    assert WA_ID not in bodies and "447400123456" not in bodies
    # Re-derived from what is stored (wa-analytics reprocess): the same rows, regions included.
    before = db.execute(
        "select event_id, message_id, user_id, properties from raw.events"
    ).fetchall()
    reprocess(settings.database_url, PhoneRules(None, key))
    after = db.execute(
        "select event_id, message_id, user_id, properties from raw.events"
    ).fetchall()
    assert sorted(after) == sorted(before)
    assert sorted(_quarantine(db).items()) == sorted(EXPECTED_QUARANTINE.items())
