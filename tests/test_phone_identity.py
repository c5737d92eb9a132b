"""One person, one user_id in raw.events: WhatsApp's spelling of a number (from Meta) and the
CRM's spelling of it land on the same contact; numbers with an extension are quarantined, never
merged. Through the real path: signed webhooks, Redis, the RQ worker, PostgreSQL."""

import time

import pytest
from helpers import cloud_api_delivery, crm_event, run_worker, signed_post, status, text_message

NOW = int(time.time())
# (Meta's wa_id, the CRM's number, the user_id both must give)
SAME_PERSON = [
    ("5215512345678", "+52 55 1234 5678", "+525512345678"),  # Mexico: the mobile '1' after +52
    ("551187654321", "+55 11 98765-4321", "+5511987654321"),  # Brazil: before the ninth digit
]


def _send_both_spellings(client, tag: str, wa_id: str, crm_phone: str) -> None:
    meta = cloud_api_delivery(
        messages=[text_message(f"wamid.{tag}.IN", wa_id, NOW - 300, "Hola")],
        statuses=[status(f"wamid.{tag}.OUT", wa_id, NOW - 100, "delivered")],
        contacts=[{"profile": {"name": "Cliente"}, "wa_id": wa_id}],
    )
    assert signed_post(client, "/webhooks/whatsapp", meta).status_code == 200
    sent = crm_event(
        "whatsapp.message.sent", f"wamid.{tag}.OUT", crm_phone, NOW - 200, agent={"id": "a1"}
    )
    received = crm_event("whatsapp.message.received", f"wamid.{tag}.CRM", crm_phone, NOW - 250)
    for event in (sent, received):
        assert signed_post(client, "/webhooks/crm", event).status_code == 200


def _user_ids(db, tag: str) -> set[str]:
    rows = db.execute(
        "select user_id from raw.events where message_id like %s", (f"wamid.{tag}.%",)
    )
    return {user_id for (user_id,) in rows}


@pytest.mark.parametrize(("wa_id", "crm_phone", "user_id"), SAME_PERSON)
def test_meta_and_the_crm_spell_one_person_as_one_user_id(
    client, db, redis_conn, settings, wa_id, crm_phone, user_id
):
    _send_both_spellings(client, "P", wa_id, crm_phone)
    assert run_worker(redis_conn, settings)
    assert _user_ids(db, "P") == {user_id}
    names = db.execute("select event_name, source from raw.events order by 1, 2").fetchall()
    assert names == [
        ("message_received", "crm"),
        ("message_received", "whatsapp"),
        ("message_sent", "crm"),
        ("status_updated", "whatsapp"),
    ]
    assert db.execute("select count(*) from raw.quarantine").fetchone()[0] == 0


def test_with_hashing_both_spellings_give_one_pseudonym(
    client, db, redis_conn, settings, monkeypatch
):
    monkeypatch.setenv("WA_PHONE_HASH_KEY", "a-secret-key")
    for tag, (wa_id, crm_phone, _) in zip(("MX", "BR"), SAME_PERSON, strict=True):
        _send_both_spellings(client, tag, wa_id, crm_phone)
    run_worker(redis_conn, settings)
    [mexican], [brazilian] = _user_ids(db, "MX"), _user_ids(db, "BR")
    assert mexican.startswith("h:") and brazilian.startswith("h:") and mexican != brazilian


def test_two_numbers_with_an_extension_are_quarantined_not_merged(client, db, redis_conn, settings):
    for number, phone in enumerate(("+44 7911 123456#", "+44 7911 654321#")):
        event = crm_event("whatsapp.message.received", f"wamid.HASH{number}", phone, NOW - 60)
        assert signed_post(client, "/webhooks/crm", event).status_code == 200
    run_worker(redis_conn, settings)
    assert db.execute("select count(*) from raw.events").fetchone()[0] == 0
    reasons = [reason for (reason,) in db.execute("select reason from raw.quarantine")]
    assert len(reasons) == 2 and all("extension" in reason for reason in reasons)
