"""The door: what the ingest service accepts, refuses and answers, over real HTTP semantics."""

import http.client
import logging
import os
import time

import orjson
import pytest
from helpers import TEST_SECRETS, cloud_api_delivery, crm_event, signed_post, text_message

from ingest_service import create_app
from wa_analytics.core import signing
from wa_analytics.core.config import load_settings
from wa_analytics.core.processes import free_port, spawn_cli, stop_all, wait_ready
from wa_analytics.core.queueing import BUFFER_KEY, DeliveryQueue, Envelope, waiting

T0 = int(time.time()) - 60
DELIVERY = cloud_api_delivery([text_message("wamid.A", "16315551234", T0)])


def test_verification_handshake_echoes_the_challenge(client):
    response = client.get(
        "/webhooks/whatsapp",
        query_string={"hub.mode": "subscribe", "hub.verify_token": "test-verify-token",
                      "hub.challenge": "1158201444"},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.get_data(as_text=True) == "1158201444"
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "1"},
        {"hub.challenge": "1"},
    ],
)
def test_verification_handshake_refuses_a_wrong_token(client, query):
    assert client.get("/webhooks/whatsapp", query_string=query).status_code == 403


def test_a_signed_delivery_is_queued_verbatim(client, redis_conn):
    body = orjson.dumps(DELIVERY)
    response = signed_post(client, "/webhooks/whatsapp", body)
    assert response.status_code == 200
    assert response.json["status"] == "queued"
    [queued] = redis_conn.lrange(BUFFER_KEY, 0, -1)
    envelope = Envelope.decode(queued)
    assert envelope.body == body
    assert envelope.source == "whatsapp"
    assert envelope.delivery_id == response.json["delivery_id"]
    assert abs(envelope.received_at - time.time()) < 5


def test_the_crm_webhook_uses_its_own_header_and_secret(client, redis_conn):
    payload = crm_event("whatsapp.message.received", "wamid.A", "+1 631-555-1234", T0)
    assert signed_post(client, "/webhooks/crm", payload).status_code == 200
    assert (
        signed_post(
            client, "/webhooks/crm", payload, secret=TEST_SECRETS["WHATSAPP_APP_SECRET"]
        ).status_code
        == 401
    )
    assert redis_conn.llen(BUFFER_KEY) == 1


def test_a_retried_delivery_keeps_its_id(client):
    first = signed_post(client, "/webhooks/whatsapp", DELIVERY).json["delivery_id"]
    second = signed_post(client, "/webhooks/whatsapp", DELIVERY).json["delivery_id"]
    assert first == second


def test_only_one_drain_job_is_scheduled_for_a_burst(client, redis_conn, settings):
    from rq import Queue

    for i in range(20):
        payload = cloud_api_delivery([text_message(f"wamid.{i}", "16315551234", T0)])
        assert signed_post(client, "/webhooks/whatsapp", payload).status_code == 200
    assert redis_conn.llen(BUFFER_KEY) == 20
    assert Queue(settings.queue_name, connection=redis_conn).count == 1


BODY = orjson.dumps(DELIVERY)
WA_SIG = signing.sign(BODY, TEST_SECRETS["WHATSAPP_APP_SECRET"])


def _raw(
    client,
    body=BODY,
    signature=WA_SIG,
    content_type="application/json",
    path="/webhooks/whatsapp",
    header="X-Hub-Signature-256",
):
    headers = {header: signature} if signature is not None else {}
    return client.post(path, data=body, headers=headers, content_type=content_type)


def _signed(body: bytes, secret="test-app-secret") -> str:
    return signing.sign(body, secret)


BAD_INPUTS = [
    ("no signature", lambda c: _raw(c, signature=None), 401),
    ("wrong secret", lambda c: _raw(c, signature=_signed(BODY, "other")), 401),
    ("signature over another body", lambda c: _raw(c, signature=_signed(BODY + b" ")), 401),
    ("signature without prefix", lambda c: _raw(c, signature=WA_SIG.removeprefix("sha256=")), 401),
    ("truncated signature", lambda c: _raw(c, signature=WA_SIG[:-2]), 401),
    ("sha1 signature", lambda c: _raw(c, signature="sha1=" + WA_SIG[7:47]), 401),
    ("empty signature", lambda c: _raw(c, signature=""), 401),
    ("not JSON", lambda c: _raw(c, body=b"hello", signature=_signed(b"hello")), 400),
    ("truncated JSON", lambda c: _raw(c, body=BODY[:-3], signature=_signed(BODY[:-3])), 400),
    (
        "invalid UTF-8",
        lambda c: _raw(c, body=b'{"object": "\xff"}', signature=_signed(b'{"object": "\xff"}')),
        400,
    ),
    ("wrong content type", lambda c: _raw(c, content_type="text/plain"), 415),
    ("form content type", lambda c: _raw(c, content_type="application/x-www-form-urlencoded"), 415),
    (
        "body over 3 MiB",
        lambda c: _raw(
            c,
            body=b"{" + b" " * (3 * 1024 * 1024) + b"}",
            signature=_signed(b"{" + b" " * (3 * 1024 * 1024) + b"}"),
        ),
        413,
    ),
    (
        "unknown object",
        lambda c: signed_post(c, "/webhooks/whatsapp", {"object": "page", "entry": []}),
        422,
    ),
    ("JSON array", lambda c: signed_post(c, "/webhooks/whatsapp", [DELIVERY]), 422),
    (
        "unknown CRM event",
        lambda c: signed_post(c, "/webhooks/crm", {"event": "whatsapp.call.started"}),
        422,
    ),
    ("CRM event not a string", lambda c: signed_post(c, "/webhooks/crm", {"event": 7}), 422),
    ("CRM signed with the Meta header", lambda c: _raw(c, path="/webhooks/crm"), 401),
    ("GET on the CRM webhook", lambda c: c.get("/webhooks/crm"), 405),
]


@pytest.mark.parametrize(("case", "send", "status"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_refused_with_a_json_reason_and_nothing_is_queued(
    client, redis_conn, case, send, status
):
    response = send(client)
    assert response.status_code == status
    assert response.is_json and response.json["reason"]
    assert redis_conn.llen(BUFFER_KEY) == 0
    # The service keeps serving.
    assert client.get("/healthz").status_code == 200
    assert signed_post(client, "/webhooks/whatsapp", DELIVERY).status_code == 200


def test_without_secrets_every_delivery_is_refused(servers, redis_conn):
    settings = load_settings(
        {**{"REDIS_URL": servers["redis_url"]}, "DATABASE_URL": servers["database_url"]}
    )
    client = create_app(settings).test_client()
    assert signed_post(client, "/webhooks/whatsapp", DELIVERY).status_code == 401
    assert redis_conn.llen(BUFFER_KEY) == 0


def test_production_refuses_to_start_without_secrets(servers):
    settings = load_settings({"REDIS_URL": servers["redis_url"], "WA_ENV": "production"})
    with pytest.raises(RuntimeError, match="WHATSAPP_APP_SECRET"):
        create_app(settings)


def test_redis_down_answers_503_fast_and_never_200(servers, tmp_path, caplog):
    settings = load_settings(
        {
            **TEST_SECRETS,
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "DATABASE_URL": servers["database_url"],
        }
    )
    client = create_app(settings).test_client()
    started = time.monotonic()
    response = signed_post(client, "/webhooks/whatsapp", DELIVERY)
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert time.monotonic() - started < 1.0
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["checks"]["postgres"] == "ok"
    assert ready.json["checks"]["redis"].startswith("unavailable")
    # The outage is logged once, not once per refused delivery.
    for _ in range(5):
        assert signed_post(client, "/webhooks/whatsapp", DELIVERY).status_code == 503
    down = [
        r for r in caplog.records if "redis unreachable; answering webhooks 503" in r.getMessage()
    ]
    assert len(down) == 1 and down[0].levelno == logging.WARNING


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json["checks"] == {"redis": "ok", "postgres": "ok"}


def test_a_queue_used_before_a_fork_is_safe_in_parent_and_child(redis_conn, settings):
    """gunicorn forks its workers from a process that has built the app: a Redis connection
    opened before the fork must not be shared, or the two would read each other's replies."""
    queue = DeliveryQueue(redis_conn, settings.queue_name, batch_size=10_000)
    queue.put("whatsapp", b"before the fork")
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status
        status = 1
        try:
            for number in range(200):
                queue.put("whatsapp", b"child %d" % number)
            status = 0
        finally:
            os._exit(status)
    for number in range(200):
        queue.put("whatsapp", b"parent %d" % number)
    assert os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) == 0
    assert redis_conn.llen(BUFFER_KEY) == 401


@pytest.fixture
def served(servers, redis_conn):
    """`wa-analytics serve` on a free port: its base URL."""
    port = free_port()
    service = spawn_cli(["serve", "--port", str(port), "--workers", "2"])
    try:
        wait_ready(f"http://127.0.0.1:{port}", service)
        yield "127.0.0.1", port
    finally:
        stop_all([service])


def test_the_door_starts_and_queues_while_postgresql_is_down(servers, redis_conn, monkeypatch):
    """The door needs only Redis to take deliveries: started while PostgreSQL is unreachable,
    it serves, says so on /readyz, and queues what it is sent."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/unreachable")
    port = free_port()
    service = spawn_cli(["serve", "--port", str(port), "--workers", "1"])
    try:
        wait_ready(f"http://127.0.0.1:{port}", service, path="/healthz")
        status, _, answer = _exchange("127.0.0.1", port, "GET", "/readyz")
        assert status == 503 and b"postgres" in answer
        body = orjson.dumps(DELIVERY)
        signature = signing.sign(body, TEST_SECRETS["WHATSAPP_APP_SECRET"])
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        before = waiting(redis_conn)
        status, _, answer = _exchange(
            "127.0.0.1", port, "POST", "/webhooks/whatsapp", body, headers
        )
        assert status == 200, answer
        assert waiting(redis_conn) == before + 1
    finally:
        stop_all([service])


def _exchange(host: str, port: int, method: str, path: str, body=None, headers=None, **kw):
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {}, **kw)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_gunicorn_serves_the_door_over_real_http(served, redis_conn):
    """What the test client cannot show: a chunked body (no Content-Length), a declared length
    over the limit, the wrong method, and the handshake beside the notifications on one path."""
    host, port = served
    body = orjson.dumps(DELIVERY)
    signed = {
        "Content-Type": "application/json; charset=utf-8",
        "X-Hub-Signature-256": signing.sign(body, TEST_SECRETS["WHATSAPP_APP_SECRET"]),
    }
    status, headers, answer = _exchange(
        host,
        port,
        "POST",
        "/webhooks/whatsapp",
        iter([body[:50], body[50:]]),
        signed,
        encode_chunked=True,
    )
    assert (status, orjson.loads(answer)["status"]) == (200, "queued")
    assert headers["Content-Type"] == "application/json"
    assert Envelope.decode(redis_conn.lindex(BUFFER_KEY, 0)).body == body

    too_big = {**signed, "Content-Length": str(3 * 1024 * 1024 + 1)}
    status, _, answer = _exchange(host, port, "POST", "/webhooks/crm", b"{}", too_big)
    assert status == 413 and orjson.loads(answer)["reason"]

    # Chunked, so no length is declared: a body at the limit is read whole, one byte over it is
    # refused, even when signed over its first 3 MiB (it was once stored cut at the limit).
    head = b'{"object":"whatsapp_business_account","entry":[],"x":"'
    at_limit = head + b"a" * (3 * 1024 * 1024 - len(head) - 2) + b'"}'
    for body, expected in ((at_limit, 200), (at_limit + b" ", 413)):
        headers = {**signed, "X-Hub-Signature-256": signing.sign(
            body[: 3 * 1024 * 1024], TEST_SECRETS["WHATSAPP_APP_SECRET"])}  # fmt: skip
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        status, _, answer = _exchange(
            host, port, "POST", "/webhooks/whatsapp", chunks, headers, encode_chunked=True
        )
        assert (status, bool(orjson.loads(answer).get("reason"))) == (expected, expected == 413)
    redis_conn.delete(BUFFER_KEY)

    status, headers, answer = _exchange(host, port, "GET", "/webhooks/crm")
    assert status == 405 and headers["Allow"] == "POST" and orjson.loads(answer)["reason"]
    status, _, answer = _exchange(
        host,
        port,
        "GET",
        "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=42",
    )
    assert (status, answer) == (200, b"42")
    assert _exchange(host, port, "GET", "/nowhere")[0] == 404
    assert redis_conn.llen(BUFFER_KEY) == 0


def test_an_unexpected_error_is_a_json_500_and_the_service_keeps_serving(client, monkeypatch):
    def broken(self, source, body):
        raise ValueError("a bug")

    monkeypatch.setattr(DeliveryQueue, "put", broken)
    response = signed_post(client, "/webhooks/whatsapp", DELIVERY)
    assert response.status_code == 500 and response.json["reason"]
    monkeypatch.undo()
    assert signed_post(client, "/webhooks/whatsapp", DELIVERY).status_code == 200
