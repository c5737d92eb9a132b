"""The metrics API and the dashboard on demo traffic: every answer as the OpenAPI document says,
every figure equal to the daily marts dbt built, the business-number filter, and the page in a
real browser (headless Chromium) drawing the API's numbers."""

import csv
import io
import os
import re
import shutil
import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import psycopg
import pytest
from helpers import build, cloud_api_delivery, crm_event, status, store_deliveries, text_message
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from playwright.sync_api import sync_playwright
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row

from dashboard.api import load_openapi
from dashboard.app import create_app
from wa_analytics.core.config import load_settings
from wa_analytics.core.dbt import PROJECT_ROOT
from wa_analytics.core.processes import free_port, spawn_cli, stop_all, wait_ready
from wa_analytics.demo.traffic import CRM_PATH, Delivery, generate_traffic

OTHER_NUMBER = "200000000000001"
ENDPOINTS = [
    "summary", "response-times", "contact-growth", "peak-hours", "delivery", "agents", "sla",
    "costs", "campaigns", "ads",
]  # fmt: skip


def other_number_traffic() -> list[Delivery]:
    """Two contacts who write only to a second business number, one message answered."""
    at = int(time.time()) - 3 * 86400
    metadata = {"display_phone_number": "15550002222", "phone_number_id": OTHER_NUMBER}
    bodies = [
        cloud_api_delivery([text_message("wamid.X1", "5511988880001", at)], metadata=metadata),
        cloud_api_delivery([text_message("wamid.X2", "5511988880001", at + 60)], metadata=metadata),
        cloud_api_delivery([text_message("wamid.X3", "5511988880002", at + 120)], metadata=metadata),
        cloud_api_delivery(statuses=[status("wamid.XR", "5511988880001", at + 300, "read")],
                           metadata=metadata),
    ]  # fmt: skip
    return [Delivery("/webhooks/whatsapp", orjson.dumps(body)) for body in bodies]


RENEWALS = {"id": "cmp-test-renewals", "name": "Renewals"}


def failed_template_traffic() -> list[Delivery]:
    """A campaign's utility template, sent by the CRM from the second business number to its
    two contacts on two days: three fail (two with Meta's error 131026, one with 131049), one
    is delivered and charged, one delivered free in a customer-service window; both are read."""
    at = int(time.time()) - 2 * 86400
    metadata = {"display_phone_number": "15550002222", "phone_number_id": OTHER_NUMBER}
    template = {"name": "renewal_reminder", "language": "pt_BR", "category": "utility"}
    charged = {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}
    free = {**charged, "billable": False, "type": "free_customer_service"}
    sends = [("wamid.XT1", "5511988880001", at, 131026), ("wamid.XT2", "5511988880002", at, 131026),
             ("wamid.XT3", "5511988880001", at + 86400, 131049),
             ("wamid.XT4", "5511988880002", at + 86400, charged),
             ("wamid.XT5", "5511988880001", at + 86400 + 600, free)]  # fmt: skip
    deliveries = []
    for message_id, wa_id, sent_at, outcome in sends:
        send = crm_event("whatsapp.message.sent", message_id, f"+{wa_id}", sent_at,
                         campaign=RENEWALS)  # fmt: skip
        send["message"] = {"id": message_id, "type": "template", "template": template}
        deliveries.append(Delivery(CRM_PATH, orjson.dumps(send)))
        if isinstance(outcome, int):  # an error code: failed, and not priced
            failed = status(message_id, wa_id, sent_at + 5, "failed",
                            errors=[{"code": outcome, "title": "Message undeliverable"}])  # fmt: skip
            del failed["pricing"], failed["conversation"]
            statuses = [failed]
        else:
            statuses = [status(message_id, wa_id, sent_at + 5, "delivered", pricing=outcome),
                        status(message_id, wa_id, sent_at + 90, "read", pricing=outcome)]  # fmt: skip
        body = cloud_api_delivery(statuses=statuses, metadata=metadata)
        deliveries.append(Delivery("/webhooks/whatsapp", orjson.dumps(body)))
    return deliveries


@pytest.fixture(scope="module")
def marts(servers):
    """Demo traffic plus a second business number (with a campaign whose sends mostly fail),
    stored as the worker stores it, then built."""
    deliveries = (
        generate_traffic(seed=5, contacts=60, days=6).deliveries
        + other_number_traffic()
        + failed_template_traffic()
    )
    with psycopg.connect(servers["database_url"], autocommit=True) as conn:
        conn.execute("truncate raw.deliveries, raw.events, raw.quarantine")
    store_deliveries(servers["database_url"], deliveries)
    build("--full-refresh")
    with psycopg.connect(servers["database_url"], autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def api(marts):
    return create_app(load_settings()).test_client()


@pytest.fixture(scope="module")
def openapi():
    return OpenAPI.from_dict(load_openapi())


def get(api, openapi, endpoint: str, **params) -> tuple[int, dict]:
    """GET an endpoint and validate the answer against the OpenAPI document."""
    response = api.get(f"/api/v1/metrics/{endpoint}", query_string=params)
    openapi.validate_response(
        WerkzeugOpenAPIRequest(response.request), WerkzeugOpenAPIResponse(response)
    )
    return response.status_code, response.get_json()


def data_range(marts) -> tuple[date, date]:
    return marts.execute(
        "select min(activity_date), max(activity_date) from marts.contact_growth_daily"
    ).fetchone()


def sending_range(marts) -> tuple[date, date]:
    """The days the business sent on (contact growth reaches back to a history backfill's
    days, and a contact may write on a day nothing is sent)."""
    return marts.execute(
        "select min(activity_date), max(activity_date) from marts.delivery_daily"
    ).fetchone()


def test_every_answer_is_as_the_openapi_document_says(api, openapi, marts):
    first, last = data_range(marts)
    # The build's: the newest event it read, and its end (after its last model, before now).
    as_of, last_model, now = marts.execute(
        "select (select max(loaded_at) from raw.events),"
        " (select built_at from marts.reporting_settings), now()"
    ).fetchone()
    for endpoint in [*ENDPOINTS, "business-numbers"]:
        for params in ({}, {"start": first.isoformat(), "end": last.isoformat()},
                       {"business_number": OTHER_NUMBER}):  # fmt: skip
            code, body = get(api, openapi, endpoint, **params)
            assert code == 200, (endpoint, params, body)
            assert datetime.fromisoformat(body["as_of"]) == as_of, endpoint
            assert last_model < datetime.fromisoformat(body["built_at"]) < now, endpoint
    code, body = get(api, openapi, "summary")
    assert (body["start"], body["end"]) == (
        (last - timedelta(days=27)).isoformat(),
        last.isoformat(),
    )
    assert body["timezone"] == "UTC"  # as the marts were built
    assert api.get("/api/v1/openapi.json").get_json()["openapi"].startswith("3.1")


@pytest.mark.parametrize(
    "params, reason",
    [
        ({"start": "2026-13-01"}, "start must be a date"),
        ({"end": "yesterday"}, "end must be a date"),
        ({"start": "2026-05-02", "end": "2026-05-01"}, "start must not be after end"),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "at most 366 days"),
        ({"business_number": "1065'; drop table x"}, "business_number must be"),
        ({"start": "0001-01-01", "end": "0001-01-05"}, "must be between 2000-01-01"),
        ({"end": "0001-01-05"}, "end must be between"),
    ],
)
def test_bad_filters_get_a_400_with_the_reason(api, openapi, params, reason):
    for endpoint in ENDPOINTS:
        code, body = get(api, openapi, endpoint, **params)
        assert code == 400 and reason in body["reason"], (endpoint, body)


def test_every_figure_equals_the_daily_marts(api, openapi, marts):
    first, last = data_range(marts)
    period = {"start": first.isoformat(), "end": last.isoformat()}

    _, growth = get(api, openapi, "contact-growth", **period)
    expected = marts.execute(
        "select activity_date::text, new_contacts, cumulative_contacts"
        " from marts.contact_growth_daily order by 1"
    ).fetchall()
    got = [
        (d["activity_date"], d["new_contacts"], d["cumulative_contacts"]) for d in growth["days"]
    ]
    assert got == [tuple(r) for r in expected]

    _, times = get(api, openapi, "response-times", **period)
    expected = marts.execute(
        "select activity_date::text, responses, median_response_seconds, p90_response_seconds,"
        " first_responses, median_first_response_seconds, p90_first_response_seconds"
        " from marts.response_times_daily order by 1"
    ).fetchall()
    got = [
        (d["activity_date"], d["responses"], d["median_response_seconds"],
         d["p90_response_seconds"], d["first_responses"], d["median_first_response_seconds"],
         d["p90_first_response_seconds"])
        for d in times["days"]
    ]  # fmt: skip
    # Every day of the period has a row: the mart's figures, or none on a day without
    # responses (the period reaches back to the history backfill's days, which have none).
    quiet = [d for d in got if d[0] not in {row[0] for row in expected}]
    assert all(d[1:] == (0, None, None, 0, None, None) for d in quiet)
    got = [d for d in got if d not in quiet]
    assert len(got) == len(expected) >= 5
    for mine, theirs in zip(got, expected, strict=True):
        assert mine == pytest.approx(tuple(theirs), nan_ok=True), mine[0]

    _, peaks = get(api, openapi, "peak-hours", **period)
    expected = dict(
        marts.execute(
            "select (day_of_week, hour_of_day)::text, sum(messages_received)::int"
            " from marts.hourly_traffic group by 1"
        ).fetchall()
    )
    cells = {
        f"({c['day_of_week']},{c['hour_of_day']})": c["messages_received"] for c in peaks["cells"]
    }
    assert {k: v for k, v in cells.items() if v} == expected

    _, delivery = get(api, openapi, "delivery", **period)
    sent, delivered, read, failed = marts.execute(
        "select sum(messages_sent)::int, sum(messages_delivered)::int, sum(messages_read)::int,"
        " sum(messages_failed)::int from marts.delivery_daily"
    ).fetchone()
    totals = delivery["totals"]
    assert (totals["messages_sent"], totals["messages_delivered"], totals["messages_read"],
            totals["messages_failed"]) == (sent, delivered, read, failed)  # fmt: skip
    assert totals["read_rate"] == pytest.approx(read / delivered)

    _, agents = get(api, openapi, "agents", **period)
    expected = dict(
        marts.execute(
            "select agent_id, sum(responses)::int from marts.agent_performance_daily group by 1"
        ).fetchall()
    )
    assert {a["agent_id"]: a["responses"] for a in agents["agents"] if a["responses"]} == expected


def test_headlines_compare_with_the_previous_period(api, openapi, marts):
    first, last = data_range(marts)
    start = last - timedelta(days=1)
    _, summary = get(api, openapi, "summary", start=start.isoformat(), end=last.isoformat())
    assert summary["previous_period"] == {
        "start": (start - timedelta(days=2)).isoformat(),
        "end": (start - timedelta(days=1)).isoformat(),
    }

    def daily_sum(column: str, table: str, since: date, until: date) -> int:
        return marts.execute(
            f"select coalesce(sum({column}), 0)::int from marts.{table}"
            " where activity_date between %s and %s",
            (since, until),
        ).fetchone()[0]

    for name, table in (("responses", "response_times_daily"),
                        ("new_contacts", "contact_growth_daily")):  # fmt: skip
        figure = summary["figures"][name]
        now = daily_sum(name, table, start, last)
        before = daily_sum(name, table, start - timedelta(days=2), start - timedelta(days=1))
        assert (figure["value"], figure["previous"]) == (now, before)
        assert figure["change"] == (pytest.approx((now - before) / before) if before else None)


def test_the_business_number_filter(api, openapi, marts):
    other = {"business_number": OTHER_NUMBER, "start": "2000-01-01", "end": "2000-12-31"}
    first, last = data_range(marts)
    other.update(start=first.isoformat(), end=last.isoformat())
    _, growth = get(api, openapi, "contact-growth", **other)
    assert sum(d["new_contacts"] for d in growth["days"]) == 2
    assert growth["days"][-1]["cumulative_contacts"] == 2
    _, peaks = get(api, openapi, "peak-hours", **other)
    assert sum(c["messages_received"] for c in peaks["cells"]) == 3
    _, everyone = get(api, openapi, "peak-hours", start=other["start"], end=other["end"])
    main = {**other, "business_number": "106540352242922"}
    _, main_peaks = get(api, openapi, "peak-hours", **main)
    crm_only = marts.execute(
        "select coalesce(sum(messages_received), 0) from marts.inbound_traffic_hourly"
        " where business_phone_number_id is null"
    ).fetchone()[0]
    total = sum(c["messages_received"] for c in everyone["cells"])
    assert sum(c["messages_received"] for c in main_peaks["cells"]) == total - 3 - crm_only
    _, numbers = get(api, openapi, "business-numbers")
    assert {n["business_number"] for n in numbers["business_numbers"]} == {
        OTHER_NUMBER, "106540352242922"
    }  # fmt: skip


CHROMIUM = os.environ.get("WA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = PROJECT_ROOT / "target" / "screenshots"
CHART_STATE = """() => Object.fromEntries(Object.entries(window.dashboard.charts).map(
    ([id, chart]) => [id, {labels: chart.data.labels, data: chart.data.datasets.map(d => d.data),
                           drawn: chart.getDatasetMeta(0).data.length,
                           width: chart.width, height: chart.height}]))"""


@contextmanager
def serving_dashboard() -> Iterator[str]:
    """``wa-analytics dashboard`` as a real process (gunicorn); yields its address."""
    port = free_port()
    process = spawn_cli(["dashboard", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, path="/healthz")
        yield url
    finally:
        stop_all([process])


@pytest.fixture(scope="module")
def dashboard_url(marts):
    """The dashboard on the built marts."""
    with serving_dashboard() as url:
        yield url


@pytest.fixture(scope="module")
def fast_dashboard_url(marts):
    """The dashboard of a transform that builds every 3 s: it refreshes as often, and its marts
    are stale 9 s after the last passed build."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WA_TRANSFORM_INTERVAL", "3")
        with serving_dashboard() as url:
            yield url


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "the browser test needs Chromium: apt-get install chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def open_dashboard(browser, url: str, **context) -> tuple:
    page = browser.new_page(**context)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.goto(url)
    page.wait_for_selector("body[data-state=ready]", timeout=30_000)
    return page, errors


def test_the_page_draws_the_apis_numbers_in_headless_chromium(browser, dashboard_url, api, openapi):
    page, errors = open_dashboard(
        browser, dashboard_url + "/", viewport={"width": 1280, "height": 1000}
    )
    charts = page.evaluate(CHART_STATE)
    answers = {endpoint: get(api, openapi, endpoint)[1] for endpoint in ENDPOINTS}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "dashboard-laptop.png", full_page=True)

    for chart in charts.values():
        assert chart["drawn"] > 0 and chart["width"] > 200 and chart["height"] > 150, chart

    days = answers["response-times"]["days"]
    times = charts["response-times"]
    assert times["labels"] == [d["activity_date"] for d in days]
    for key, drawn in zip(("median_response_seconds", "p90_response_seconds"), times["data"],
                          strict=True):  # fmt: skip
        assert drawn == pytest.approx([None if d[key] is None else max(d[key], 1) for d in days])

    growth = answers["contact-growth"]["days"]
    assert charts["contact-growth"]["labels"] == [d["activity_date"] for d in growth]
    assert charts["contact-growth"]["data"] == [
        [d["new_contacts"] for d in growth],
        [d["cumulative_contacts"] for d in growth],
    ]

    cells = answers["peak-hours"]["cells"]
    assert charts["peak-hours"]["data"][0] == [
        {"x": c["hour_of_day"], "y": c["day_of_week"], "v": c["messages_received"]} for c in cells
    ]
    assert sum(c["messages_received"] for c in cells) > 0

    totals = answers["delivery"]["totals"]
    assert charts["delivery"]["data"][0] == [
        totals["messages_sent"], totals["messages_delivered"], totals["messages_read"],
        totals["messages_failed"],
    ]  # fmt: skip

    figures = answers["summary"]["figures"]
    assert page.inner_text("[data-figure=responses] .value") == f"{figures['responses']['value']:,}"
    assert page.inner_text("[data-figure=new_contacts] .value") == (
        f"{figures['new_contacts']['value']:,}"
    )
    read = page.inner_text("[data-figure=read_rate] .value")
    assert read == f"{figures['read_rate']['value'] * 100:.1f}%"
    for name, figure in figures.items():
        shown = page.get_attribute(f"[data-figure={name}]", "data-value")
        assert float(shown) == pytest.approx(figure["value"]), name

    # Durations are rounded once, then split: never "1m 60s".
    shown = page.evaluate("[59.6, 119.7, 3599.8, 7170].map(duration)")
    assert shown == ["1m 0s", "2m 0s", "1h 0m", "2h 0m"]

    agents = answers["agents"]["agents"]
    rows = page.locator("#agents tbody tr")
    assert rows.count() == len(agents) > 1
    assert "(days and hours in UTC)" in page.inner_text("#period")
    assert rows.nth(0).locator("td").nth(0).inner_text() == agents[0]["agent_id"]
    assert rows.nth(0).locator("td").nth(1).inner_text() == f"{agents[0]['responses']:,}"

    sla = answers["sla"]
    assert charts["sla-days"]["labels"] == [d["activity_date"] for d in sla["days"]]
    assert charts["sla-days"]["data"] == [
        [d[key] for d in sla["days"]]
        for key in ("answered_within_target", "answered_late", "open_past_target")
    ]
    assert charts["sla-buckets"]["data"][0] == [
        sla["totals"][f"first_responses_{b}"] for b in ("under_1m", "1_to_5m", "5_to_15m",
                                                        "15_to_60m", "over_60m")
    ]  # fmt: skip
    breaches = page.locator("#sla-breaches tbody tr")
    assert breaches.count() == len(sla["breaches"]) > 0
    assert breaches.nth(0).locator("td").nth(0).inner_text() == sla["breaches"][0]["contact_id"]
    for mart, href in sla["exports"].items():
        assert page.get_attribute(f"#export-{mart}", "href") == href
    assert errors == []


def test_the_page_filters_by_business_number_and_fits_a_phone(browser, dashboard_url):
    page, errors = open_dashboard(
        browser, dashboard_url + "/", viewport={"width": 390, "height": 844}, is_mobile=True
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=SCREENSHOTS / "dashboard-phone.png", full_page=True)
    page.select_option("#business_number", OTHER_NUMBER)
    page.evaluate("document.body.dataset.state = 'changing'")
    page.click("#filters button")
    page.wait_for_selector("body[data-state=ready]", timeout=30_000)
    assert f"business_number={OTHER_NUMBER}" in page.url
    charts = page.evaluate(CHART_STATE)
    assert sum(charts["contact-growth"]["data"][0]) == 2
    assert sum(cell["v"] for cell in charts["peak-hours"]["data"][0]) == 3
    assert page.inner_text("[data-figure=new_contacts] .value") == "2"
    assert errors == []


def test_before_dbt_has_run_the_api_says_so(servers, openapi):
    """A database with the raw schema but no marts: 503 with what to do, not a stack trace."""
    settings = conninfo_to_dict(servers["database_url"])
    empty = make_conninfo(**{**settings, "dbname": "wa_analytics_no_marts"})
    with psycopg.connect(servers["database_url"], autocommit=True) as admin:
        admin.execute("drop database if exists wa_analytics_no_marts")
        admin.execute("create database wa_analytics_no_marts")
    try:
        client = create_app(load_settings({"DATABASE_URL": empty})).test_client()
        code, body = get(client, openapi, "summary")
        assert code == 503 and "dbt build" in body["reason"]
        never = {"business_numbers": [], "as_of": None, "built_at": None}
        assert get(client, openapi, "business-numbers") == (200, never)
        assert client.get("/").status_code == 200
    finally:
        with psycopg.connect(servers["database_url"], autocommit=True) as admin:
            admin.execute("drop database wa_analytics_no_marts with (force)")


def test_the_page_refreshes_in_place_and_says_how_fresh(browser, fast_dashboard_url, api, marts):
    """An hour-old build: the stale banner at once. A real build: the next refresh, without a
    reload, draws into the same charts, drops the banner and says "updated N s ago"."""
    marts.execute("update audit.dbt_builds set finished_at = finished_at - interval '1 hour'")
    page, errors = open_dashboard(browser, f"{fast_dashboard_url}/?business_number={OTHER_NUMBER}")
    page.evaluate("window.marker = 'not reloaded'")
    chart_id = page.evaluate("window.dashboard.charts['response-times'].id")
    assert page.get_attribute("body", "data-stale") == "true"
    assert page.is_visible("#stale")
    page.screenshot(path=SCREENSHOTS / "dashboard-stale.png")
    assert "Stale figures: the marts were last updated 60 min ago" in page.inner_text("#stale")
    assert page.inner_text("#freshness").startswith("updated 60 min ago, events stored until")
    loads = page.evaluate("window.dashboard.loads")

    build()
    page.wait_for_function("document.body.dataset.stale === 'false'", timeout=20_000)
    assert not page.is_visible("#stale")
    built_at = api.get("/api/v1/metrics/summary").get_json()["built_at"]
    assert page.evaluate("window.dashboard.freshness.built_at") == built_at
    shown = page.inner_text("#freshness")
    assert re.fullmatch(r"updated \d+ s ago, events stored until [\d-]+ [\d:]+ UTC", shown), shown
    age = int(page.get_attribute("#freshness", "data-age-seconds"))
    # It ticks between refreshes (each second; a refresh re-reads the server's clock, whose
    # Date header has whole seconds, so no fixed wait is exact on a loaded machine).
    ticked = f"Number(document.querySelector('#freshness').dataset.ageSeconds) >= {age + 2}"
    page.wait_for_function(ticked, timeout=10_000)
    assert page.evaluate("window.marker") == "not reloaded"
    assert page.evaluate("window.dashboard.loads") > loads
    assert page.evaluate("window.dashboard.charts['response-times'].id") == chart_id
    assert page.get_attribute("body", "data-state") == "ready"
    # Still the filter it was opened with.
    assert page.url.endswith(f"?business_number={OTHER_NUMBER}")
    assert sum(page.evaluate(CHART_STATE)["contact-growth"]["data"][0]) == 2
    assert errors == []


AXES = """(id) => { const chart = window.dashboard.charts[id]; const y = chart.scales.y;
    return {type: y.type, ticks: y.ticks.map((t) => t.label), labels: chart.data.labels,
            data: chart.data.datasets.map((d) => d.data),
            spanGaps: chart.data.datasets.map((d) => d.spanGaps),
            skipped: chart.getDatasetMeta(0).data.map((point) => point.skip),
            height: chart.chartArea.bottom - chart.chartArea.top,
            above_axis: chart.getDatasetMeta(0).data.filter((p) => !p.skip)
                .map((p) => chart.chartArea.bottom - p.y)}; }"""


def test_quiet_days_are_gaps_and_response_times_on_a_log_axis(browser, dashboard_url, marts):
    first, last = sending_range(marts)
    start = first - timedelta(days=2)
    page, errors = open_dashboard(browser, f"{dashboard_url}/?start={start}&end={last}")
    days = [(start + timedelta(days=n)).isoformat() for n in range((last - start).days + 1)]
    for chart, mart in (("response-times", "response_times_daily"),
                        ("delivery-days", "delivery_daily")):  # fmt: skip
        with_data = {
            day.isoformat() for (day,) in marts.execute(f"select activity_date from marts.{mart}")
        }
        quiet = [day not in with_data for day in days]
        assert quiet[:2] == [True, True] or chart == "response-times", chart
        drawn = page.evaluate(AXES, chart)
        assert drawn["labels"] == days, chart
        # A day without data has no figure, and a gap in the line, not a point at 0. (A day
        # whose messages all failed has a delivery rate, 0, and no read rate: none delivered.)
        undelivered = set()
        if chart == "delivery-days":
            undelivered = {
                day.isoformat() for (day,) in marts.execute(
                    "select activity_date from marts.delivery_daily where messages_delivered = 0"
                )
            }  # fmt: skip
        for index, series in enumerate(drawn["data"]):
            unknown = [
                q or (index == 1 and d in undelivered) for q, d in zip(quiet, days, strict=True)
            ]
            assert [value is None for value in series] == unknown, chart
        assert drawn["skipped"] == quiet, chart
        assert drawn["spanGaps"] == [False, False], chart

    times = page.evaluate(AXES, "response-times")
    assert times["type"] == "logarithmic"
    human = re.compile(r"\d+[smhd]")
    assert len(times["ticks"]) >= 2 and all(human.fullmatch(tick) for tick in times["ticks"])
    # The median's changes from day to day (minutes) read beside a p90 of up to days: on a
    # linear axis they would span a pixel or two.
    assert max(times["data"][1][2:]) > 100 * min(times["data"][0][2:]), times  # as they are here
    assert max(times["above_axis"]) - min(times["above_axis"]) > 0.1 * times["height"], times
    assert errors == []


def test_sla_figures_and_breaches_are_the_marts(api, openapi, marts):
    first, last = data_range(marts)
    period = {"start": first.isoformat(), "end": last.isoformat()}
    _, sla = get(api, openapi, "sla", **period)
    expected = marts.execute(
        "select sum(waits), sum(answered_within_target), sum(answered_late), sum(breached),"
        " sum(answered_within_target)::float"
        " / nullif(sum(answered_within_target + answered_late + open_past_target), 0)"
        " from marts.sla_attainment_daily"
    ).fetchone()
    totals = sla["totals"]
    got = (totals["waits"], totals["answered_within_target"], totals["answered_late"],
           totals["breached"], totals["attainment_rate"])  # fmt: skip
    assert got == pytest.approx(tuple(expected))
    assert totals["waits"] > totals["breached"] > 0
    assert totals["first_responses"] == sum(
        totals[f"first_responses_{b}"] for b in ("under_1m", "1_to_5m", "5_to_15m", "15_to_60m",
                                                 "over_60m")
    )  # fmt: skip
    assert sum(d["breached"] for d in sla["days"]) == totals["breached"]
    listed = sla["breaches"]
    assert len(listed) == min(totals["breached"], sla["breaches_listed_at_most"])
    assert [b["activity_date"] for b in listed] == sorted(
        (b["activity_date"] for b in listed), reverse=True
    )
    assert all(
        b["seconds_late"] > 0 and (b["agent_id"] is None or not b["is_open"]) for b in listed
    )


@pytest.mark.parametrize(
    ("mart", "day"),
    [("responses", "activity_date"), ("conversations", "opened_date"),
     ("sla_breaches", "activity_date")],
)  # fmt: skip
def test_the_rows_behind_the_figures_download_as_csv(api, openapi, marts, mart, day):
    first, last = data_range(marts)
    middle = first + (last - first) / 2
    for params, where in [
        ({"start": first.isoformat(), "end": last.isoformat()}, "true"),
        ({"start": middle.isoformat(), "end": last.isoformat(), "business_number": OTHER_NUMBER},
         f"{day} >= '{middle}' and business_phone_number_id = '{OTHER_NUMBER}'"),
    ]:  # fmt: skip
        _, sla = get(api, openapi, "sla", **params)
        response = api.get(sla["exports"][mart])
        assert response.status_code == 200 and response.mimetype == "text/csv"
        assert response.headers["X-Built-At"] == sla["built_at"]
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        columns = [
            name for (name,) in marts.execute(
                "select column_name from information_schema.columns where table_schema = 'marts'"
                " and table_name = %s order by ordinal_position", (mart,),
            )
        ]  # fmt: skip
        assert rows[0] == columns
        expected = marts.execute(
            f"select count(*) from marts.{mart} where {where} and {day} <= %s", (last,)
        ).fetchone()[0]
        assert len(rows) - 1 == expected
    assert api.get("/api/v1/export/events.csv").status_code == 404
    assert api.get(f"/api/v1/export/{mart}.csv?start=nope").status_code == 400


def test_answers_during_a_build_are_whole(api, marts):
    """dbt replaces the marts it rebuilds whole (reporting_settings, contact_growth_daily,
    sla_attainment_daily, ...) by renaming a new table into place: a request meanwhile must
    read the old table or the new one, never an empty one, and never fail."""
    expected = {
        endpoint: api.get(f"/api/v1/metrics/{endpoint}").get_json()
        for endpoint in ("contact-growth", "sla")
    }
    building = threading.Thread(target=build)
    building.start()
    answers = 0
    while building.is_alive() or not answers:
        for endpoint, before in expected.items():
            response = api.get(f"/api/v1/metrics/{endpoint}")
            assert response.status_code == 200, response.get_json()
            body = response.get_json()
            if endpoint == "contact-growth":
                assert body["days"] == before["days"]
            else:
                assert body["totals"]["waits"] == before["totals"]["waits"] > 0
            answers += 1
    building.join()
    assert answers > 10


def mart_rows(marts, query: str, params=()) -> list[dict]:
    with marts.cursor(row_factory=dict_row) as cursor:
        return cursor.execute(query, params).fetchall()


def periods(marts) -> list[dict]:
    """The filters the new endpoints are checked with: all the data, its last two days, and
    all of it for the second business number."""
    first, last = data_range(marts)
    return [
        {"start": first, "end": last},
        {"start": last - timedelta(days=1), "end": last},
        {"start": first, "end": last, "business_number": OTHER_NUMBER},
    ]


def chosen(rows: list[dict], params: dict, day: str) -> list[dict]:
    """The mart rows the filters select, chosen here in Python (not by the API's SQL)."""
    number = params.get("business_number")
    return [
        row for row in rows
        if params["start"] <= row[day] <= params["end"]
        and (number is None or row["business_phone_number_id"] == number)
    ]  # fmt: skip


def query_of(params: dict) -> dict:
    return {key: str(value) for key, value in params.items()}


COST_COUNTS = ("messages_charged", "messages_free", "messages_without_rate")
COST_AMOUNTS = ("estimated_cost", "estimated_savings")


def cost_sums(rows: list[dict], *keys: str) -> dict:
    """The rows' cost figures per ``keys`` and currency, summed in Python: counts, and amounts
    (null where every row's is, as for messages without a rate)."""
    sums = {}
    for row in rows:
        into = sums.setdefault(
            (*(row[key] for key in keys), row["currency"]),
            {**dict.fromkeys(COST_COUNTS, 0), **dict.fromkeys(COST_AMOUNTS)},
        )
        for name in COST_COUNTS:
            into[name] += row[name]
        for name in COST_AMOUNTS:
            if row[name] is not None:
                into[name] = (into[name] or 0) + row[name]
    # As JSON carries them: decimals as the nearest float.
    return {
        key: {name: float(v) if isinstance(v, Decimal) else v for name, v in figures.items()}
        for key, figures in sums.items()
    }


def answered_sums(items: list[dict], *keys: str) -> dict:
    """An answer's list of cost figures keyed as cost_sums keys them (each key once)."""
    keyed = {
        (*(item[key] for key in keys), item["currency"]): {
            name: item[name] for name in COST_COUNTS + COST_AMOUNTS
        }
        for item in items
    }
    assert len(keyed) == len(items), items
    return keyed


def test_cost_figures_are_the_mart_per_currency(api, openapi, marts):
    every_row = mart_rows(marts, "select * from marts.messaging_costs_daily")
    for params in periods(marts):
        code, costs = get(api, openapi, "costs", **query_of(params))
        assert code == 200, costs
        rows = chosen(every_row, params, "activity_date")
        assert answered_sums(costs["totals"]) == cost_sums(rows)
        assert answered_sums(costs["by_category"], "pricing_category") == cost_sums(
            rows, "pricing_category"
        )
        assert answered_sums(costs["by_market"], "market") == cost_sums(rows, "market")
        assert answered_sums(costs["by_pricing_type"], "pricing_type") == cost_sums(
            rows, "pricing_type"
        )

        # Every day, the same series (categories with charged messages), 0 on a day without.
        days = [(params["start"] + timedelta(days=n)).isoformat()
                for n in range((params["end"] - params["start"]).days + 1)]  # fmt: skip
        assert [d["activity_date"] for d in costs["days"]] == days
        series = {(r["pricing_category"], r["currency"]) for r in rows if r["messages_charged"]}
        for day in costs["days"]:
            assert [(s["pricing_category"], s["currency"]) for s in day["spend"]] == [
                (s["pricing_category"], s["currency"]) for s in costs["days"][0]["spend"]
            ]
            assert {(s["pricing_category"], s["currency"]) for s in day["spend"]} == series
            on_day = cost_sums(
                [r for r in rows if r["activity_date"].isoformat() == day["activity_date"]],
                "pricing_category",
            )
            for spend in day["spend"]:
                figures = on_day.get((spend["pricing_category"], spend["currency"]))
                assert spend["messages_charged"] == (figures["messages_charged"] if figures else 0)
                if spend["currency"] is not None:
                    assert spend["estimated_cost"] == (figures["estimated_cost"] if figures else 0)

    _, everything = get(api, openapi, "costs", **query_of(periods(marts)[0]))
    charged = {t["currency"]: t["messages_charged"] for t in everything["totals"]}
    assert charged["USD"] > 0 and everything["totals"][0]["estimated_cost"] > 0
    free = {t["pricing_type"]: t for t in everything["by_pricing_type"]}
    assert free["free_customer_service"]["messages_free"] > 0
    assert free["free_customer_service"]["estimated_savings"] > 0
    assert free["free_entry_point"]["messages_free"] > 0
    # The second number's templates: utility to Brazil, one charged and one free, both at the
    # rate card's price.
    _, other = get(api, openapi, "costs", **query_of(periods(marts)[2]))
    utility = [c for c in other["by_category"] if c["pricing_category"] == "utility"]
    assert utility == [{"pricing_category": "utility", "currency": "USD", "messages_charged": 1,
                        "messages_free": 1, "messages_without_rate": 0,
                        "estimated_cost": 0.0068, "estimated_savings": 0.0068}]  # fmt: skip


def test_costs_in_two_currencies_are_never_added_together(api, openapi, marts):
    """A rate card in two currencies (and a category it has no price for): every total, day
    and breakdown keeps each currency apart; the cost without a rate is unknown, not 0."""
    first, last = data_range(marts)
    period = {"start": first.isoformat(), "end": last.isoformat()}
    _, before = get(api, openapi, "costs", **period)
    mine = "business_phone_number_id = %s and (currency = 'EUR' or currency is null)"
    assert marts.execute(
        f"select count(*) from marts.messaging_costs_daily where {mine}", (OTHER_NUMBER,)
    ).fetchone() == (0,)
    marts.execute(
        "insert into marts.messaging_costs_daily values"
        " (%(day)s, %(number)s, 'marketing', 'regular', 'Germany', 'EUR', 3, 0, 0, 0.36, 0),"
        " (%(day)s, %(number)s, 'marketing', 'free_entry_point', 'Germany', 'EUR', 0, 2, 0, 0, 0.24),"
        " (%(day)s, %(number)s, 'authentication_international', 'regular', 'Other', null,"
        "  4, 0, 4, null, null)",
        {"day": last, "number": OTHER_NUMBER},
    )
    try:
        _, costs = get(api, openapi, "costs", **period)
    finally:
        marts.execute(f"delete from marts.messaging_costs_daily where {mine}", (OTHER_NUMBER,))

    totals = {t["currency"]: t for t in costs["totals"]}
    assert list(totals) == ["EUR", "USD", None]
    assert totals["USD"] == next(t for t in before["totals"] if t["currency"] == "USD")
    assert totals["EUR"] == {"currency": "EUR", "messages_charged": 3, "messages_free": 2,
                             "messages_without_rate": 0, "estimated_cost": 0.36,
                             "estimated_savings": 0.24}  # fmt: skip
    assert totals[None] == {"currency": None, "messages_charged": 4, "messages_free": 0,
                            "messages_without_rate": 4, "estimated_cost": None,
                            "estimated_savings": None}  # fmt: skip
    marketing = [
        c["currency"] for c in costs["by_category"] if c["pricing_category"] == "marketing"
    ]
    assert marketing == ["EUR", "USD"]
    spend = {(s["pricing_category"], s["currency"]): s for s in costs["days"][-1]["spend"]}
    assert spend[("marketing", "EUR")]["estimated_cost"] == 0.36
    assert spend[("authentication_international", None)] == {
        "pricing_category": "authentication_international", "currency": None,
        "messages_charged": 4, "estimated_cost": None,
    }  # fmt: skip
    assert all(
        d["spend"][[*spend].index(("marketing", "EUR"))]["estimated_cost"] == 0
        for d in costs["days"][:-1]
    )


FUNNEL_COUNTS = ("messages_sent", "messages_delivered", "messages_read", "messages_failed",
                 "messages_replied", "messages_clicked", "opt_outs", "resumes")  # fmt: skip
# As _marts__models.yml defines them (and a one-day answer shows they are the marts' rates).
FUNNEL_RATES = {"delivery_rate": ("messages_delivered", "messages_sent"),
                "read_rate": ("messages_read", "messages_delivered"),
                "reply_rate": ("messages_replied", "messages_sent"),
                "click_rate": ("messages_clicked", "messages_sent"),
                "opt_out_rate": ("opt_outs", "messages_sent")}  # fmt: skip
TEMPLATE_KEY = ("template_name", "template_language", "template_category")


def assert_same(got: dict, expected: dict, what) -> None:
    """The same keys and values; numbers that are not whole to float precision."""
    assert got.keys() == expected.keys(), what
    for key, value in expected.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value), (what, key)
        else:
            assert got[key] == value, (what, key)


def as_json(value):
    if isinstance(value, datetime | date):
        return value.isoformat()
    return float(value) if isinstance(value, Decimal) else value


def test_campaign_and_template_figures_are_the_marts(api, openapi, marts):
    funnels = mart_rows(marts, "select * from marts.campaign_funnel")
    template_days = mart_rows(marts, "select * from marts.template_performance_daily")
    for params in periods(marts):
        code, answer = get(api, openapi, "campaigns", **query_of(params))
        assert code == 200, answer
        zone = ZoneInfo(answer["timezone"])
        for row in funnels:  # the mart's local days, which the API filters on
            assert row["first_sent_date"] == row["first_sent_at"].astimezone(zone).date()
            assert row["last_sent_date"] == row["last_sent_at"].astimezone(zone).date()

        # The campaigns that sent in the period, whole, whatever the business number.
        expected = {
            row["campaign_id"]: {**{k: as_json(v) for k, v in row.items()},
                                 "failures_by_error_code": row["failures_by_error_code"] or {}}
            for row in funnels
            if row["first_sent_at"].astimezone(zone).date() <= params["end"]
            and row["last_sent_at"].astimezone(zone).date() >= params["start"]
        }  # fmt: skip
        got = {c["campaign_id"]: c for c in answer["campaigns"]}
        assert got.keys() == expected.keys()
        for campaign_id, campaign in got.items():
            assert_same(campaign, expected[campaign_id], campaign_id)
        sent_at = [c["last_sent_at"] for c in answer["campaigns"]]
        assert sent_at == sorted(sent_at, reverse=True)

        # Each template: its days' sums, rates from the sums, failures added up, no medians.
        sums = {}
        for row in chosen(template_days, params, "activity_date"):
            into = sums.setdefault(
                tuple(row[k] for k in TEMPLATE_KEY),
                {**dict.fromkeys(FUNNEL_COUNTS, 0), "failures_by_error_code": Counter()},
            )
            for name in FUNNEL_COUNTS:
                into[name] += row[name]
            into["failures_by_error_code"].update(row["failures_by_error_code"] or {})
        for figures in sums.values():
            figures["failures_by_error_code"] = dict(figures["failures_by_error_code"])
            for rate, (part, whole) in FUNNEL_RATES.items():
                figures[rate] = figures[part] / figures[whole] if figures[whole] else None
        got = {tuple(t[k] for k in TEMPLATE_KEY): t for t in answer["templates"]}
        assert len(got) == len(answer["templates"])
        assert got.keys() == sums.keys()
        for key, template in got.items():
            assert_same(
                {k: v for k, v in template.items() if k not in TEMPLATE_KEY}, sums[key], key
            )
        sent = [t["messages_sent"] for t in answer["templates"]]
        assert sent == sorted(sent, reverse=True)

    # One day of one number: each template's rates are its row's in the mart.
    for row in template_days:
        if row["business_phone_number_id"] is None:
            continue
        day = row["activity_date"].isoformat()
        _, answer = get(api, openapi, "campaigns", start=day, end=day,
                        business_number=row["business_phone_number_id"])  # fmt: skip
        template = next(t for t in answer["templates"] if all(t[k] == row[k] for k in TEMPLATE_KEY))
        for rate in FUNNEL_RATES:
            assert template[rate] == pytest.approx(row[rate]), (rate, row)

    _, everything = get(api, openapi, "campaigns", **query_of(periods(marts)[0]))
    renewals = next(c for c in everything["campaigns"] if c["campaign_id"] == RENEWALS["id"])
    assert renewals["campaign_name"] == "Renewals"
    assert (renewals["messages_sent"], renewals["messages_failed"]) == (5, 3)
    assert renewals["failures_by_error_code"] == {"131026": 2, "131049": 1}
    # Sent on two days: the failures of both, added up.
    template = next(t for t in everything["templates"] if t["template_name"] == "renewal_reminder")
    assert template["failures_by_error_code"] == {"131026": 2, "131049": 1}
    assert template["delivery_rate"] == 0.4
    assert len(everything["campaigns"]) > 1
    assert all("median_seconds_to_read" not in t for t in everything["templates"])
    # The second number sent only that template; campaigns are every number's.
    _, other = get(api, openapi, "campaigns", **query_of(periods(marts)[2]))
    assert [t["template_name"] for t in other["templates"]] == ["renewal_reminder"]
    assert other["campaigns"] == everything["campaigns"]


AD_COUNTS = ("conversations", "new_contacts", "returning_contacts", "conversations_answered",
             "outbound_messages", "free_entry_point_messages")  # fmt: skip


def test_ad_figures_are_the_marts(api, openapi, marts):
    every_day_row = mart_rows(marts, "select * from marts.ad_performance_daily")
    every_conversation = mart_rows(marts, "select * from marts.ad_conversations")
    for params in periods(marts):
        code, answer = get(api, openapi, "ads", **query_of(params))
        assert code == 200, answer
        assert "contact_id" not in orjson.dumps(answer).decode()  # counts, never contacts
        days = chosen(every_day_row, params, "activity_date")
        conversations = chosen(every_conversation, params, "opened_date")

        def figures(day_rows, conversation_rows) -> dict:
            sums = {name: sum(row[name] for row in day_rows) for name in AD_COUNTS}
            answered = sums["conversations_answered"]
            times = [c["first_response_seconds"] for c in conversation_rows
                     if c["first_response_seconds"] is not None]  # fmt: skip
            return {
                **sums,
                "answer_rate": answered / sums["conversations"] if sums["conversations"] else None,
                # The median of the period's conversations, not of the days' medians.
                "median_first_response_seconds": statistics.median(times) if times else None,
            }

        assert answer["totals"] == pytest.approx(figures(days, conversations))
        expected = {}
        for source_id in {row["source_id"] for row in days}:
            mine = [c for c in conversations if c["source_id"] == source_id]
            latest = max(mine, key=lambda c: c["opened_at"])
            expected[source_id] = {
                "source_id": source_id,
                **{k: latest[k] for k in ("source_type", "headline", "source_url")},
                **figures([r for r in days if r["source_id"] == source_id], mine),
            }
        got = {ad["source_id"]: ad for ad in answer["ads"]}
        assert got.keys() == expected.keys()
        for source_id, ad in got.items():
            assert_same(ad, expected[source_id], source_id)
        ranked = [ad["conversations"] for ad in answer["ads"]]
        assert ranked == sorted(ranked, reverse=True)

        assert len(answer["days"]) == (params["end"] - params["start"]).days + 1
        for day in answer["days"]:
            on_day = [r for r in days if r["activity_date"].isoformat() == day["activity_date"]]
            by_ad = Counter()
            for row in on_day:
                by_ad[row["source_id"]] += row["conversations"]
            assert day["conversations_by_ad"] == dict(by_ad)
            assert day["conversations"] == sum(by_ad.values())
            assert day["new_contacts"] == sum(r["new_contacts"] for r in on_day)

    _, everything = get(api, openapi, "ads", **query_of(periods(marts)[0]))
    assert len(everything["ads"]) >= 2 and everything["totals"]["conversations"] > 2
    assert everything["totals"]["median_first_response_seconds"] is not None
    _, other = get(api, openapi, "ads", **query_of(periods(marts)[2]))
    assert other["ads"] == [] and other["totals"]["conversations"] == 0
    assert other["totals"]["answer_rate"] is None


def column(page, table: str, index: int) -> list[str]:
    return page.locator(f"#{table} tbody tr").evaluate_all(
        f"(rows) => rows.map((row) => row.cells[{index}].innerText)"
    )


def test_the_cost_campaign_and_ad_panels_draw_the_apis_numbers(
    browser, dashboard_url, api, openapi
):
    page, errors = open_dashboard(
        browser, dashboard_url + "/", viewport={"width": 1280, "height": 1000}
    )
    answers = {endpoint: get(api, openapi, endpoint)[1] for endpoint in ENDPOINTS}
    charts = page.evaluate(CHART_STATE)
    page.locator("#costs-panel").screenshot(path=SCREENSHOTS / "dashboard-costs.png")

    costs = answers["costs"]
    series = [i for i, s in enumerate(costs["days"][0]["spend"]) if s["currency"]]
    assert series
    assert charts["costs-days"]["labels"] == [d["activity_date"] for d in costs["days"]]
    assert charts["costs-days"]["data"] == [
        [d["spend"][i]["estimated_cost"] for d in costs["days"]] for i in series
    ]
    stacks = page.evaluate("window.dashboard.charts['costs-days'].data.datasets.map(d => d.stack)")
    assert stacks == [costs["days"][0]["spend"][i]["currency"] for i in series]
    totals = page.locator("#costs-totals li")
    assert totals.count() == len(costs["totals"])
    for index, total in enumerate(costs["totals"]):
        item = totals.nth(index)
        assert item.get_attribute("data-currency") == (total["currency"] or "")
        if total["currency"]:
            assert float(item.get_attribute("data-cost")) == pytest.approx(total["estimated_cost"])
            assert float(item.get_attribute("data-savings")) == pytest.approx(
                total["estimated_savings"]
            )
            assert f"{total['messages_charged']:,} charged messages" in item.inner_text()
            assert total["currency"] in item.inner_text()
    free = page.locator("#costs-free tbody tr")
    assert free.count() == len(costs["by_pricing_type"])
    assert column(page, "costs-free", 1) == [
        f"{t['messages_free']:,}" for t in costs["by_pricing_type"]
    ]
    assert [free.nth(i).get_attribute("data-pricing-type") for i in range(free.count())] == [
        t["pricing_type"] or "" for t in costs["by_pricing_type"]
    ]

    campaigns = answers["campaigns"]["campaigns"]
    assert column(page, "campaigns", 0) == [c["campaign_name"] for c in campaigns]
    assert column(page, "campaigns", 2) == [f"{c['messages_sent']:,}" for c in campaigns]
    assert column(page, "campaigns", 9) == [f"{c['delivery_rate'] * 100:.1f}%" for c in campaigns]
    templates = answers["campaigns"]["templates"]
    assert column(page, "templates", 0) == [
        f"{t['template_name']} ({t['template_language']})" for t in templates
    ]
    assert column(page, "templates", 8) == [f"{t['messages_failed']:,}" for t in templates]
    failed = page.locator("#templates tbody tr", has_text="renewal_reminder").locator("td").nth(8)
    assert failed.get_attribute("title") == "131026: 2, 131049: 1"

    ads = answers["ads"]
    assert column(page, "ads", 0) == [a["headline"] for a in ads["ads"]]
    assert column(page, "ads", 2) == [f"{a['conversations']:,}" for a in ads["ads"]]
    shown = page.evaluate(
        "(seconds) => seconds.map(duration)",
        [a["median_first_response_seconds"] for a in ads["ads"]],
    )
    assert column(page, "ads", 7) == shown
    assert charts["ads-days"]["labels"] == [d["activity_date"] for d in ads["days"]]
    assert charts["ads-days"]["data"] == [
        [d["conversations_by_ad"].get(a["source_id"], 0) for d in ads["days"]] for a in ads["ads"]
    ]
    summary = page.inner_text("#ads-summary")
    assert summary.startswith(f"{ads['totals']['conversations']:,} conversations from ads")
    assert errors == []


def test_clicking_a_column_header_sorts_the_table(browser, dashboard_url, api, openapi):
    page, errors = open_dashboard(browser, dashboard_url + "/")
    campaigns = get(api, openapi, "campaigns")[1]["campaigns"]
    sent = page.locator("#campaigns thead th", has=page.locator("[data-key=messages_sent]"))
    name = page.locator("#campaigns thead th", has=page.locator("[data-key=campaign_name]"))
    assert sent.get_attribute("aria-sort") is None

    sent.locator("button").click()  # numbers: largest first (ties as the API ordered them)
    assert sent.get_attribute("aria-sort") == "descending"
    by_sent = sorted(campaigns, key=lambda c: -c["messages_sent"])
    assert column(page, "campaigns", 0) == [c["campaign_name"] for c in by_sent]
    assert column(page, "campaigns", 2) == [f"{c['messages_sent']:,}" for c in by_sent]
    assert len({c["messages_sent"] for c in campaigns}) > 1

    sent.locator("button").click()  # again: the other way
    assert sent.get_attribute("aria-sort") == "ascending"
    by_sent = sorted(campaigns, key=lambda c: c["messages_sent"])
    assert column(page, "campaigns", 0) == [c["campaign_name"] for c in by_sent]

    name.locator("button").focus()  # a button: the keyboard sorts too
    page.keyboard.press("Enter")
    assert name.get_attribute("aria-sort") == "ascending"
    assert sent.get_attribute("aria-sort") is None
    assert column(page, "campaigns", 0) == sorted(c["campaign_name"] for c in campaigns)

    # A refresh redraws in the order chosen.
    page.evaluate("document.body.dataset.state = 'changing'")
    page.click("#filters button")
    page.wait_for_selector("body[data-state=ready]", timeout=30_000)
    assert column(page, "campaigns", 0) == sorted(c["campaign_name"] for c in campaigns)
    assert errors == []


def test_a_period_without_campaigns_or_ads_says_so(browser, dashboard_url):
    page, errors = open_dashboard(browser, f"{dashboard_url}/?start=2001-01-01&end=2001-01-07")
    assert page.inner_text("#campaigns tbody") == "No campaigns in this period"
    assert page.inner_text("#templates tbody") == "No templates sent in this period"
    assert page.inner_text("#ads tbody") == "No ads in this period"
    assert page.inner_text("#ads-summary") == "No ads in this period"
    assert page.inner_text("#costs-totals") == "No priced messages in this period"
    assert page.inner_text("#costs-free tbody") == "No priced messages in this period"
    assert errors == []
