"""Who a delivery is about and who answered: business-scoped user ids, number changes, replies
from the WhatsApp Business app (message echoes) and history backfills, parsed (Meta's field
names, docs/webhooks/README.md), stored without their text, and merged with the CRM's reports
of the same messages by the worker's precedence, in both orders, through the real path."""

import itertools
from datetime import UTC, datetime

import orjson
import pytest
from helpers import BUSINESS, crm_event, run_worker, signed_post

from worker.parsing.event import Rejected
from worker.parsing.whatsapp import parse_notification
from worker.phones import PhoneRules
from worker.processing import derived_rows
from worker.redact import pseudonymise_phones, redact_whatsapp

RECEIVED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
T0 = int(datetime(2026, 11, 24, 10, 0, tzinfo=UTC).timestamp())
OLD, NEW = "5215512345678", "5215587654321"  # Meta's spelling of two Mexican mobiles
OLD_E164, NEW_E164 = "+525512345678", "+525587654321"
BSUID, NEW_BSUID = "MX.13491208655302741918", "MX.99812345678901234567"


def notification(field: str, **value) -> dict:
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": field, "value": {"messaging_product": "whatsapp", "metadata": BUSINESS, **value}}
    ]}]}  # fmt: skip


def number_change() -> dict:
    system = {"body": f"User Ana changed from {OLD} to {NEW}", "wa_id": NEW,
              "type": "user_changed_number", "user_id": NEW_BSUID, "previous_user_id": BSUID}  # fmt: skip
    return notification("messages", messages=[{
        "from": OLD, "from_user_id": BSUID, "id": "wamid.SYS", "timestamp": str(T0),
        "type": "system", "system": system,
    }])  # fmt: skip


def echo(message_id: str = "wamid.ECHO", at: int = T0 + 60) -> dict:
    return notification("smb_message_echoes", message_echoes=[{
        "from": BUSINESS["display_phone_number"], "to": NEW, "to_user_id": NEW_BSUID,
        "id": message_id, "timestamp": str(at), "type": "text", "text": {"body": "On it!"},
    }], contacts=[{"profile": {"username": "ana.s"}, "wa_id": NEW, "user_id": NEW_BSUID}])  # fmt: skip


def history(message_id: str = "wamid.PAST", at: int = T0 - 86400) -> dict:
    business = BUSINESS["display_phone_number"]
    thread = {"id": OLD, "context": {"wa_id": OLD, "user_id": BSUID, "username": "ana.s"},
              "messages": [
                  {"from": OLD, "id": message_id, "timestamp": str(at), "type": "text",
                   "text": {"body": "Is it in stock?"}, "history_context": {"status": "READ"}},
                  {"from": business, "to": OLD, "id": "wamid.PAST.OUT", "timestamp": str(at + 60),
                   "type": "text", "text": {"body": "Yes!"}, "history_context": {"status": "READ"}},
                  {"from": business, "id": "wamid.PAST.MEDIA", "timestamp": str(at + 90),
                   "type": "media_placeholder", "history_context": {"status": "PLAYED"}},
              ]}  # fmt: skip
    chunk = {"metadata": {"phase": 0, "chunk_order": 1, "progress": 100}, "threads": [thread]}
    return notification("history", history=[chunk])


def events_of(payload: dict) -> list:
    outcomes = list(parse_notification(payload, RECEIVED))
    assert not [o for o in outcomes if isinstance(o, Rejected)], outcomes
    return outcomes


def test_a_number_change_names_the_old_and_the_new_number_and_ids():
    [event] = events_of(number_change())
    assert (event.event_name, event.user_id) == ("message_received", OLD_E164)
    assert event.properties["message_type"] == "system"
    assert event.properties["system_type"] == "user_changed_number"
    assert event.properties["changed_to_user_id"] == NEW_E164
    assert event.properties["changed_to_contact_user_id"] == NEW_BSUID
    assert event.properties["changed_from_contact_user_id"] == BSUID
    assert event.properties["contact_user_id"] == BSUID


def test_a_bsuid_change_without_a_number_links_the_two_ids():
    system = {"type": "user_changed_user_id", "user_id": NEW_BSUID, "previous_user_id": BSUID}
    payload = notification("messages", messages=[{"from_user_id": BSUID, "id": "wamid.S2",
                                                  "timestamp": str(T0), "type": "system",
                                                  "system": system}])  # fmt: skip
    [event] = events_of(payload)
    assert event.user_id == BSUID
    assert event.properties["changed_to_user_id"] == NEW_BSUID


def test_a_contact_known_only_by_their_bsuid_is_still_a_contact():
    payload = notification(
        "messages",
        contacts=[{"profile": {"name": "Ana", "username": "ana.s"}, "user_id": BSUID}],
        messages=[{"from_user_id": BSUID, "id": "wamid.U", "timestamp": str(T0),
                   "type": "text", "text": {"body": "hi"}}],
        statuses=[{"id": "wamid.R", "status": "read", "timestamp": str(T0),
                   "recipient_user_id": BSUID}],
    )  # fmt: skip
    message, read = events_of(payload)
    assert (message.user_id, read.user_id) == (BSUID, BSUID)
    assert "contact_user_id" not in message.properties


def test_a_number_beside_a_bsuid_is_the_user_id_and_links_them():
    payload = notification("messages", statuses=[{"id": "wamid.R", "status": "delivered",
                                                  "timestamp": str(T0), "recipient_id": OLD,
                                                  "recipient_user_id": BSUID}])  # fmt: skip
    [event] = events_of(payload)
    assert (event.user_id, event.properties["contact_user_id"]) == (OLD_E164, BSUID)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"id": "wamid.X", "timestamp": str(T0), "type": "text"}, "'from' and 'from_user_id'"),
        ({"from_user_id": "5215512345678", "id": "wamid.X", "timestamp": str(T0), "type": "text"},
         "business-scoped"),
        ({"from_user_id": {"id": 1}, "id": "wamid.X", "timestamp": str(T0), "type": "text"},
         "business-scoped"),
    ],
)  # fmt: skip
def test_a_contact_without_a_usable_id_is_quarantined(item, reason):
    [outcome] = parse_notification(notification("messages", messages=[item]), RECEIVED)
    assert isinstance(outcome, Rejected) and reason in outcome.reason


def test_an_echo_is_a_reply_from_the_business_app():
    [event] = events_of(echo())
    assert (event.event_name, event.user_id, event.message_id) == (
        "message_sent",
        NEW_E164,
        "wamid.ECHO",
    )
    assert event.properties["agent_id"] == "business_app"
    assert event.properties["contact_user_id"] == NEW_BSUID
    assert event.properties["content_length"] == len("On it!")


def test_a_history_backfill_gives_past_messages_in_both_directions():
    inbound, outbound, media = events_of(history())
    assert (inbound.event_name, inbound.user_id) == ("message_received", OLD_E164)
    assert (outbound.event_name, outbound.user_id) == ("message_sent", OLD_E164)
    # A past message of the business without `to` belongs to the thread's contact.
    assert (media.event_name, media.user_id) == ("message_sent", OLD_E164)
    assert media.properties["contact_user_id"] == BSUID
    assert all(e.properties["is_backfill"] for e in (inbound, outbound, media))
    assert outbound.properties["agent_id"] == "business_app"


def test_a_declined_history_sync_carries_no_events():
    declined = notification("history", history=[{"errors": [
        {"code": 2593109, "title": "History sync is turned off by the business"}]}])  # fmt: skip
    assert list(parse_notification(declined, RECEIVED)) == []


@pytest.mark.parametrize("payload", [number_change(), echo(), history()])
def test_what_is_stored_keeps_the_ids_and_no_text(payload):
    stored = redact_whatsapp(payload)
    text = orjson.dumps(stored).decode()
    for words in ("On it!", "Is it in stock?", "Yes!", "Ana changed", "ana.s"):
        assert words not in text
    again = [(e.user_id, e.message_id, e.properties) for e in events_of(stored)]
    assert again == [(e.user_id, e.message_id, e.properties) for e in events_of(payload)]


@pytest.mark.parametrize("payload", [number_change(), echo(), history()])
def test_with_hashing_no_number_is_stored_and_links_still_join(payload):
    rules = PhoneRules(None, "a-secret-key")
    stored = pseudonymise_phones(redact_whatsapp(payload), "whatsapp", rules)
    text = orjson.dumps(stored).decode()
    assert OLD not in text and NEW not in text
    events, rejected = derived_rows(b"\0" * 16, "whatsapp", RECEIVED, stored, rules)
    assert not rejected
    # Re-deriving what is stored gives the same pseudonyms as the delivery itself.
    direct, _ = derived_rows(b"\0" * 16, "whatsapp", RECEIVED, payload, rules)
    assert events == direct
    for row in events:
        properties = orjson.loads(row[10][1:])
        ids = [row[3]] + [properties[k] for k in properties if k.endswith("user_id")]
        assert all(value.startswith("h:") for value in ids), ids


def _stored(db, message_id):
    return db.execute(
        "select source, properties ->> 'agent_id', properties ? 'is_backfill', occurred_at"
        " from raw.events where message_id = %s and event_name <> 'status_updated'",
        (message_id,),
    ).fetchall()


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_meta_live_report_wins_over_the_crm_and_the_backfill_in_any_order(
    client, db, redis_conn, settings, order
):
    """The same message reported live by Meta (an echo), by the CRM (with its agent) and in a
    history backfill (a second earlier, by the phone's clock): Meta's live report is kept."""
    crm = crm_event("whatsapp.message.sent", "wamid.SAME", "+52 55 8765 4321", T0 + 60,
                    agent={"id": "agent-7"})  # fmt: skip
    past = notification("history", history=[{"threads": [{"id": NEW, "messages": [
        {"from": BUSINESS["display_phone_number"], "to": NEW, "id": "wamid.SAME",
         "timestamp": str(T0 + 59), "type": "text", "text": {"body": "On it!"}}]}]}])  # fmt: skip
    reports = [("/webhooks/whatsapp", echo("wamid.SAME")), ("/webhooks/crm", crm),
               ("/webhooks/whatsapp", past)]  # fmt: skip
    for index in order:
        path, payload = reports[index]
        assert signed_post(client, path, payload).status_code == 200
        assert run_worker(redis_conn, settings)
    [(source, agent, is_backfill, occurred_at)] = _stored(db, "wamid.SAME")
    assert (source, agent, is_backfill) == ("whatsapp", "business_app", False)
    assert occurred_at == datetime.fromtimestamp(T0 + 60, UTC)
