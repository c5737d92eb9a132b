"""Liveness and readiness probes for load balancers and orchestrators."""

import psycopg
import redis
from flask import Blueprint, current_app

from wa_analytics.core.database import connect

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz():
    """The process is up (no dependency is touched)."""
    return {"status": "ok"}


@blueprint.get("/readyz")
def readyz():
    """Redis and Postgres both answer; 503 names the one that does not."""
    settings = current_app.extensions["wa_settings"]
    checks = {}
    try:
        checks["redis"] = "ok" if current_app.extensions["wa_redis"].ping() else "no answer"
    except redis.RedisError as exc:
        checks["redis"] = f"unavailable: {exc.__class__.__name__}"
    if not settings.database_url:
        checks["postgres"] = "unavailable: DATABASE_URL is not set"
    else:
        try:
            with connect(settings.database_url, connect_timeout=2) as conn:
                conn.execute("select 1")
            checks["postgres"] = "ok"
        except psycopg.Error as exc:
            checks["postgres"] = f"unavailable: {exc.__class__.__name__}"
    ready = all(value == "ok" for value in checks.values())
    return {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
