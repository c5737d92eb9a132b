"""The whole path fuzzed: generated deliveries, signed, through the door, a worker and dbt.

Hypothesis generates lists of deliveries in both formats, mostly within the published schemas
and often beyond them (odd types, long ids, huge numbers, times out of range, odd phone forms,
duplicate keys, deep nesting, NUL characters); each is signed and POSTed to the real door, the
queue is drained by a real RQ worker, and at the end `dbt build` runs on everything stored.
Every 200 ends up stored (or a dead letter) and every refusal is a 4xx with a JSON reason; a
good delivery sent after each list is stored; the build succeeds; and the text people wrote
(every piece of it carries MARKER) reaches no table of any schema.

`make test` runs a bounded number of lists; `pytest tests/test_fuzz_pipeline.py
--fuzz-examples 500` runs more. No example database is kept (failures print the seed).
"""

import json
import time
from datetime import UTC, datetime, timedelta, timezone

import orjson
from helpers import TEST_SECRETS, build, run_worker
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st

from wa_analytics.core import signing
from wa_analytics.core.queueing import pending
from worker.dead_letters import dead_letters
from worker.failures import failed_jobs

MARKER = "ZQXJ"  # starts every text a person wrote; never generated anywhere else
SAFE = "abcdefghijklmnopqrstuvwxyz0123456789._-:/ "
NOW = int(time.time())

# Numbers as people and systems write them: valid ones (US, UK, Mexico in Meta's and the CRM's
# forms, Brazil with and without the ninth digit, India), and ones that are not numbers.
WA_IDS = ["16315551234", "447911123456", "5215512345678", "525512345678", "5511987654321",
          "551187654321", "919876543210", "12", "0000000000", "99999999999999999"]  # fmt: skip
CRM_PHONES = ["+1 631-555-1234", "+44 7911 123456", "+44 7911 123456#", "0044 7911 123456",
              "+52 55 1234 5678", "+52 1 55 1234 5678", "+55 11 98765-4321", "+55 11 8765-4321",
              "tel:+91-98765-43210", "(631) 555-1234", "+1 CALL NOW", "", "+"]  # fmt: skip

person_text = st.text(max_size=12).map(lambda text: MARKER + text)
safe_text = st.text(alphabet=SAFE, max_size=12)
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    safe_text,
    st.lists(st.integers(), max_size=2),
    st.dictionaries(safe_text, st.integers(), max_size=2),
)


def mostly(strategy):
    """Within the schema three times in four, anything else otherwise."""
    return st.one_of(strategy, strategy, strategy, odd)


message_ids = mostly(
    st.one_of(
        st.text(alphabet=SAFE, min_size=1, max_size=30).map(lambda text: "wamid." + text),
        st.sampled_from(["wamid.A", "wamid.B"]),  # shared between deliveries: duplicates
        st.text(alphabet="x", min_size=250, max_size=400),  # around the id limit
    )
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
timestamps = mostly(
    st.one_of(
        st.integers(min_value=NOW - 90 * 86400, max_value=NOW).map(str),
        st.integers(min_value=-(2**40), max_value=2**40),
        st.builds(
            lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone).isoformat(),
            st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
            offsets,
        ),
        st.sampled_from(
            [
                "0001-01-01T00:30:00+01:00",
                "9999-12-31T23:59:59-01:00",
                "2026-11-24T10:15:30",
                "soon",
                "1e300",
            ]
        ),  # fmt: skip
    )
)
error_codes = mostly(st.integers(min_value=-5, max_value=2**40))
metadata = mostly(
    st.fixed_dictionaries(
        {
            "display_phone_number": st.just("15550001111"),
            "phone_number_id": st.one_of(
                st.just("106540352242922"), st.text(alphabet="9", min_size=250, max_size=300)
            ),
        }
    )  # fmt: skip
)
message_types = mostly(st.sampled_from(["text", "image", "interactive", "reaction", "location"]))


@st.composite
def cloud_message(draw) -> dict:
    kind = draw(message_types)
    message = {"from": draw(mostly(st.sampled_from(WA_IDS))), "id": draw(message_ids),
               "timestamp": draw(timestamps), "type": kind}  # fmt: skip
    content = {"body": draw(person_text), "caption": draw(person_text), "emoji": draw(person_text),
               "latitude": draw(st.floats(allow_nan=False)), "name": draw(person_text),
               "mime_type": draw(mostly(st.just("image/jpeg"))),
               "type": "button_reply", "button_reply": {"title": draw(person_text)}}  # fmt: skip
    message[kind if isinstance(kind, str) else "text"] = draw(mostly(st.just(content)))
    return message


@st.composite
def cloud_status(draw) -> dict:
    status = {
        "id": draw(message_ids),
        "status": draw(mostly(st.sampled_from(["sent", "delivered", "read", "failed", "deleted"]))),
        "timestamp": draw(timestamps),
        "recipient_id": draw(mostly(st.sampled_from(WA_IDS))),
        "conversation": draw(mostly(st.just({"id": "c1", "origin": {"type": "service"}}))),
        "pricing": draw(mostly(st.just({"billable": True, "category": "service"}))),
        "errors": draw(mostly(st.just([{"code": draw(error_codes), "title": "x"}]))),
    }
    if draw(st.booleans()):  # written by the business that sent the message, as it likes
        status["biz_opaque_callback_data"] = draw(person_text)
    return status


@st.composite
def cloud_notification(draw) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": draw(metadata),
        "contacts": draw(mostly(st.just([{"profile": {"name": draw(person_text)},
                                          "wa_id": draw(mostly(st.sampled_from(WA_IDS)))}]))),
        "messages": draw(mostly(st.lists(cloud_message(), max_size=3))),
        "statuses": draw(mostly(st.lists(cloud_status(), max_size=3))),
    }  # fmt: skip
    if draw(st.booleans()):  # a field Meta adds, e.g. a business app's message echoes
        value["message_echoes"] = [{"id": "wamid.E", "text": {"body": draw(person_text)}}]
    change = {"field": draw(mostly(st.sampled_from(["messages", "smb_message_echoes"]))),
              "value": draw(mostly(st.just(value)))}  # fmt: skip
    entry = {"id": "1", "changes": [change]}
    payload = {"object": "whatsapp_business_account", "entry": draw(mostly(st.just([entry])))}
    for container in draw(st.lists(st.sampled_from([payload, entry, change]), max_size=2)):
        container["note"] = draw(person_text)  # a key no schema has, holding text
    return payload


@st.composite
def crm_delivery(draw) -> dict:
    return {
        "event": draw(mostly(st.sampled_from(["whatsapp.message.received", "whatsapp.message.sent",
                                              "whatsapp.status.updated"]))),
        "timestamp": draw(timestamps),
        "contact": draw(mostly(st.just({"phone": draw(mostly(st.sampled_from(CRM_PHONES))),
                                        "name": draw(person_text)}))),
        "message": draw(mostly(st.just({"id": draw(message_ids), "type": draw(message_types),
                                        "text": draw(mostly(person_text)),
                                        "media": draw(mostly(st.just({"caption": draw(person_text),
                                                                      "mime_type": "image/png"})))}))),
        "agent": draw(mostly(st.just({"id": draw(mostly(st.text(alphabet=SAFE, max_size=300))),
                                      "name": draw(person_text)}))),
        "notes": draw(mostly(person_text)),  # a key the schema does not have, holding text
        "status": draw(mostly(st.sampled_from(["sent", "delivered", "read", "failed"]))),
        "error": draw(mostly(st.just({"code": draw(error_codes), "title": draw(safe_text)}))),
    }  # fmt: skip


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth - 1):
        value = [value]
    return value


@st.composite
def delivery(draw) -> tuple[str, bytes]:
    """A webhook path and the body sent to it, sometimes bent beyond what JSON parsers agree on."""
    path, payload = draw(
        st.one_of(
            st.tuples(st.just("/webhooks/whatsapp"), cloud_notification()),
            st.tuples(st.just("/webhooks/crm"), crm_delivery()),
        )
    )
    bend = draw(st.sampled_from(["none"] * 6 + ["deep", "duplicate", "nul", "array"]))
    if bend == "deep":
        payload["junk"] = nested(draw(st.integers(min_value=55, max_value=80)))
    if bend == "nul":
        payload["junk"] = "a\x00b"
    # The standard library writes integers of any size (orjson stops at 64 bits).
    body = json.dumps(payload if bend != "array" else [payload], ensure_ascii=False).encode()
    if bend == "duplicate":  # the key again, first, holding text: a parser keeps the second
        body = b'{"entry":"' + MARKER.encode() + b'","event":"' + MARKER.encode() + b'",' + body[1:]
    return path, body


def signed(path: str, body: bytes) -> dict:
    if path == "/webhooks/crm":
        return {"X-Signature-256": signing.sign(body, TEST_SECRETS["CRM_WEBHOOK_SECRET"])}
    return {"X-Hub-Signature-256": signing.sign(body, TEST_SECRETS["WHATSAPP_APP_SECRET"])}


def tables_holding(db, text: str) -> list[str]:
    """Every table of the project's schemas with a row whose text holds ``text``."""
    found = []
    tables = db.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_schema in ('raw', 'staging', 'intermediate', 'marts', 'audit')"
        " and table_type = 'BASE TABLE'"
    ).fetchall()
    for schema, table in tables:
        query = f'select count(*) from "{schema}"."{table}" as t where t::text like %s'
        if db.execute(query, (f"%{text}%",)).fetchone()[0]:
            found.append(f"{schema}.{table}")
    return found


def test_fuzzed_deliveries_are_stored_or_refused_and_the_build_survives(
    client, db, redis_conn, settings, monkeypatch, request
):
    accepted: set[str] = set()
    sentinels = 0

    @examples(
        max_examples=request.config.getoption("--fuzz-examples"),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(delivery(), min_size=1, max_size=12), st.booleans())
    def fuzz(deliveries, hashed):
        nonlocal sentinels
        if hashed:
            monkeypatch.setenv("WA_PHONE_HASH_KEY", "fuzz-key")
        else:
            monkeypatch.delenv("WA_PHONE_HASH_KEY", raising=False)
        for path, body in deliveries:
            response = client.post(
                path, data=body, headers=signed(path, body), content_type="application/json"
            )
            assert response.status_code in (200, 400, 413, 422), response.get_data()
            if response.status_code == 200:
                accepted.add(response.get_json()["delivery_id"])
            else:
                assert response.get_json()["reason"]
        sentinels += 1
        sentinel = {"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {
            "statuses": [{"id": f"wamid.SENTINEL{sentinels}", "status": "sent",
                          "timestamp": str(NOW), "recipient_id": "16315551234"}]}}]}]}  # fmt: skip
        body = orjson.dumps(sentinel)
        answer = client.post("/webhooks/whatsapp", data=body, content_type="application/json",
                             headers=signed("/webhooks/whatsapp", body))  # fmt: skip
        assert answer.status_code == 200
        run_worker(redis_conn, settings)
        assert not pending(redis_conn) and failed_jobs(redis_conn, settings.queue_name) == []
        stored = db.execute(
            "select count(*) from raw.events where message_id = %s", (f"wamid.SENTINEL{sentinels}",)
        ).fetchone()[0]
        assert stored == 1
        unreasoned = db.execute("select count(*) from raw.quarantine where reason = ''").fetchone()
        assert unreasoned[0] == 0

    fuzz()
    # The generator reaches every outcome, not only refusals.
    events = "select count(*) from raw.events where message_id not like 'wamid.SENTINEL%%'"
    assert db.execute(events).fetchone()[0] > 0
    assert db.execute("select count(*) from raw.quarantine").fetchone()[0] > 0
    kept = {row[0] for row in db.execute("select delivery_id::text from raw.deliveries")}
    lettered = {letter.delivery_id for letter in dead_letters(redis_conn)}
    assert accepted <= kept | lettered, "an acknowledged delivery was neither stored nor kept"
    assert tables_holding(db, MARKER) == []
    build()
    assert tables_holding(db, MARKER) == []
