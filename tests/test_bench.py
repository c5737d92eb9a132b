"""The bench is not a test: this only proves its smoke run completes and prints its table, so
that `wa-analytics bench` keeps working. Its figures are not judged here."""

import subprocess
import sys

import pytest

FIGURES = [
    "ingest: signed deliveries accepted",
    "ingest: p99 latency",
    "worker: events committed",
    "end to end: 200 -> row visible",
    "dbt: full build",
    "dbt: incremental build after +1%",
    "api: summary, 28 days, p95",
    "api: contact-growth, 366 days, one number, p95",
    "freshness: 200 -> counted by the API",
    "freshness: transform CPU",
    "freshness: incremental build",
    "memory: ingest service RSS drift",
    "memory: worker 1 RSS drift",
    "restarts: acknowledged events lost",
    "restarts: events stored, not acknowledged",
]


@pytest.mark.slow
def test_bench_smoke_run_prints_every_figure(servers):
    run = subprocess.run(
        [sys.executable, "-m", "wa_analytics.cli", "--log-level", "WARNING", "bench", "--smoke"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    table = run.stdout[run.stdout.index("Benchmark") :]
    for figure in FIGURES:
        assert figure in table
    assert table.count("pass") + table.count("FAIL") >= 8
