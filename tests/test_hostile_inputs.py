"""Malformed and hostile deliveries, each with its documented outcome (docs/webhooks/README.md):
refused at the door with a 4xx and a JSON reason (nothing stored), or, when authentic but not
parseable, stored and quarantined with the reason. After all of them the service still serves.
"""

import logging
import time

import orjson
import pytest
from helpers import (
    TEST_SECRETS,
    cloud_api_delivery,
    crm_event,
    run_worker,
    signed_post,
    status,
    text_message,
)

from ingest_service import create_app
from wa_analytics.core import signing
from wa_analytics.core.config import load_settings
from worker.parsing.errors import reason_class

NOW = int(time.time())
WA = "/webhooks/whatsapp"
CRM = "/webhooks/crm"
GOOD = orjson.dumps(cloud_api_delivery([text_message("wamid.GOOD", "16315551234", NOW)]))
WA_SECRET = TEST_SECRETS["WHATSAPP_APP_SECRET"]


def raw_post(client, path, body: bytes, headers: dict, content_type="application/json"):
    return client.post(path, data=body, headers=headers, content_type=content_type)


def signature(body: bytes, secret: str = WA_SECRET) -> dict:
    return {"X-Hub-Signature-256": signing.sign(body, secret)}


def nested(depth: int) -> bytes:
    return b'{"object":"whatsapp_business_account","entry":' + b"[" * depth + b"]" * depth + b"}"


def nested_objects(depth: int) -> bytes:
    """Objects within objects, under the top-level one: ``depth`` levels in all."""
    inner = b'{"a":' * (depth - 2) + b"1" + b"}" * (depth - 2)
    return b'{"object":"whatsapp_business_account","entry":[' + inner + b"]}"


def duplicated(key: bytes, first: bytes, second: bytes) -> bytes:
    """A Cloud API change with ``key`` twice: a parser keeps the second, a raw copy both."""
    change = b'{"field":"messages","' + key + b'":' + first + b',"' + key + b'":' + second + b"}"
    return b'{"object":"whatsapp_business_account","entry":[{"changes":[' + change + b"]}]}"


TEXT_VALUE = orjson.dumps(cloud_api_delivery([text_message("wamid.D", "16315551234", NOW)])
                          ["entry"][0]["changes"][0]["value"])  # fmt: skip
STATUS_VALUE = orjson.dumps(cloud_api_delivery(statuses=[status("wamid.D", "16315551234", NOW)])
                            ["entry"][0]["changes"][0]["value"])  # fmt: skip


# (name, path, body, headers, content type, expected status)
DOOR_CASES = [
    ("truncated JSON", WA, GOOD[:-7], None, "application/json", 400),
    ("not JSON at all", WA, b"hello=world", None, "application/json", 400),
    ("empty body", WA, b"", None, "application/json", 400),
    ("invalid UTF-8", WA, b'{"object":"whatsapp_business_account","x":"\xff\xfe"}', None,
     "application/json", 400),
    ("lone surrogate escape", WA, b'{"object":"whatsapp_business_account","x":"\\ud800"}', None,
     "application/json", 400),
    ("number too large for a double", WA, b'{"object":"whatsapp_business_account","x":1e400}',
     None, "application/json", 400),
    ("nesting 100,000 deep", WA, nested(100_000), None, "application/json", 400),
    ("lists nested 65 deep (the worker re-serialises what it keeps)", WA, nested(64), None,
     "application/json", 422),
    ("objects nested 65 deep", WA, nested_objects(65), None, "application/json", 422),
    ("lists nested 64 deep (the limit: accepted)", WA, nested(63), None, "application/json", 200),
    ("objects nested 64 deep (the limit: accepted)", WA, nested_objects(64), None,
     "application/json", 200),
    ("a change with 'value' twice, text in the first", WA,
     duplicated(b"value", TEXT_VALUE, STATUS_VALUE), None, "application/json", 422),
    ("a top-level key twice", WA, b'{"object":"whatsapp_business_account","object":"x"}', None,
     "application/json", 422),
    ("a key twice, spaced, beside a string with colons", WA,
     b'{"object":"whatsapp_business_account","t":"10:15:30","a" : 1,"a":2}', None,
     "application/json", 422),
    ("a key twice, a colon escaped in a kept string", WA,
     b'{"object":"whatsapp_business_account","a":1,"a":"\\u003a"}',
     None, "application/json", 422),
    ("a key twice in a nested object", WA,
     duplicated(b"x", b'{"id":"1","id":"2"}', b"1"), None, "application/json", 422),
    ("equal keys in different objects (accepted)", WA,
     b'{"object":"whatsapp_business_account","a":{"id":1},"b":{"id":1},"t":"1:2"}', None,
     "application/json", 200),
    ("CRM event that is a list", CRM, b'{"event":["whatsapp.message.sent"]}', None,
     "application/json", 422),
    ("CRM event that is an object", CRM, b'{"event":{"whatsapp.message.sent":1}}', None,
     "application/json", 422),
    ("a 10 MB body", WA, b'{"x":"' + b"a" * 10_000_000 + b'"}', None, "application/json", 413),
    ("one byte over the limit", WA, b" " * (3 * 1024 * 1024 + 1), None, "application/json", 413),
    ("form content type", WA, GOOD, None, "application/x-www-form-urlencoded", 415),
    ("text content type", WA, GOOD, None, "text/plain", 415),
    ("top-level array", WA, b"[1, 2, 3]", None, "application/json", 422),
    ("top-level string", WA, b'"whatsapp_business_account"', None, "application/json", 422),
    ("another Graph API object", WA, b'{"object":"page","entry":[]}', None, "application/json",
     422),
    ("object missing", WA, b'{"entry":[]}', None, "application/json", 422),
    ("unknown CRM event", CRM, orjson.dumps({"event": "whatsapp.call.started"}), None,
     "application/json", 422),
    ("CRM event missing", CRM, orjson.dumps({"timestamp": NOW}), None, "application/json", 422),
    ("no signature", WA, GOOD, {}, "application/json", 401),
    ("signature of the wrong length", WA, GOOD, {"X-Hub-Signature-256": "sha256=abc123"},
     "application/json", 401),
    ("signature without its prefix", WA, GOOD,
     {"X-Hub-Signature-256": signing.sign(GOOD, WA_SECRET).removeprefix("sha256=")},
     "application/json", 401),
    ("valid signature over a different body", WA, GOOD, signature(GOOD + b" "),
     "application/json", 401),
    ("signed with the CRM's secret", WA, GOOD, signature(GOOD, TEST_SECRETS["CRM_WEBHOOK_SECRET"]),
     "application/json", 401),
    ("signature in the wrong header", CRM, GOOD, signature(GOOD), "application/json", 401),
    ("non-ASCII signature", WA, GOOD, {"X-Hub-Signature-256": "sha256=é" * 8},
     "application/json", 401),
    ("signature in upper-case hex (accepted: hex has no case)", WA, GOOD,
     {"X-Hub-Signature-256": "sha256=" + signing.sign(GOOD, WA_SECRET)[7:].upper()},
     "application/json", 200),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "headers", "content_type", "expected"),
    [case[1:] for case in DOOR_CASES],
    ids=[case[0] for case in DOOR_CASES],
)
def test_refused_at_the_door(client, db, redis_conn, path, body, headers, content_type, expected):
    if headers is None:
        secret = TEST_SECRETS["CRM_WEBHOOK_SECRET"] if path == CRM else WA_SECRET
        header = "X-Signature-256" if path == CRM else "X-Hub-Signature-256"
        headers = {header: signing.sign(body, secret)}
    response = raw_post(client, path, body, headers, content_type)
    assert response.status_code == expected
    if expected != 200:
        assert response.is_json and response.get_json()["reason"]
        assert redis_conn.llen("wa:deliveries") == 0
    assert client.get("/healthz").status_code == 200
    assert signed_post(client, WA, GOOD).status_code == 200


def test_wrong_verify_token_is_forbidden(client):
    response = client.get(
        WA,
        query_string={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
    )
    assert response.status_code == 403 and response.is_json


def late(seconds: int) -> dict:
    return cloud_api_delivery([text_message("wamid.T", "16315551234", NOW + seconds)])


# (name, path, payload, words expected in the quarantine reason)
QUARANTINE_CASES = [
    ("timestamp in the year 3000", WA, late(31_000_000_000), "implausible"),
    ("timestamp in 1970", WA, cloud_api_delivery([text_message("wamid.T", "16315551234", 5)]),
     "implausible"),
    ("timestamp beyond any calendar", WA,
     cloud_api_delivery([text_message("wamid.T", "16315551234", 10**29)]), "timestamp"),
    ("timestamp that is not a time", WA,
     cloud_api_delivery([text_message("wamid.T", "16315551234", NOW) | {"timestamp": "soon"}]),
     "timestamp"),
    ("sender id that is not a number", WA,
     cloud_api_delivery([text_message("wamid.T", "call-me-maybe", NOW)]), "not all digits"),
    ("sender id too short to be a number", WA,
     cloud_api_delivery([text_message("wamid.T", "12", NOW)]), "phone number"),
    ("CRM number without a country code", CRM,
     crm_event("whatsapp.message.received", "wamid.T", "(631) 555-1234", NOW), "country code"),
    ("CRM number of letters", CRM,
     crm_event("whatsapp.message.received", "wamid.T", "+1 CALL NOW", NOW), "phone number"),
    ("message without an id", WA,
     cloud_api_delivery([{k: v for k, v in text_message("wamid.T", "16315551234", NOW).items()
                          if k != "id"}]), "'id'"),
    ("status with an unknown value", WA,
     cloud_api_delivery(statuses=[status("wamid.T", "16315551234", NOW, "exploded")]),
     "unknown status"),
    ("statuses that are not a list", WA,
     {"object": "whatsapp_business_account",
      "entry": [{"changes": [{"field": "messages", "value": {"statuses": {"id": "x"}}}]}]},
     "not a list"),
    ("entry that is not a list", WA, {"object": "whatsapp_business_account", "entry": "x"},
     "'entry'"),
    ("message type of the wrong type", WA,
     cloud_api_delivery([text_message("wamid.T", "16315551234", NOW) | {"type": 7}]), "'type'"),
    ("CRM event without a contact", CRM,
     {"event": "whatsapp.message.received", "timestamp": NOW, "message": {"id": "wamid.T"}},
     "contact"),
    ("status pricing that is not an object", WA,
     cloud_api_delivery(statuses=[status("wamid.T", "16315551234", NOW, pricing="free")]),
     "'pricing' is not an object"),
    ("status billable that is not true or false", WA,
     cloud_api_delivery(statuses=[status("wamid.T", "16315551234", NOW,
                                         pricing={"billable": "yes", "type": "regular"})]),
     "'pricing.billable'"),
    ("ad referral without its id", WA,
     cloud_api_delivery([text_message("wamid.T", "16315551234", NOW)
                         | {"referral": {"source_type": "ad", "headline": "Sale"}}]),
     "'referral.source_id'"),
    ("CRM template without a name", CRM,
     crm_event("whatsapp.message.sent", "wamid.T", "+16315551234", NOW)
     | {"message": {"id": "wamid.T", "template": {"language": "en_US"}}}, "'template.name'"),
    ("CRM campaign that is not an object", CRM,
     crm_event("whatsapp.message.sent", "wamid.T", "+16315551234", NOW, campaign=7), "'campaign'"),
    ("marketing preference neither stop nor resume", WA,
     {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "user_preferences",
      "value": {"user_preferences": [{"wa_id": "16315551234", "category": "marketing_messages",
                                      "value": "pause", "timestamp": NOW}]}}]}]},
     "'stop' or 'resume'"),
    ("marketing preference about no one", WA,
     {"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "user_preferences",
      "value": {"user_preferences": [{"category": "marketing_messages", "value": "stop",
                                      "timestamp": NOW}]}}]}]},
     "both missing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "payload", "reason"),
    [case[1:] for case in QUARANTINE_CASES],
    ids=[case[0] for case in QUARANTINE_CASES],
)
def test_authentic_but_unparseable_is_quarantined(
    client, db, redis_conn, settings, path, payload, reason
):
    assert signed_post(client, path, payload).status_code == 200
    assert signed_post(client, WA, GOOD).status_code == 200
    run_worker(redis_conn, settings)
    reasons = [row[0] for row in db.execute("select reason from raw.quarantine")]
    assert len(reasons) == 1 and reason in reasons[0], reasons
    # Counted under a class of its own in the worker's metrics, not lumped into "other".
    assert reason_class(reasons[0]) != "other", reasons[0]
    assert db.execute("select count(*) from raw.deliveries").fetchone()[0] == 2
    # The good delivery beside it was stored: one bad item holds nothing back.
    good = "select count(*) from raw.events where message_id = 'wamid.GOOD'"
    assert db.execute(good).fetchone()[0] == 1


def test_secrets_never_reach_logs_or_answers(servers, caplog):
    """Refusals, a Redis outage and a broken database URL: no secret in any answer or log."""
    caplog.set_level(logging.DEBUG)
    settings = load_settings(
        {
            **TEST_SECRETS,
            "REDIS_URL": "redis://:hunter2-redis@127.0.0.1:1/0",
            "DATABASE_URL": "postgresql://u:hunter2-pg@127.0.0.1:1/x",
        }  # fmt: skip
    )
    client = create_app(settings).test_client()
    answers = [
        signed_post(client, WA, GOOD),  # 503: Redis unreachable
        signed_post(client, WA, GOOD, secret="wrong"),
        raw_post(client, WA, GOOD, {}),
        client.get(WA, query_string={"hub.mode": "subscribe", "hub.verify_token": "x"}),
        client.get("/readyz"),
    ]
    text = " ".join(a.get_data(as_text=True) for a in answers) + caplog.text
    assert [a.status_code for a in answers] == [503, 401, 401, 403, 503]
    for secret in [*TEST_SECRETS.values(), "hunter2"]:
        assert secret not in text


def test_a_body_of_many_keys_with_one_twice_is_refused_in_linear_time(client, redis_conn):
    """The duplicate-key check once compared every key with every other: 40,000 keys took
    24 s of the door's CPU."""
    keys = ",".join(f'"k{number}":1' for number in range(40_000)).encode()
    body = b'{"object":"whatsapp_business_account",' + keys + b',"k39999":2}'
    started = time.monotonic()
    response = raw_post(client, WA, body, signature(body))
    assert response.status_code == 422 and "k39999" in response.get_json()["reason"]
    assert time.monotonic() - started < 5
