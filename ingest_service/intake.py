"""What every webhook does at the door: size, signature, content type, JSON, then queue.

The signature is checked on the raw bytes before the body is parsed, so an unauthenticated sender
cannot make the service parse anything.
"""

import logging

import orjson
import redis
from flask import Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from wa_analytics import signing
from wa_analytics.queueing import push_delivery

log = logging.getLogger(__name__)


class Refusal(Exception):
    """A delivery refused at the door with an HTTP status and a reason for the sender."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def refusal_response(refusal: Refusal):
    return jsonify(error="refused", reason=refusal.reason), refusal.status


def read_signed_json(secret: str, signature_header: str) -> tuple[bytes, object]:
    """The raw body and its parsed JSON, or a ``Refusal``."""
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge as exc:
        raise Refusal(413, f"body larger than {request.max_content_length} bytes") from exc
    if not secret:
        raise Refusal(401, "webhook secret not configured on the server; delivery refused")
    if not signing.is_valid(body, secret, request.headers.get(signature_header)):
        raise Refusal(401, f"missing or invalid {signature_header} signature")
    if request.mimetype != "application/json":
        raise Refusal(415, "Content-Type must be application/json")
    try:
        return body, orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refusal(400, f"body is not valid JSON: {exc.msg}") from exc


def enqueue(source: str, body: bytes):
    """Queue the delivery; 200 only once Redis has it, 503 (retry later) when it cannot."""
    settings = current_app.extensions["wa_settings"]
    try:
        delivery_id = push_delivery(
            current_app.extensions["wa_redis"],
            settings.queue_name,
            source,
            body,
            settings.batch_size,
        )
    except redis.RedisError as exc:
        log.warning("queue unavailable, answering 503: %s", exc.__class__.__name__)
        response = jsonify(error="unavailable", reason="queue unavailable; retry later")
        response.headers["Retry-After"] = "5"
        return response, 503
    # Built directly: this is the hot path, and jsonify's machinery is a visible share of it.
    body = b'{"status":"queued","delivery_id":"' + delivery_id.encode() + b'"}'
    return Response(body, status=200, mimetype="application/json")
