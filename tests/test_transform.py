"""`wa-analytics transform`: the marts refresh on their own on a schedule, one dbt build at a time
across every process (the build lock), and a failed build is logged and retried."""

import os
import subprocess
import sys
import threading
import time
import urllib.request

import psycopg
import pytest
import yaml
from helpers import cloud_api_delivery, run_worker, signed_post, text_message

from wa_analytics.core.dbt import BUILD_LOCK_KEY, PROFILES_DIR, PROJECT_ROOT, run_dbt
from wa_analytics.core.processes import free_port

CONTACT = "447911000555"


def test_the_lock_key_is_the_same_for_python_and_dbt():
    project = yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text())
    assert project["vars"]["build_lock_key"] == BUILD_LOCK_KEY


def _hold_lock(database_url: str) -> psycopg.Connection:
    conn = psycopg.connect(database_url, autocommit=True)
    conn.execute("select pg_advisory_lock(%s)", (BUILD_LOCK_KEY,))
    return conn


@pytest.mark.slow
def test_a_build_waits_while_another_holds_the_lock(servers, db):
    holder = _hold_lock(servers["database_url"])
    results = []
    build = threading.Thread(
        target=lambda: results.append(
            run_dbt(["build"], check=False, capture_output=True, text=True)
        )
    )
    try:
        build.start()
        build.join(timeout=8)
        assert build.is_alive(), "the build did not wait for the lock"
    finally:
        holder.close()
    build.join(timeout=300)
    assert not build.is_alive()
    assert results[0].returncode == 0, results[0].stdout[-4000:]


@pytest.mark.slow
def test_dbt_started_directly_does_not_build_beside_another(servers, db):
    """dbt alone cannot hold the lock for its run: its on-run-start hook refuses to build."""
    env = {k: v for k, v in os.environ.items() if k != "WA_BUILD_LOCK_SESSION"}
    result = subprocess.run(
        [sys.executable, "-c", "from dbt.cli.main import cli; cli()", "build",
         "--profiles-dir", str(PROFILES_DIR)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode != 0
    assert "does not hold the build lock" in result.stdout


def _wait_for(predicate, what: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_transform_keeps_the_marts_fresh(servers, db, client, redis_conn, settings, tmp_path):
    started = time.monotonic()
    log_path = tmp_path / "transform.log"
    env = {**os.environ, "WA_TRANSFORM_INTERVAL": "2"}
    metrics_port = free_port()
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "wa_analytics.cli", "transform",
             "--metrics-port", str(metrics_port)],
            env=env, stdout=log_file, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def log_text() -> str:
        return log_path.read_text()

    def count(phrase: str) -> int:
        return log_text().count(phrase)

    try:
        _wait_for(lambda: count("dbt build passed") >= 1, "the first build")
        # The first round builds the whole project; the next ones the selector's tables only.
        assert "(the whole project)" in log_text()

        # New events reach the marts with no build started by hand.
        now = int(time.time()) - 60
        delivery = cloud_api_delivery(messages=[text_message("wamid.TRANSFORM1", CONTACT, now)])
        assert signed_post(client, "/webhooks/whatsapp", delivery).status_code == 200
        run_worker(redis_conn, settings)
        contact = f"+{CONTACT}"
        _wait_for(
            lambda: (
                db.execute(
                    "select count(*) from marts.business_contacts where contact_id = %s", (contact,)
                ).fetchone()[0]
                == 1
            ),
            "the new contact in marts.business_contacts",
        )

        # While another build holds the lock, rounds skip; once it is released, builds resume.
        holder = _hold_lock(servers["database_url"])
        try:
            _wait_for(lambda: count("another dbt build is running") >= 1, "a skipped round")
            passed = count("dbt build passed")
            time.sleep(5)
            assert count("dbt build passed") == passed
        finally:
            holder.close()
        _wait_for(lambda: count("dbt build passed") > passed, "a build after the lock is free")
        assert count("(selector scheduled_round)") >= 1

        # A failing build is logged with dbt's reason and the schedule goes on.
        db.execute("alter table raw.events rename to events_away")
        try:
            _wait_for(lambda: count("dbt build failed") >= 1, "a failed build")
        finally:
            db.execute("alter table raw.events_away rename to events")
        failed_at = log_text().index("dbt build failed")
        assert 'relation "raw.events" does not exist' in log_text()[failed_at:].splitlines()[0]
        _wait_for(lambda: "dbt build passed" in log_text()[failed_at:], "a build after the failure")
        # After a failure the round is whole again (views dropped by a partial build come back).
        after = log_text()[failed_at:]
        assert "(the whole project)" in after[after.index("dbt build passed") :].splitlines()[0]
        assert process.poll() is None
        # dbt records the transform's builds too, for the dashboard's as_of and built_at.
        recorded = db.execute(
            "select count(*) from audit.dbt_builds"
            " where has_passed and started_at > now() - make_interval(secs => %s)",
            (time.monotonic() - started,),
        ).fetchone()[0]
        assert recorded >= 3  # the first, one after the lock was free, one after the failure

        # Prometheus sees the builds by outcome and how fresh the marts are.
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            series = {
                line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
                for line in response.read().decode().splitlines()
                if line and not line.startswith("#")
            }
        for outcome in ("passed", "failed", "skipped"):
            assert series[f'wa_dbt_builds_total{{outcome="{outcome}"}}'] >= 1, outcome
        newest = db.execute("select extract(epoch from max(loaded_at)) from raw.events").fetchone()
        assert series["wa_marts_as_of_timestamp_seconds"] == pytest.approx(float(newest[0]))
        lag = time.time() - float(newest[0])
        assert lag - 10 < series["wa_marts_lag_seconds"] <= lag
        assert time.time() - series["wa_marts_built_timestamp_seconds"] < 60
        assert series["wa_dbt_build_duration_seconds_count"] >= 3
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert process.returncode == 0, log_text()[-3000:]
