"""Flask application factory for the dashboard and the metrics API."""

import time

from flask import Flask, Response, g, jsonify, render_template
from werkzeug.exceptions import HTTPException

from dashboard import api, freshness
from wa_analytics.core import metrics
from wa_analytics.core.config import Settings, load_settings


def create_app(config: Settings | None = None) -> Flask:
    """Build the app. ``config`` defaults to the environment (see ``wa_analytics.core.config``)."""
    settings = config or load_settings()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set; start it with `wa-analytics dashboard`")
    app = Flask(__name__)
    app.extensions["wa_settings"] = settings
    app.register_blueprint(api.blueprint)

    @app.get("/")
    def page():
        # The page refreshes its figures as often as the transform builds the marts.
        return render_template(
            "dashboard.html",
            refresh_seconds=settings.transform_interval_seconds,
            stale_after_intervals=freshness.STALE_AFTER_INTERVALS,
        )

    @app.get("/healthz")
    def healthz():
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz():
        """Ready when the database answers and the marts are fresh; 503 says why not."""
        answer, code = freshness.readiness(
            settings.database_url, settings.transform_interval_seconds
        )
        return jsonify(answer), code

    registry = metrics.build_registry()
    latency = metrics.metrics().request_seconds.labels("dashboard")

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def observe_latency(response):
        if "started" in g:
            latency.observe(time.perf_counter() - g.started)
        return response

    @app.get("/metrics")
    def prometheus_metrics():
        """Prometheus's scrape: the dashboard's request latency."""
        body, headers = metrics.exposition(registry)
        return Response(body, headers=headers)

    @app.errorhandler(HTTPException)
    def json_error(error: HTTPException):
        return jsonify(error=error.name.lower(), reason=error.description), error.code

    return app
