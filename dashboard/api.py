"""``/api/v1/metrics/``: JSON for the dashboard and any other client, described by
``/api/v1/openapi.json``. Every endpoint takes ``start``, ``end`` and ``business_number``."""

from contextlib import ExitStack, suppress
from datetime import timedelta
from functools import wraps
from pathlib import Path
from urllib.parse import urlencode

import psycopg
import yaml
from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context

from dashboard import ads, campaigns, costs, export, freshness, metrics, sla
from dashboard.period import BadFilter, Period, period_from_args

blueprint = Blueprint("metrics_api", __name__, url_prefix="/api/v1")
OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


# Read-only at the server (whatever the role may do), bounded in time, and one snapshot per
# request, so that a dbt build finishing mid-request cannot mix two builds in one answer.
# work_mem: a year of an agent's response-time distribution is some 150,000 rows to group and
# sort; at PostgreSQL's default 4 MB that sort spills to disk and takes four times as long
# (bench stage api: agents over 28 days, 300 ms -> 70 ms). Per sort, per request: bounded.
SESSION_OPTIONS = "-c default_transaction_read_only=on -c statement_timeout=15s -c work_mem=64MB"


NOT_BUILT = "the marts are not built (or not up to date): run `wa-analytics dbt build`"
UNREACHABLE = "the database is unreachable or too slow; retry later"
# What reading marts that dbt has not built yet raises (no schema marts, a table, a column).
NOT_BUILT_ERRORS = (
    psycopg.errors.InvalidSchemaName,
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
)
# The marts the API reads that are tables dbt replaces at each build (not incremental ones).
REBUILT_WHOLE = (
    "marts.reporting_settings",
    "marts.contact_growth_daily",
    "marts.new_contacts_by_number_daily",
    "marts.sla_attainment_daily",
    "marts.sla_breaches",
)


def _connect() -> psycopg.Connection:
    # A database host that drops packets silently would otherwise hold the request for minutes.
    conn = psycopg.connect(
        current_app.extensions["wa_settings"].database_url,
        options=SESSION_OPTIONS,
        connect_timeout=5,
    )
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    # dbt rebuilds these marts whole, at every build, as a new table renamed into place. A
    # snapshot taken while that rename waits to commit would read the new table as empty: lock
    # them first (a lock takes no snapshot), so the snapshot comes after any rename under way,
    # and the next waits for this request.
    try:
        conn.execute(f"lock table {', '.join(REBUILT_WHOLE)} in access share mode")
    except psycopg.Error:
        conn.close()
        raise
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
        except NOT_BUILT_ERRORS:
            return jsonify(error="service unavailable", reason=NOT_BUILT), 503
        except psycopg.OperationalError:
            return jsonify(error="service unavailable", reason=UNREACHABLE), 503

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


@blueprint.get("/metrics/sla")
@metric
def sla_attainment(conn, period: Period) -> dict:
    """Waits answered within the promised time (seed sla_targets), late and still open past it,
    the attainment rate, first responses by time taken, and the latest breaches."""
    return {
        "totals": metrics.one(conn, sla.TOTALS, period),
        "days": every_day(metrics.rows(conn, sla.DAYS, period), period, sla.QUIET_DAY),
        "breaches": metrics.rows(conn, sla.BREACHES, period),
        "breaches_listed_at_most": sla.BREACH_LIMIT,
        "exports": {
            mart: f"/api/v1/export/{mart}.csv?{urlencode(_export_params(period))}"
            for mart in export.EXPORTS
        },
    }


@blueprint.get("/metrics/costs")
@metric
def messaging_costs(conn, period: Period) -> dict:
    """What WhatsApp cost: messages charged and free, estimated cost and savings, per currency,
    in total and by day, pricing category, market and pricing type."""
    return {
        "totals": metrics.rows(conn, costs.TOTALS, period),
        "days": every_day(
            costs.spend_by_day(metrics.rows(conn, costs.DAYS, period)), period, {"spend": []}
        ),
        "by_category": metrics.rows(conn, costs.BY_CATEGORY, period),
        "by_market": metrics.rows(conn, costs.BY_MARKET, period),
        "by_pricing_type": metrics.rows(conn, costs.BY_PRICING_TYPE, period),
    }


@blueprint.get("/metrics/campaigns")
@metric
def campaign_performance(conn, period: Period) -> dict:
    """The campaigns that sent in the period (their figures over all their sends) and each
    template's figures over the period."""
    return {
        "campaigns": metrics.rows(conn, campaigns.CAMPAIGNS, period),
        "templates": metrics.rows(conn, campaigns.TEMPLATES, period),
    }


@blueprint.get("/metrics/ads")
@metric
def ad_performance(conn, period: Period) -> dict:
    """What click-to-WhatsApp ads brought: conversations, new and returning contacts, answered
    and the median first response, per ad, in total and per day."""
    return {
        "totals": metrics.one(conn, ads.TOTALS, period),
        "ads": metrics.rows(conn, ads.ADS, period),
        "days": every_day(metrics.rows(conn, ads.DAYS, period), period, ads.QUIET_DAY),
    }


def _export_params(period: Period) -> dict:
    params = {"start": period.start.isoformat(), "end": period.end.isoformat()}
    if period.business_number:
        params["business_number"] = period.business_number
    return params


@blueprint.get("/export/<mart>.csv")
def export_csv(mart: str):
    """The rows of ``responses``, ``conversations`` or ``sla_breaches`` for a date range, as
    CSV, streamed."""
    if mart not in export.EXPORTS:
        reason = f"no export {mart!r}; one of {', '.join(export.EXPORTS)}"
        return jsonify(error="not found", reason=reason), 404
    try:
        conn = _connect()
    except NOT_BUILT_ERRORS:
        return jsonify(error="service unavailable", reason=NOT_BUILT), 503
    except psycopg.OperationalError:
        return jsonify(error="service unavailable", reason=UNREACHABLE), 503
    try:
        conn.execute(f"set statement_timeout = '{export.EXPORT_TIMEOUT}'")
        conn.execute("set timezone = 'UTC'")  # times in the file as in the JSON answers
        period = period_from_args(request.args, conn)
        build = freshness.as_json(freshness.latest_build(conn))
        copying = ExitStack()
        statement = export.copy_statement(mart)
        copy = copying.enter_context(conn.cursor().copy(statement, period.params()))
        first = next(iter(copy), b"")  # fails here, before the answer starts, if it fails
    except BadFilter as exc:
        conn.close()
        return jsonify(error="bad request", reason=str(exc)), 400
    except NOT_BUILT_ERRORS:
        conn.close()
        return jsonify(error="service unavailable", reason=NOT_BUILT), 503
    except psycopg.OperationalError:
        conn.close()
        return jsonify(error="service unavailable", reason=UNREACHABLE), 503

    def rows():
        try:
            yield bytes(first)
            for chunk in copy:
                yield bytes(chunk)
        finally:
            # A client that hangs up mid-way leaves the rest unread: the connection goes.
            with suppress(psycopg.Error):
                copying.close()
            conn.close()

    name = f"{mart}_{period.start}_{period.end}.csv"
    headers = {
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Built-At": build["built_at"] or "",
        "X-Data-As-Of": build["as_of"] or "",
    }
    return Response(stream_with_context(rows()), mimetype="text/csv", headers=headers)


@blueprint.get("/metrics/business-numbers")
def business_numbers():
    try:
        with _connect() as conn:
            numbers = metrics.rows(conn, metrics.BUSINESS_NUMBERS)
            build = freshness.as_json(freshness.latest_build(conn))
            return jsonify(business_numbers=numbers, **build)
    except (*NOT_BUILT_ERRORS, psycopg.OperationalError):
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
