"""What every webhook does at the door: size, signature, content type, JSON, then queue.

The webhook routes are served by ``Intake``, a plain WSGI layer in front of the Flask app, not by
Flask views: this is the path of every delivery, and Flask's request context, routing and
response objects cost the service more CPU than everything the door itself does (see
BENCHMARKS.md). Flask still serves everything else: Meta's handshake, the probes, the 404s.

The signature is checked on the raw bytes before the body is parsed, so an unauthenticated sender
cannot make the service parse anything.
"""

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus

import orjson
import redis
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from ingest_service.json_shape import shape_refusal
from wa_analytics.core import outages, signing
from wa_analytics.core.queueing import DeliveryQueue

log = logging.getLogger(__name__)

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]
STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
# Told of every answered delivery: its source, HTTP status and seconds taken (the metrics).
Recorder = Callable[[str, int, float], None]


class Refusal(Exception):
    """A delivery refused at the door with an HTTP status and a reason for the sender."""

    def __init__(self, status: int, reason: str, error: str = "refused", headers=()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error = error
        self.headers = list(headers)


@dataclass(frozen=True)
class Webhook:
    """One sender's door: whose deliveries, the secret and header that sign them, and what a
    payload must look like (``refuse`` returns the reason it does not, or None)."""

    source: str
    secret: str
    signature_header: str
    refuse: Callable[[object], str | None]
    handshake: bool = False  # GET is Meta's verification, served by the Flask app

    @cached_property
    def signature_key(self) -> str:
        """The header's name in a WSGI environ (read on every delivery: worked out once)."""
        return "HTTP_" + self.signature_header.upper().replace("-", "_")


class Intake:
    """POSTs to the webhooks' paths, answered before the Flask app (``app``) is involved."""

    def __init__(
        self,
        app: WSGIApp,
        webhooks: dict[str, Webhook],
        queue: DeliveryQueue,
        max_body_bytes: int,
        record: Recorder | None = None,
    ):
        self.app = app
        self.webhooks = webhooks
        self.queue = queue
        self.max_body_bytes = max_body_bytes
        self.record = record or (lambda source, status, seconds: None)
        # While Redis is down every delivery is refused (503: the sender retries); the outage
        # is logged when it starts and when it ends, not once per delivery.
        self.redis_outage = outages.Outage("redis", "answering webhooks 503 until it answers")

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        webhook = self.webhooks.get(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD")
        if webhook is None or (webhook.handshake and method in ("GET", "HEAD")):
            return self.app(environ, start_response)
        try:
            if method != "POST":
                allowed = "GET, HEAD, POST" if webhook.handshake else "POST"
                raise Refusal(405, f"use POST; this path accepts {allowed}", "method not allowed",
                              [("Allow", allowed)])  # fmt: skip
            status, body, headers = 200, self.receive(webhook, environ), []
        except Refusal as refusal:
            status, headers = refusal.status, refusal.headers
            body = orjson.dumps({"error": refusal.error, "reason": refusal.reason})
        except Exception:  # a bug: logged, and the sender still gets JSON (and retries)
            log.exception("delivery to %s failed", environ.get("PATH_INFO"))
            status, headers = 500, []
            body = b'{"error":"internal server error","reason":"the delivery was not queued"}'
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(STATUS_LINES[status], headers)
        self.record(webhook.source, status, time.perf_counter() - started)
        return [body]

    def receive(self, webhook: Webhook, environ: dict) -> bytes:
        """The 200 answer's body once the delivery is queued; otherwise a ``Refusal``."""
        body = read_body(environ, self.max_body_bytes)
        if not webhook.secret:
            raise Refusal(401, "webhook secret not configured on the server; delivery refused")
        if not signing.is_valid(body, webhook.secret, environ.get(webhook.signature_key)):
            raise Refusal(401, f"missing or invalid {webhook.signature_header} signature")
        if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
            raise Refusal(415, "Content-Type must be application/json")
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise Refusal(400, f"body is not valid JSON: {exc.msg}") from exc
        if (reason := shape_refusal(body, payload) or webhook.refuse(payload)) is not None:
            raise Refusal(422, reason)
        try:
            delivery_id = self.queue.put(webhook.source, body)
        except redis.RedisError as exc:
            self.redis_outage.failed(exc)
            raise Refusal(503, "queue unavailable; retry later", "unavailable",
                          [("Retry-After", "5")]) from exc  # fmt: skip
        self.redis_outage.ended()
        return b'{"status":"queued","delivery_id":"' + delivery_id.encode() + b'"}'


def read_body(environ: dict, limit: int) -> bytes:
    """The whole body (chunked or with a length), or a 413 ``Refusal`` past ``limit`` bytes.

    A declared length over the limit is refused before reading. A chunked body declares none:
    werkzeug's stream stops at the limit without a word, so one byte more is asked for, and a
    body that has it is refused rather than cut (it would be signed and stored cut).
    """
    chunked = not environ.get("CONTENT_LENGTH")
    try:
        body = get_input_stream(environ, max_content_length=limit + chunked).read()
    except RequestEntityTooLarge:
        body = None
    if body is None or len(body) > limit:
        raise Refusal(413, f"body larger than {limit} bytes")
    return body
