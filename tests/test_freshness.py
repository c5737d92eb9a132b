"""How fresh the marts are, as every metrics answer (as_of, built_at) and the dashboard's /readyz
say: dbt records each build of the whole project itself (audit.dbt_builds), and only a passed
one moves them; a failed build, or a build of part of the project, leaves them where they were.
Daily series hold every day of the period, quiet days included."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from helpers import build, store_deliveries
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse

from dashboard.api import load_openapi
from dashboard.app import create_app
from wa_analytics.core.config import load_settings
from wa_analytics.core.dbt import run_dbt
from wa_analytics.demo.traffic import generate_traffic

ENDPOINTS = ["summary", "response-times", "contact-growth", "peak-hours", "delivery", "agents",
             "sla", "costs", "campaigns", "ads", "business-numbers"]  # fmt: skip
# Two days of traffic four days apart: the days between are quiet.
FIRST_DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(7)
LATER_DAY = FIRST_DAY + timedelta(days=4)


@pytest.fixture(scope="module")
def db(servers):
    """The first day's traffic stored (nothing built yet), and no build recorded."""
    with psycopg.connect(servers["database_url"], autocommit=True) as conn:
        conn.execute("truncate raw.deliveries, raw.events, raw.quarantine")
        conn.execute("drop table if exists audit.dbt_builds")
        traffic = generate_traffic(seed=31, contacts=12, days=1, start=FIRST_DAY)
        store_deliveries(servers["database_url"], traffic.deliveries)
        yield conn


@pytest.fixture(scope="module")
def client(db):
    return create_app(load_settings()).test_client()


@pytest.fixture(scope="module")
def openapi():
    return OpenAPI.from_dict(load_openapi())


def freshness(client, openapi) -> tuple[str | None, str | None]:
    """(as_of, built_at) of every endpoint's answer, checked to be the same on all."""
    seen = set()
    for endpoint in ENDPOINTS:
        response = client.get(f"/api/v1/metrics/{endpoint}")
        openapi.validate_response(
            WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response)
        )
        assert response.status_code == 200, (endpoint, response.json)
        seen.add((response.json["as_of"], response.json["built_at"]))
    assert len(seen) == 1, seen
    return seen.pop()


def newest_loaded_at(db) -> datetime:
    return db.execute("select max(loaded_at) from raw.events").fetchone()[0].astimezone(UTC)


def database_now(db) -> datetime:
    return db.execute("select clock_timestamp()").fetchone()[0]


def test_only_a_passed_build_of_the_whole_project_moves_as_of_and_built_at(
    servers, db, client, openapi
):
    assert client.get("/readyz").status_code == 503  # nothing built yet
    before = database_now(db)
    build("--full-refresh")
    after = database_now(db)
    as_of, built_at = freshness(client, openapi)
    assert as_of == newest_loaded_at(db).isoformat()
    assert before < datetime.fromisoformat(built_at) < after
    assert built_at.endswith("+00:00")
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["status"] == "ready", ready.json
    assert (ready.json["as_of"], ready.json["built_at"]) == (as_of, built_at)

    # Newer events, then builds that must not count.
    later = generate_traffic(seed=32, contacts=12, days=1, start=LATER_DAY)
    store_deliveries(servers["database_url"], later.deliveries)
    assert newest_loaded_at(db) > datetime.fromisoformat(as_of)
    failed = run_dbt(
        ["build", "--vars", "{reporting_timezone: Mars/Olympus_Mons}"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert failed.returncode != 0 and "Olympus_Mons" in failed.stdout, failed.stdout[-2000:]
    assert freshness(client, openapi) == (as_of, built_at)
    tested = run_dbt(["test", "--select", "marts"], check=False, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout[-2000:]
    assert freshness(client, openapi) == (as_of, built_at)
    build("--select", "staging")  # passes, but builds no mart
    assert freshness(client, openapi) == (as_of, built_at)

    build()  # incremental, as the transform runs it
    new_as_of, new_built_at = freshness(client, openapi)
    assert new_as_of == newest_loaded_at(db).isoformat()
    assert datetime.fromisoformat(new_as_of) > datetime.fromisoformat(as_of)
    assert datetime.fromisoformat(new_built_at) > datetime.fromisoformat(built_at)
    # The failed build is on record, as failed; builds of part of the project are not.
    outcomes = db.execute(
        "select command, has_passed from audit.dbt_builds order by started_at"
    ).fetchall()
    assert outcomes == [("build", True), ("build", False), ("build", True)]


def test_readyz_says_stale_with_the_age_and_never_built(db, client):
    build()
    assert client.get("/readyz").status_code == 200
    db.execute("update audit.dbt_builds set finished_at = finished_at - interval '10 minutes'")
    stale = client.get("/readyz")
    assert stale.status_code == 503 and stale.json["status"] == "stale", stale.json
    assert stale.json["age_seconds"] >= 600
    assert "stale: last built 6" in stale.json["reason"]  # 600-odd seconds
    assert "more than 3 transform intervals (90 s)" in stale.json["reason"]
    # A failed build since does not make them fresh; a passed one does.
    db.execute("update audit.dbt_builds set has_passed = false")
    never = client.get("/readyz")
    assert never.status_code == 503 and "never built" in never.json["reason"], never.json
    build()
    assert client.get("/readyz").status_code == 200


def test_marts_built_before_builds_were_recorded_are_served_as_never_built(db, client):
    build()
    db.execute("alter table audit.dbt_builds rename to dbt_builds_away")
    try:
        answer = client.get("/api/v1/metrics/summary")
        assert answer.status_code == 200, answer.json
        assert (answer.json["as_of"], answer.json["built_at"]) == (None, None)
        assert "never built" in client.get("/readyz").json["reason"]
    finally:
        db.execute("alter table audit.dbt_builds_away rename to dbt_builds")


def test_readyz_says_when_the_database_is_unavailable(servers):
    settings = load_settings({"DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none"})
    answer = create_app(settings).test_client().get("/readyz")
    assert answer.status_code == 503 and answer.json["status"] == "unavailable", answer.json
    assert "database unavailable" in answer.json["reason"]
    # /healthz is the process only, as before.
    assert create_app(settings).test_client().get("/healthz").json == {"status": "ok"}


def test_daily_series_hold_every_day_quiet_days_as_gaps(db, client, openapi):
    build()
    start, end = FIRST_DAY.date() - timedelta(days=1), LATER_DAY.date() + timedelta(days=1)
    period = {"start": start.isoformat(), "end": end.isoformat()}
    every_day = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    quiet = (FIRST_DAY.date() + timedelta(days=2)).isoformat()
    for endpoint, count, measured, table, column in (
        ("response-times", "responses", "median_response_seconds", "responses", "activity_date"),
        ("delivery", "messages_sent", "delivery_rate", "message_delivery", "sent_date"),
    ):
        response = client.get(f"/api/v1/metrics/{endpoint}", query_string=period)
        openapi.validate_response(
            WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response)
        )
        days = response.json["days"]
        assert [d["activity_date"] for d in days] == every_day, endpoint
        expected = dict(
            db.execute(
                f"select {column}::text, count(*)::int from marts.{table}"
                f" where {column} between %s and %s group by 1",
                (start, end),
            ).fetchall()
        )
        assert len(expected) >= 2 and quiet not in expected, expected
        assert {d["activity_date"]: d[count] for d in days if d[count]} == expected
        for day in days:
            if day["activity_date"] not in expected:
                assert day[count] == 0 and day[measured] is None, day
            else:
                assert day[measured] is not None, day
