"""Parsing both webhook formats into standardised events, and redacting what is stored."""

from datetime import UTC, datetime

import orjson
import pytest
from helpers import cloud_api_delivery, crm_event, status, text_message
from hypothesis import given
from hypothesis import strategies as st

from worker.parsing.crm import parse_crm_event
from worker.parsing.errors import ParseError
from worker.parsing.event import Event, Rejected, parse_timestamp, require
from worker.parsing.whatsapp import parse_notification
from worker.redact import holds_no_text, redact_crm, redact_whatsapp

RECEIVED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
T0 = int(datetime(2026, 11, 24, 10, 15, 30, tzinfo=UTC).timestamp())
WA_ID = "16315551234"

MESSAGES_OF_EVERY_TYPE = {
    "text": ({"text": {"body": "Hi, is my order ready?"}}, 22, False),
    "image": ({"image": {"id": "m1", "mime_type": "image/jpeg", "sha256": "x", "caption": "Look"}}, 4, True),
    "audio": ({"audio": {"id": "m2", "mime_type": "audio/ogg; codecs=opus", "voice": True}}, 0, True),
    "video": ({"video": {"id": "m3", "mime_type": "video/mp4", "caption": "clip"}}, 4, True),
    "document": ({"document": {"id": "m4", "mime_type": "application/pdf", "filename": "invoice.pdf", "caption": "Invoice"}}, 7, True),
    "sticker": ({"sticker": {"id": "m5", "mime_type": "image/webp", "animated": False}}, 0, True),
    "location": ({"location": {"latitude": -23.55, "longitude": -46.63, "name": "Home", "address": "Rua A"}}, 0, False),
    "contacts": ({"contacts": [{"name": {"formatted_name": "Bob"}, "phones": [{"phone": "+1 555 0100"}]}]}, 0, False),
    "interactive": ({"interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes please"}}}, 10, False),
    "button": ({"button": {"text": "Track order", "payload": "TRACK"}}, 11, False),
    "reaction": ({"reaction": {"message_id": "wamid.OUT1", "emoji": "👍"}}, 1, False),
    "unsupported": ({"errors": [{"code": 131051, "title": "Message type unknown"}]}, 0, False),
}  # fmt: skip


def only_events(outcomes):
    outcomes = list(outcomes)
    assert not [o for o in outcomes if isinstance(o, Rejected)], outcomes
    return outcomes


@pytest.mark.parametrize("message_type", sorted(MESSAGES_OF_EVERY_TYPE))
def test_every_message_type_becomes_an_inbound_event(message_type):
    content, length, has_media = MESSAGES_OF_EVERY_TYPE[message_type]
    message = {
        "from": WA_ID,
        "id": f"wamid.{message_type}",
        "timestamp": str(T0),
        "type": message_type,
        **content,
    }
    [event] = only_events(parse_notification(cloud_api_delivery([message]), RECEIVED))
    assert event.event_name == "message_received"
    assert event.user_id == "+16315551234"
    assert event.message_id == f"wamid.{message_type}"
    assert event.occurred_at == datetime(2026, 11, 24, 10, 15, 30, tzinfo=UTC)
    assert event.properties["direction"] == "inbound"
    assert event.properties["message_type"] == message_type
    assert event.properties["content_length"] == length
    assert event.properties["has_media"] is has_media
    assert event.properties["business_phone_number_id"] == "106540352242922"


def test_message_details_are_kept_without_text():
    image = {"from": WA_ID, "id": "wamid.I", "timestamp": str(T0), "type": "image",
             "context": {"from": "15550001111", "id": "wamid.OUT", "forwarded": True},
             **MESSAGES_OF_EVERY_TYPE["image"][0]}  # fmt: skip
    reaction = {"from": WA_ID, "id": "wamid.R", "timestamp": str(T0), "type": "reaction",
                **MESSAGES_OF_EVERY_TYPE["reaction"][0]}  # fmt: skip
    unsupported = {"from": WA_ID, "id": "wamid.U", "timestamp": str(T0), "type": "unsupported",
                   **MESSAGES_OF_EVERY_TYPE["unsupported"][0]}  # fmt: skip
    events = only_events(
        parse_notification(cloud_api_delivery([image, reaction, unsupported]), RECEIVED)
    )
    assert events[0].properties["media_mime_type"] == "image/jpeg"
    assert events[0].properties["context_message_id"] == "wamid.OUT"
    assert events[0].properties["is_forwarded"] is True
    assert events[1].properties["reaction_message_id"] == "wamid.OUT1"
    assert events[2].properties["error_code"] == 131051


def test_statuses_become_status_events_with_pricing_and_errors():
    failed = status("wamid.OUT2", WA_ID, T0 + 5, "failed",
                    errors=[{"code": 131026, "title": "Message undeliverable"}])  # fmt: skip
    delivery = cloud_api_delivery(statuses=[status("wamid.OUT1", WA_ID, T0, "read"), failed])
    read, fail = only_events(parse_notification(delivery, RECEIVED))
    assert (read.event_name, read.status, read.message_id) == (
        "status_updated",
        "read",
        "wamid.OUT1",
    )
    assert read.user_id == "+16315551234"
    assert read.properties["pricing_category"] == "service"
    assert read.properties["is_billable"] is True
    assert read.properties["conversation_id"] == "CONVERSATION_ID"
    assert read.properties["conversation_origin_type"] == "service"
    assert fail.properties["error_code"] == 131026
    assert fail.properties["error_title"] == "Message undeliverable"


def test_a_batched_delivery_yields_every_item_and_rejects_only_the_bad_one():
    delivery = cloud_api_delivery(
        messages=[text_message("wamid.A", WA_ID, T0), text_message("wamid.B", "not-digits", T0)],
        statuses=[
            status("wamid.C", WA_ID, T0, "delivered"),
            status("wamid.D", WA_ID, T0, "exploded"),
        ],
    )
    delivery["entry"].append(cloud_api_delivery([text_message("wamid.E", WA_ID, T0)])["entry"][0])
    outcomes = list(parse_notification(delivery, RECEIVED))
    events = [o for o in outcomes if isinstance(o, Event)]
    rejected = [o for o in outcomes if isinstance(o, Rejected)]
    assert [e.message_id for e in events] == ["wamid.A", "wamid.C", "wamid.E"]
    assert [r.path for r in rejected] == [
        "entry[0].changes[0].value.messages[1]",
        "entry[0].changes[0].value.statuses[1]",
    ]
    assert "not all digits" in rejected[0].reason
    assert "unknown status 'exploded'" in rejected[1].reason


def test_other_webhook_fields_carry_no_events():
    delivery = cloud_api_delivery([text_message("wamid.A", WA_ID, T0)])
    delivery["entry"][0]["changes"][0]["field"] = "message_template_status_update"
    assert list(parse_notification(delivery, RECEIVED)) == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"object": "whatsapp_business_account"}, "'entry'"),
        ({"object": "whatsapp_business_account", "entry": [{"changes": "x"}]}, "'changes'"),
        (
            {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": 3}]}]},
            "'value'",
        ),
    ],
)
def test_malformed_structure_is_rejected_with_a_reason(payload, reason):
    [rejected] = list(parse_notification(payload, RECEIVED))
    assert isinstance(rejected, Rejected) and reason in rejected.reason


@pytest.mark.parametrize(
    ("crm_name", "event_name", "direction"),
    [
        ("whatsapp.message.received", "message_received", "inbound"),
        ("whatsapp.message.sent", "message_sent", "outbound"),
    ],
)
def test_crm_messages(crm_name, event_name, direction):
    payload = crm_event(crm_name, "wamid.X", "+1 631-555-1234", "2026-11-24T10:15:30Z",
                        agent={"id": "agent-7", "name": "Maria"})  # fmt: skip
    event = parse_crm_event(payload, RECEIVED)
    assert (event.event_name, event.user_id, event.message_id) == (
        event_name,
        "+16315551234",
        "wamid.X",
    )
    assert event.properties["direction"] == direction
    assert event.properties["content_length"] == len("Olá! Como posso ajudar?")
    assert event.occurred_at == datetime(2026, 11, 24, 10, 15, 30, tzinfo=UTC)
    assert ("agent_id" in event.properties) is (event_name == "message_sent")


def test_crm_status_with_error_and_unix_timestamp():
    payload = crm_event("whatsapp.status.updated", "wamid.X", "16315551234", T0, status="failed",
                        error={"code": 131026, "title": "Message undeliverable"})  # fmt: skip
    event = parse_crm_event(payload, RECEIVED)
    assert (event.event_name, event.status) == ("status_updated", "failed")
    assert event.properties["error_code"] == 131026
    assert event.occurred_at == datetime.fromtimestamp(T0, UTC)


def test_crm_media_message():
    payload = crm_event("whatsapp.message.received", "wamid.M", "+1 631 555 1234", T0,
                        message={"id": "wamid.M", "type": "image", "text": None,
                                 "media": {"mime_type": "image/png", "caption": "receipt"}})  # fmt: skip
    event = parse_crm_event(payload, RECEIVED)
    assert event.properties["has_media"] is True
    assert event.properties["content_length"] == 7
    assert event.properties["message_type"] == "image"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"contact": None}, "'contact'"),
        ({"contact": {"phone": "12345"}}, "phone number"),
        ({"message": {"type": "text"}}, "'id'"),
        ({"timestamp": "2026-11-24T10:15:30"}, "no UTC offset"),
        ({"timestamp": "yesterday"}, "not ISO 8601"),
        ({"timestamp": None}, "'timestamp'"),
        ({"event": "whatsapp.status.updated", "status": "lost"}, "unknown status"),
    ],
)
def test_crm_items_that_cannot_become_events(change, reason):
    payload = crm_event("whatsapp.message.received", "wamid.X", "+16315551234", T0)
    payload.update(change)
    with pytest.raises(ParseError, match=reason):
        parse_crm_event(payload, RECEIVED)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (T0, datetime.fromtimestamp(T0, UTC)),
        (str(T0), datetime.fromtimestamp(T0, UTC)),
        (float(T0) + 0.5, datetime.fromtimestamp(T0 + 0.5, UTC)),
        ("2026-11-24T07:15:30-03:00", datetime(2026, 11, 24, 10, 15, 30, tzinfo=UTC)),
        ("2026-11-24T15:45:30+05:30", datetime(2026, 11, 24, 10, 15, 30, tzinfo=UTC)),
        ("2026-11-24T10:15:30.250Z", datetime(2026, 11, 24, 10, 15, 30, 250000, tzinfo=UTC)),
    ],
)
def test_timestamps(value, expected):
    assert parse_timestamp(value, RECEIVED) == expected


@pytest.mark.parametrize("value", ["99999999999999999999", 1e300, "1999-01-01T00:00:00Z",
                                   "2027-06-01T00:00:00Z", True, None, [], "nan"])  # fmt: skip
def test_implausible_timestamps_are_refused(value):
    with pytest.raises(ParseError):
        parse_timestamp(value, RECEIVED)


def test_redaction_removes_every_text_and_keeps_the_lengths():
    messages = [
        {"from": WA_ID, "id": f"wamid.{t}", "timestamp": str(T0), "type": t, **content}
        for t, (content, _, _) in MESSAGES_OF_EVERY_TYPE.items()
    ]
    delivery = cloud_api_delivery(
        messages, contacts=[{"profile": {"name": "Ana Souza"}, "wa_id": WA_ID}]
    )
    stored = redact_whatsapp(delivery)
    text = orjson.dumps(stored).decode()
    for secret in ("Hi, is my order ready", "Look", "Invoice", "invoice.pdf", "Home", "Rua A", "Bob",
                   "+1 555 0100", "Yes please", "Track order", "👍", "Ana Souza", "-23.55"):  # fmt: skip
        assert secret not in text
    original = [(e.message_id, e.properties) for e in parse_notification(delivery, RECEIVED)]
    again = [(e.message_id, e.properties) for e in parse_notification(stored, RECEIVED)]
    assert again == original


def test_crm_redaction():
    payload = crm_event("whatsapp.message.received", "wamid.X", "+16315551234", T0)
    stored = redact_crm(payload)
    assert "Olá" not in orjson.dumps(stored).decode() and "Ana" not in orjson.dumps(stored).decode()
    assert (
        parse_crm_event(stored, RECEIVED).properties
        == parse_crm_event(payload, RECEIVED).properties
    )


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=30))  # fmt: skip
def test_parsers_and_redaction_never_crash_on_arbitrary_json(value):
    payload = {"object": "whatsapp_business_account", "entry": value}
    for outcome in parse_notification(payload, RECEIVED):
        assert isinstance(outcome, Event | Rejected)
    redact_whatsapp(
        {
            "object": "whatsapp_business_account",
            "entry": [{"changes": [{"value": {"messages": value}}]}],
        }
    )
    crm = {
        "event": "whatsapp.message.received",
        "contact": value,
        "message": value,
        "timestamp": value,
    }
    redact_crm(crm)
    try:
        parse_crm_event(crm, RECEIVED)
    except ParseError:
        pass


def _status_notification(item: object, metadata: object = None, field: str = "messages") -> dict:
    """A notification as Meta sends a status: no messages or contacts keys at all."""
    value = {"messaging_product": "whatsapp", "statuses": [item]}
    if metadata is not None:
        value["metadata"] = metadata
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": field, "value": value}
    ]}]}  # fmt: skip


FAILED = status("wamid.F", WA_ID, T0, "failed", errors=[{"code": 131026, "title": "Undeliverable"}])
BY_BSUID = {"id": "wamid.B", "status": "read", "timestamp": T0, "recipient_user_id": "BR.13491208"}
ONE_STATUS_NOTIFICATIONS = [
    _status_notification(status("wamid.D", WA_ID, T0), {"phone_number_id": "1065"}),
    _status_notification(status("wamid.R", WA_ID, T0, "read"), {"display_phone_number": 1555}),
    _status_notification(FAILED),
    _status_notification(
        {"id": "wamid.I", "status": "sent", "timestamp": T0, "recipient_id": 4479}
    ),
    _status_notification(status("wamid.ISO", WA_ID, T0) | {"timestamp": "2026-11-24T10:15:30Z"}),
    _status_notification(status("wamid.U", WA_ID, T0, "bounced")),
    _status_notification(status("wamid.T", WA_ID, T0) | {"timestamp": "99999999999"}),
    _status_notification(status("wamid.P", "12", T0)),
    _status_notification({"id": "wamid.M", "status": "sent"}),
    _status_notification("not an object"),
    _status_notification(status("wamid.X", WA_ID, T0), field="message_template_status_update"),
    _status_notification(status("wamid.Y", WA_ID, T0), metadata="odd"),
    _status_notification(status("wamid.PT", WA_ID, T0, pricing={"type": "free_entry_point"})),
    _status_notification(status("wamid.PX", WA_ID, T0, pricing={"billable": "yes"})),
    _status_notification(status("wamid.PS", WA_ID, T0, pricing="free")),
    _status_notification(BY_BSUID),
    _status_notification(status("wamid.NG", "80012345678", T0)),  # a number of no region
]


@given(
    st.lists(st.sampled_from(ONE_STATUS_NOTIFICATIONS), min_size=1, max_size=6),
    st.sampled_from([None, "SOME-KEY"]),
)
def test_the_one_status_fast_path_stores_what_the_general_path_stores(notifications, hash_key):
    """Most deliveries take a shortcut past the general walk; every row it gives (deliveries,
    events, quarantined items) must be the one the general path gives."""
    from wa_analytics.core.queueing import Envelope, delivery_id_for
    from worker import processing
    from worker.phones import PhoneRules

    bodies = [orjson.dumps(n) for n in notifications]
    envelopes = [Envelope(delivery_id_for("whatsapp", b), "whatsapp", RECEIVED.timestamp(), b)
                 for b in bodies]  # fmt: skip
    rules = PhoneRules(hash_key=hash_key)
    fast = processing.build_batch(envelopes, rules)
    original, processing.single_status = processing.single_status, lambda payload: None
    try:
        general = processing.build_batch(envelopes, rules)
    finally:
        processing.single_status = original
    assert (fast.deliveries, fast.events, fast.quarantine) == (
        general.deliveries, general.events, general.quarantine
    )  # fmt: skip


@pytest.mark.parametrize(
    ("mapping", "key", "kind", "expected"),
    [
        ({"id": "wamid.1"}, "id", str, "wamid.1"),
        ({"from": 16315551234}, "from", (str, int), 16315551234),
        ({"from": "16315551234"}, "from", (str, int), "16315551234"),
        ({"message": {"type": "text"}}, "message", dict, {"type": "text"}),
    ],
)
def test_require_returns_a_present_value_of_its_kind(mapping, key, kind, expected):
    assert require(mapping, key, kind) == expected


@pytest.mark.parametrize(
    ("mapping", "key", "kind"),
    [
        ({"message": "text where an object belongs"}, "message", dict),
        ({"id": ""}, "id", str),
        ({"id": 7}, "id", str),
        ({"from": True}, "from", (str, int)),
        ({}, "id", str),
        (["id"], "id", str),
        ("id", "id", str),
    ],
)
def test_require_refuses_what_is_missing_or_of_another_kind(mapping, key, kind):
    with pytest.raises(ParseError, match=repr(key)):
        require(mapping, key, kind)


def test_keys_no_schema_has_are_redacted_at_every_level():
    """Redaction keeps what it knows is structure and redacts everything else: a field Meta adds
    (a business app's message echoes) or a sender invents may hold what people wrote."""
    secret = "meet me at 5"
    notification = cloud_api_delivery(statuses=[status("wamid.S", "16315551234", 1764000990)])
    notification["note"] = secret
    entry = notification["entry"][0]
    entry["note"] = secret
    entry["changes"][0]["note"] = secret
    value = entry["changes"][0]["value"]
    value["message_echoes"] = [{"id": "wamid.E", "text": {"body": secret}}]
    value["metadata"] = value["metadata"] | {"note": secret}
    value["statuses"][0]["biz_opaque_callback_data"] = secret  # the sending business's own
    value["statuses"][0]["pricing"]["note"] = secret
    crm = crm_event("whatsapp.message.sent", "wamid.C", "+16315551234", 1764000990,
                    agent={"id": "agent-7", "name": secret}, notes=secret)  # fmt: skip
    redacted = [redact_whatsapp(notification), redact_crm(crm)]
    assert secret not in orjson.dumps(redacted).decode()
    kept = redacted[0]["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert kept["id"] == "wamid.S" and kept["pricing"]["category"] == "service"
    assert not holds_no_text(notification)
    statuses_only = cloud_api_delivery(statuses=[status("wamid.S", "16315551234", 1764000990)])
    del statuses_only["entry"][0]["changes"][0]["value"]["contacts"]
    del statuses_only["entry"][0]["changes"][0]["value"]["messages"]
    assert holds_no_text(statuses_only)
    assert redacted[1]["agent"]["id"] == "agent-7" and redacted[1]["contact"]["phone"]
