"""`wa-analytics demo`, the README's first command, end to end on a small run: it stores the
traffic, builds the marts and ends with the address of a dashboard that answers."""

import re
import subprocess
import sys
import urllib.request

import orjson
import pytest

from wa_analytics.core.config import load_settings
from wa_analytics.core.processes import free_port, stop_detached


@pytest.mark.slow
def test_the_demo_ends_with_a_working_dashboard(servers, db, redis_conn):
    port = free_port()
    run = subprocess.run(
        [sys.executable, "-m", "wa_analytics.cli", "--log-level", "WARNING", "demo",
         "--contacts", "30", "--days", "2", "--dashboard-port", str(port)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    try:
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        url = re.search(r"Dashboard:\s+(http://\S+)/", run.stdout).group(1)
        assert url == f"http://127.0.0.1:{port}"
        assert run.stdout.rstrip().splitlines()[-1] == f"Dashboard: {url}/"
        # It prints what WhatsApp cost, the best and the worst campaign and the top ad.
        assert len(_printed_rows(run.stdout, "What WhatsApp cost")) >= 2
        best, worst = _printed_rows(run.stdout, "Best and worst campaign")
        assert best.startswith("best") and worst.startswith("worst")
        assert len(_printed_rows(run.stdout, "Top click-to-WhatsApp ad")) == 1
        with urllib.request.urlopen(url + "/", timeout=10) as page:
            assert b"WhatsApp analytics" in page.read()
        with urllib.request.urlopen(url + "/api/v1/metrics/summary", timeout=10) as answer:
            summary = orjson.loads(answer.read())
        figures = summary["figures"]
        assert figures["responses"]["value"] > 0 and figures["new_contacts"]["value"] > 0
        # The demo's build is on record: the figures say how fresh they are, and are fresh.
        assert summary["built_at"] is not None and summary["as_of"] is not None
        with urllib.request.urlopen(url + "/readyz", timeout=10) as ready:
            assert orjson.loads(ready.read())["status"] == "ready"
    finally:
        # The demo leaves the dashboard and the transform (the marts refreshing) running.
        transform_ran = stop_detached("transform", load_settings().data_dir)
        dashboard_ran = stop_detached("dashboard", load_settings().data_dir)
    # After the finally, not in it: a failure above is reported as itself, not as this one.
    assert dashboard_ran and transform_ran


def _printed_rows(stdout: str, title: str) -> list[str]:
    """The rows of the table the demo printed under ``title`` (report.table's layout: the title,
    the header, a rule, the rows, then a blank line)."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    rows = []
    for line in lines[start + 3 :]:
        if not line.strip():
            break
        rows.append(line)
    return rows
