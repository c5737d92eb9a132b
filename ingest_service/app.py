"""Flask application factory."""

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from ingest_service import crm, health, whatsapp
from ingest_service.intake import Intake
from wa_analytics.core import metrics
from wa_analytics.core.config import Settings, load_settings
from wa_analytics.core.queueing import DeliveryQueue, redis_client

log = logging.getLogger(__name__)


def create_app(config: Settings | None = None) -> Flask:
    """Build the app. ``config`` defaults to the environment (see ``wa_analytics.core.config``)."""
    settings = config or load_settings()
    if settings.is_production and settings.missing_secrets():
        raise RuntimeError(
            "refusing to start in production without "
            + ", ".join(settings.missing_secrets())
            + "; set them in the environment"
        )
    if not settings.redis_url:
        raise RuntimeError("REDIS_URL is not set; start the service with `wa-analytics serve`")

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["wa_settings"] = settings
    # Unreachable Redis is known at once (503); an answer may take longer on a host short of
    # CPU, where a thread of a busy worker waits for its turn: a 503 then would be spurious.
    client = redis_client(settings.redis_url, settings.redis_timeout_seconds, connect_timeout=0.5)
    app.extensions["wa_redis"] = client

    app.register_blueprint(whatsapp.blueprint)
    app.register_blueprint(health.blueprint)
    # Flask's documented place for WSGI middleware: the test client goes through it too.
    app.wsgi_app = Intake(  # type: ignore[method-assign]
        app.wsgi_app,
        {whatsapp.PATH: whatsapp.webhook(settings), crm.PATH: crm.webhook(settings)},
        DeliveryQueue(client, settings.queue_name, settings.batch_size),
        settings.max_body_bytes,
        metrics.record_delivery,
    )
    registry = metrics.build_registry(metrics.QueueCollector(client, settings.queue_name))

    @app.get("/metrics")
    def prometheus_metrics():
        """Prometheus's scrape: deliveries by outcome, latency, and the queue's health."""
        body, headers = metrics.exposition(registry)
        return Response(body, headers=headers)

    @app.errorhandler(HTTPException)
    def json_error(error: HTTPException):
        # Senders are machines: every refusal is JSON with a short reason, never an HTML page.
        return jsonify(error=error.name.lower(), reason=error.description), error.code

    return app
