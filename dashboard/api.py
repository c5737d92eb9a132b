"""``/api/v1/metrics/``: JSON for the dashboard and any other client, described by
``/api/v1/openapi.json``. Every endpoint takes ``start``, ``end`` and ``business_number``."""

from datetime import timedelta
from functools import wraps
from pathlib import Path

import psycopg
import yaml
from flask import Blueprint, current_app, jsonify, request

from dashboard import freshness, metrics
from dashboard.period import BadFilter, Period, period_from_args

blueprint = Blueprint("metrics_api", __name__, url_prefix="/api/v1")
OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


# Read-only at the server (whatever the role may do), bounded in time, and one snapshot per
# request, so that a dbt build finishing mid-request cannot mix two builds in one answer.
# work_mem: a year of an agent's response-time distribution is some 150,000 rows to group and
# sort; at PostgreSQL's default 4 MB that sort spills to disk and takes four times as long
# (bench stage api: agents over 28 days, 300 ms -> 70 ms). Per sort, per request: bounded.
SESSION_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=15s -c work_mem=64MB"


def _connect() -> psycopg.Connection:
    # A database host that drops packets silently would otherwise hold the request for minutes.
    conn = psycopg.connect(
        current_app.extensions["wa_settings"].database_url,
        options=SESSION_OPTIONS,
        connect_timeout=5,
    )
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn


def metric(view):
    """Open a read-only connection, parse the filters, wrap the answer with the period and the
    freshness of the marts it was read from (``as_of``, ``built_at``: same snapshot)."""

    @wraps(view)
    def wrapper():
        try:
            with _connect() as conn:
                period = period_from_args(request.args, conn)
                answer = view(conn, period)
                build = freshness.as_json(freshness.latest_build(conn))
                return jsonify({**period.as_json(), **build, **answer})
        except BadFilter as exc:
            return jsonify(error="bad request", reason=str(exc)), 400
        except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
            reason = "the marts are not built (or not up to date): run `wa-analytics dbt build`"
            return jsonify(error="service unavailable", reason=reason), 503
        except psycopg.OperationalError:
            reason = "the database is unreachable or too slow; retry later"
            return jsonify(error="service unavailable", reason=reason), 503

    return wrapper


@blueprint.get("/metrics/summary")
@metric
def summary(conn, period: Period) -> dict:
    return metrics.summary(conn, period)


@blueprint.get("/metrics/response-times")
@metric
def response_times(conn, period: Period) -> dict:
    return {
        "totals": metrics.one(conn, metrics.RESPONSE_TOTALS, period),
        "days": every_day(
            metrics.rows(conn, metrics.RESPONSE_TIMES, period), period, QUIET_RESPONSE_DAY
        ),
    }


@blueprint.get("/metrics/contact-growth")
@metric
def contact_growth(conn, period: Period) -> dict:
    return {"days": metrics.rows(conn, metrics.CONTACT_GROWTH, period)}


@blueprint.get("/metrics/peak-hours")
@metric
def peak_hours(conn, period: Period) -> dict:
    return {"cells": metrics.rows(conn, metrics.PEAK_HOURS, period)}


@blueprint.get("/metrics/delivery")
@metric
def delivery(conn, period: Period) -> dict:
    return {
        "totals": metrics.one(conn, metrics.DELIVERY_TOTALS, period),
        "days": every_day(
            metrics.rows(conn, metrics.DELIVERY_DAILY, period), period, QUIET_DELIVERY_DAY
        ),
    }


@blueprint.get("/metrics/agents")
@metric
def agents(conn, period: Period) -> dict:
    return {"agents": metrics.rows(conn, metrics.AGENTS, period)}


@blueprint.get("/metrics/business-numbers")
def business_numbers():
    try:
        with _connect() as conn:
            numbers = metrics.rows(conn, metrics.BUSINESS_NUMBERS)
            build = freshness.as_json(freshness.latest_build(conn))
            return jsonify(business_numbers=numbers, **build)
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return jsonify(business_numbers=[], **freshness.as_json(None))


# What a day without a row had: no responses or messages, a true 0; its medians and rates are
# unknown (null), not 0, so a chart draws a gap there rather than a fall to zero.
QUIET_RESPONSE_DAY = {
    "responses": 0,
    "median_response_seconds": None,
    "p90_response_seconds": None,
    "first_responses": 0,
    "median_first_response_seconds": None,
    "p90_first_response_seconds": None,
}
QUIET_DELIVERY_DAY = {
    "messages_sent": 0,
    "messages_delivered": 0,
    "messages_read": 0,
    "messages_failed": 0,
    "delivery_rate": None,
    "read_rate": None,
    "median_seconds_to_deliver": None,
    "median_seconds_to_read": None,
}


def every_day(days: list[dict], period: Period, quiet_day: dict) -> list[dict]:
    """``days`` (rows by ``activity_date``, days with data only) with a row for every day of
    ``period``, in order: ``quiet_day``'s figures on the days without data."""
    by_day = {row["activity_date"]: row for row in days}
    filled = []
    for offset in range(period.days):
        day = (period.start + timedelta(days=offset)).isoformat()
        filled.append(by_day.get(day) or {"activity_date": day, **quiet_day})
    return filled


@blueprint.get("/openapi.json")
def openapi():
    return jsonify(load_openapi())


def load_openapi() -> dict:
    return yaml.safe_load(OPENAPI_PATH.read_text())
