"""``wa-analytics bench``: prepare, measure each stage with its baseline, print the table."""

import os
import platform
import time

from wa_analytics.bench import environment, restarts, serving, stages
from wa_analytics.bench.stages import Row
from wa_analytics.demo.report import table

# Latency before the bursts: right after the worker's 300,000-event burst, Postgres and Redis
# take about half a minute to settle, and end to end measured then is not the steady state.
STAGES = ("ingest", "end-to-end", "worker", "dbt", "api", "freshness", "memory", "restarts")
SMOKE = {"duration": 1.0, "events": 2000, "dbt_events": 5000, "soak": 4.0, "freshness": 3.0}


def run_bench(args) -> int:
    if args.smoke:
        for name, value in SMOKE.items():
            setattr(args, name, value)
        # A killed worker's claims return after the lease: seconds, not the default 90 s.
        os.environ.setdefault("WA_LEASE_SECONDS", "3")
        # The transform's builds of a tiny database take seconds: a round every few of them.
        os.environ.setdefault("WA_TRANSFORM_INTERVAL", "3")
    wanted = STAGES if args.only == "all" else tuple(args.only.split(","))
    unknown = set(wanted) - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stage(s) {', '.join(sorted(unknown))}; known: {STAGES}")
    print(f"wa-analytics bench on {machine()}", flush=True)
    settings = environment.prepare()
    seed = int(time.time())
    rows: list[Row] = []
    capacity = args.rate * 2 if args.rate else None
    # The api and freshness stages share one database of dbt_events events and its marts.
    marts = serving.MartsDatabase(settings, args.dbt_events)
    started = time.monotonic()
    for number, stage in enumerate(wanted, 1):
        print(f"\n[{number}/{len(wanted)}] {stage}", flush=True)
        if stage not in ("api", "freshness"):
            marts.built = False  # every other stage empties the bench's tables
        if stage == "ingest":
            ingest_rows, capacity = stages.measure_ingest(settings, args.duration, seed)
            rows += ingest_rows
        elif stage == "worker":
            rows += stages.measure_worker(settings, args.events, seed)
        elif stage == "end-to-end":
            rate = (capacity or 1000) / 2
            rows += stages.measure_end_to_end(settings, rate, args.duration * 3, seed + 7)
        elif stage == "dbt":
            rows += stages.measure_dbt(settings, args.dbt_events)
        elif stage == "api":
            rows += serving.measure_api(marts, 3 if args.smoke else serving.API_REQUESTS)
        elif stage == "freshness":
            rate = (capacity or 1000) / 2
            rows += serving.measure_freshness(marts, rate, args.freshness, seed + 13)
        elif stage == "memory":
            rows += stages.measure_memory(settings, (capacity or 1000) / 2, args.soak, seed + 9)
        elif stage == "restarts":
            rate = (capacity or 1000) / 2
            rows += restarts.measure_restarts(settings, rate, args.soak, seed + 11)
    print(report(rows))
    print(f"\n{len(rows)} figures in {time.monotonic() - started:.0f}s")
    return 0


def machine() -> str:
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, " + (
        f"Python {platform.python_version()}"
    )


def report(rows: list[Row]) -> str:
    columns = ["figure", "value", "baseline", "ratio", "target", "result"]
    lines = [
        (
            row.figure,
            f"{row.value:,.1f} {row.unit}",
            f"{row.baseline:,.1f} ({row.baseline_name})" if row.baseline else "-",
            f"{row.ratio:.2f}" if row.ratio is not None else "-",
            row.target or "-",
            {True: "pass", False: "FAIL", None: "-"}[row.passed],
        )
        for row in rows
    ]
    return table("Benchmark", columns, lines)
