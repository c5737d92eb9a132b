"""The metrics API and the dashboard on demo traffic: every answer as the OpenAPI document says,
every figure equal to the daily marts dbt built, the business-number filter, and the page in a
real browser (headless Chromium) drawing the API's numbers."""

import csv
import io
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from helpers import build, cloud_api_delivery, status, store_deliveries, text_message
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from playwright.sync_api import sync_playwright
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from dashboard.api import load_openapi
from dashboard.app import create_app
from wa_analytics.core.config import load_settings
from wa_analytics.core.dbt import PROJECT_ROOT
from wa_analytics.core.processes import free_port, spawn_cli, stop_all, wait_ready
from wa_analytics.demo.traffic import Delivery, generate_traffic

OTHER_NUMBER = "200000000000001"
ENDPOINTS = [
    "summary", "response-times", "contact-growth", "peak-hours", "delivery", "agents", "sla"
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


@pytest.fixture(scope="module")
def marts(servers):
    """Demo traffic plus a second business number, stored as the worker stores it, then built."""
    deliveries = generate_traffic(seed=5, contacts=60, days=6).deliveries + other_number_traffic()
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
        # A day without data has no figure, and a gap in the line, not a point at 0.
        for series in drawn["data"]:
            assert [value is None for value in series] == quiet, chart
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
