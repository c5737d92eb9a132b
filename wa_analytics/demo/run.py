"""``wa-analytics demo``: the whole product end to end on generated traffic.

Embedded (or configured) servers, the real ingest service under gunicorn, real RQ workers,
signed HTTP deliveries, ``dbt build``, then the marts printed as tables.
"""

import os
import secrets
import sys
import time

import psycopg
import redis

from wa_analytics.core.database import migrate
from wa_analytics.core.dbt import run_dbt
from wa_analytics.core.processes import (
    free_port,
    spawn_cli,
    start_detached,
    stop_all,
    stop_detached,
    wait_ready,
)
from wa_analytics.core.queueing import pending
from wa_analytics.core.runtime import ensure_services
from wa_analytics.demo.report import table
from wa_analytics.demo.sender import send_all
from wa_analytics.demo.traffic import generate_traffic

STEPS = 7
# (title, query) for each table the demo prints; every figure comes from a mart.
REPORTS = [
    (
        "Response times per day (seconds from a contact's first waiting message to the reply)",
        """
        select activity_date, responses, median_response_seconds, p90_response_seconds,
            first_responses, median_first_response_seconds
        from marts.response_times_daily order by activity_date
        """,
    ),
    (
        "Contact growth per day",
        """
        select activity_date, new_contacts, cumulative_contacts, growth_rate
        from marts.contact_growth_daily order by activity_date
        """,
    ),
    (
        "Peak hours (inbound messages by ISO weekday and hour, busiest first)",
        """
        select day_of_week, hour_of_day, sum(messages_received)::bigint as messages_received
        from marts.hourly_traffic group by 1, 2 order by 3 desc, 1, 2 limit 10
        """,
    ),
    (
        "Delivery per day (outbound messages by the day they were sent)",
        """
        select activity_date, messages_sent, messages_delivered, messages_read, messages_failed,
            delivery_rate, read_rate
        from marts.delivery_daily order by activity_date
        """,
    ),
    (
        "Failures by error code",
        """
        select error_code, max(error_title) as error_title, sum(failures)::bigint as failures
        from marts.delivery_failures_daily group by error_code order by failures desc
        """,
    ),
    (
        "Agents over the whole period (unattributed: replies known only from Meta's statuses)",
        """
        select coalesce(agent_id, 'unattributed') as agent_id, count(*) as responses,
            count(*) filter (where is_first_response) as first_responses,
            percentile_cont(0.5) within group (order by response_seconds)
                as median_response_seconds,
            percentile_cont(0.9) within group (order by response_seconds)
                as p90_response_seconds
        from marts.responses group by 1 order by responses desc
        """,
    ),
    (
        "Conversations (24-hour service windows)",
        """
        select opened_date, count(*) as conversations,
            count(*) filter (where is_answered) as answered,
            count(*) filter (where is_expired_unanswered) as expired_unanswered,
            percentile_cont(0.5) within group (order by first_response_seconds)
                as median_first_response_seconds
        from marts.conversations group by opened_date order by opened_date
        """,
    ),
    (
        "SLA per day (targets: seed sla_targets, in opening hours; open waits as of the build)",
        """
        select activity_date, sum(waits)::bigint as waits,
            sum(answered_within_target)::bigint as within_target,
            sum(answered_late)::bigint as late, sum(open_past_target)::bigint as open_past_target,
            sum(answered_within_target)::float
                / nullif(sum(answered_within_target + answered_late + open_past_target), 0)
                as attainment_rate
        from marts.sla_attainment_daily group by activity_date order by activity_date
        """,
    ),
    (
        "What WhatsApp cost (estimate at the example rate card, seed message_rates)",
        """
        select pricing_category, pricing_type, currency,
            sum(messages_charged)::bigint as charged, sum(messages_free)::bigint as free,
            sum(estimated_cost) as estimated_cost, sum(estimated_savings) as saved_by_free_windows
        from marts.messaging_costs_daily group by 1, 2, 3 order by estimated_cost desc nulls last
        """,
    ),
    (
        "Best and worst campaign (by reply rate, then read rate)",
        """
        (select 'best' as rank, campaign_name, messages_sent, delivery_rate, read_rate,
            reply_rate, click_rate, opt_outs
        from marts.campaign_funnel order by reply_rate desc, read_rate desc nulls last limit 1)
        union all
        (select 'worst', campaign_name, messages_sent, delivery_rate, read_rate, reply_rate,
            click_rate, opt_outs
        from marts.campaign_funnel order by reply_rate asc, read_rate asc nulls first limit 1)
        """,
    ),
    (
        "Top click-to-WhatsApp ad (by conversations)",
        """
        select source_id, max(headline) as headline, sum(conversations)::bigint as conversations,
            sum(new_contacts)::bigint as new_contacts,
            sum(conversations_answered)::bigint as answered,
            sum(free_entry_point_messages)::bigint as free_entry_point_messages
        from marts.ad_performance_daily group by source_id
        order by conversations desc, source_id limit 1
        """,
    ),
    (
        "Contacts seen under more than one identifier (number changes, business-scoped ids)",
        """
        select count(distinct contact_id) as contacts, count(*) as identifiers
        from intermediate.int_contact_identities
        """,
    ),
]


def step(number: int, text: str) -> None:
    print(f"\n[{number}/{STEPS}] {text}", flush=True)


def run_demo(args) -> int:
    step(1, "Starting services (embedded PostgreSQL and Redis unless DATABASE_URL/REDIS_URL)")
    settings = ensure_services()
    migrate(settings.database_url)
    # A demo run signs with secrets of its own unless the operator configured some.
    for name in ("WHATSAPP_APP_SECRET", "CRM_WEBHOOK_SECRET", "WHATSAPP_VERIFY_TOKEN"):
        os.environ.setdefault(name, secrets.token_hex(16))
    print(f"  PostgreSQL: {_safe(settings.database_url)}\n  Redis:      {settings.redis_url}")

    port = args.port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    step(2, f"Starting the ingest service (gunicorn) on {base_url} and two RQ workers")
    processes = [
        spawn_cli(["serve", "--host", "127.0.0.1", "--port", str(port)]),
        spawn_cli(["worker"]),
        spawn_cli(["worker"]),
    ]
    try:
        wait_ready(base_url, processes[0])
        step(3, f"Generating {args.days} days of traffic from {args.contacts} contacts")
        traffic = generate_traffic(seed=args.seed, contacts=args.contacts, days=args.days)
        print("  " + ", ".join(f"{k}: {v}" for k, v in traffic.counts().items()))

        step(4, f"Sending {len(traffic.deliveries)} signed webhooks over HTTP")
        started = time.monotonic()
        report = send_all(
            base_url,
            traffic.deliveries,
            whatsapp_secret=os.environ["WHATSAPP_APP_SECRET"],
            crm_secret=os.environ["CRM_WEBHOOK_SECRET"],
            progress=_progress,
        )
        elapsed = time.monotonic() - started
        answers = ", ".join(f"{n} x {status}" for status, n in report.status_counts.items())
        print(f"\n  answers: {answers} in {elapsed:.1f}s ({report.retried} retries)")
        stored = _wait_until_stored(settings)
        print(
            f"  stored: {stored['deliveries']} distinct deliveries (retries are stored once),"
            f" {stored['events']} events, {stored['quarantine']} quarantined items"
        )
    finally:
        stop_all(processes)

    step(5, f"dbt build (reporting_timezone = {args.timezone})")
    build = run_dbt(
        ["build", "--vars", f"{{reporting_timezone: {args.timezone}}}", "--quiet"], check=False
    )
    if build.returncode != 0:
        print("dbt build failed; see the output above", file=sys.stderr)
        return build.returncode

    step(6, "The marts")
    print_marts(settings.database_url)

    step(7, "The dashboard, the metrics API and the marts' schedule")
    dashboard_url = start_dashboard(settings, args.dashboard_port)
    start_transform(settings, args.timezone)
    print(
        f"  Metrics API: {dashboard_url}/api/v1/metrics/summary"
        f" (OpenAPI: {dashboard_url}/api/v1/openapi.json)\n"
        f"  SLA breaches as CSV: {dashboard_url}/api/v1/export/sla_breaches.csv\n"
        "  `wa-analytics transform` rebuilds the marts every"
        f" {settings.transform_interval_seconds:g}s (WA_TRANSFORM_INTERVAL) as traffic arrives."
        "\n  They keep running in the background; `wa-analytics stop` stops them and the servers."
        "\n\nExplore further: `wa-analytics dbt <command>` runs dbt on the same database;"
        " `eval $(wa-analytics env)` exports its connection for psql or BI tools."
        f"\n\nDashboard: {dashboard_url}/"
    )
    return 0


def start_dashboard(settings, wanted_port: int) -> str:
    """``wa-analytics dashboard`` in the background (replacing an earlier demo's); its URL."""
    stop_detached("dashboard", settings.data_dir)
    port = free_port(wanted_port)
    process = start_detached(["dashboard", "--port", str(port)], "dashboard", settings.data_dir)
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, process, path="/healthz")
    return url


def start_transform(settings, timezone: str) -> None:
    """``wa-analytics transform`` in the background (replacing an earlier demo's)."""
    vars_ = f"{{reporting_timezone: {timezone}}}"
    start_detached(["transform", "--vars", vars_], "transform", settings.data_dir)


def print_marts(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        for title, query in REPORTS:
            cursor = conn.execute(query)
            columns = [column.name for column in cursor.description]
            print(table(title, columns, cursor.fetchall()))


def _wait_until_stored(settings, timeout: float = 300) -> dict:
    """Wait until the queue is empty and the workers have committed everything."""
    conn_redis = redis.Redis.from_url(settings.redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pending(conn_redis):
            break
        time.sleep(0.2)
    else:
        raise RuntimeError("the workers did not drain the queue in time")
    with psycopg.connect(settings.database_url) as conn:
        return {
            table_name: conn.execute(f"select count(*) from raw.{table_name}").fetchone()[0]
            for table_name in ("deliveries", "events", "quarantine")
        }


def _progress(done: int, total: int) -> None:
    """A counter that rewrites itself on a terminal and prints every quarter in a log."""
    if sys.stdout.isatty():
        if done == total or done % max(1, total // 50) == 0:
            print(f"\r  sent {done}/{total}", end="", flush=True)
    elif done == total or done % max(1, total // 4) == 0:
        print(f"  sent {done}/{total}", flush=True)


def _safe(url: str) -> str:
    """The URL without its password, for printing."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: PLC0415

    params = conninfo_to_dict(url)
    if params.get("password"):
        params["password"] = "***"
    return make_conninfo(**params)
