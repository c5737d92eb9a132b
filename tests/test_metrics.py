"""Health in Prometheus: the services' and the worker's /metrics, and the alert rules."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
import yaml
from helpers import (
    TEST_SECRETS,
    cloud_api_delivery,
    run_worker,
    signed_post,
    status,
    text_message,
)
from prometheus_client.parser import text_string_to_metric_families

from wa_analytics.core import signing
from wa_analytics.core.queueing import Envelope, delivery_id_for, push, schedule_drain

ALERTS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "alerts.yml"


def _samples(text: str) -> dict[tuple, float]:
    """{(name, ((label, value), ...)): value} of a scrape."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _delivery(n: int) -> dict:
    return cloud_api_delivery(
        messages=[text_message(f"wamid.metrics{n}", "447400900123", 1700000000 + n)]
    )


def _queue_old_delivery(redis_conn, settings, age_seconds: float) -> None:
    body = orjson.dumps(_delivery(999))
    envelope = Envelope(
        delivery_id_for("whatsapp", body), "whatsapp", time.time() - age_seconds, body
    )
    if push(redis_conn, envelope, settings.batch_size):  # took the drain flag: schedule it
        schedule_drain(redis_conn, settings.queue_name)


def test_ingest_metrics_count_deliveries_and_read_the_queue(client, redis_conn, settings):
    before = _samples(client.get("/metrics").get_data(as_text=True))
    _queue_old_delivery(redis_conn, settings, 400)  # the oldest: queued first
    assert signed_post(client, "/webhooks/whatsapp", _delivery(1)).status_code == 200
    assert (
        signed_post(client, "/webhooks/whatsapp", _delivery(2), secret="wrong").status_code == 401
    )

    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    after = _samples(response.get_data(as_text=True))
    for outcome in ("accepted", "bad_signature"):
        key = dict(source="whatsapp", outcome=outcome)
        assert (
            _value(after, "wa_deliveries_total", **key)
            == _value(before, "wa_deliveries_total", **key) + 1
        )
    count = ("wa_request_duration_seconds_count", (("service", "ingest"),))
    assert after[count] == before.get(count, 0) + 2
    assert _value(after, "wa_queue_waiting_deliveries") == 2
    assert 400 <= _value(after, "wa_queue_oldest_delivery_age_seconds") < 460
    assert _value(after, "wa_queue_up") == 1

    run_worker(redis_conn, settings)
    drained = _samples(client.get("/metrics").get_data(as_text=True))
    assert _value(drained, "wa_queue_waiting_deliveries") == 0
    assert _value(drained, "wa_queue_oldest_delivery_age_seconds") == 0


def test_worker_counts_what_it_stores(client, redis_conn, settings):
    from prometheus_client import REGISTRY

    def stored():
        return REGISTRY.get_sample_value("wa_events_stored_total") or 0.0

    before = stored()
    assert signed_post(client, "/webhooks/whatsapp", _delivery(3)).status_code == 200
    run_worker(redis_conn, settings)
    assert stored() == before + 1


def test_dashboard_metrics(settings):
    from dashboard.app import create_app

    client = create_app(settings).test_client()
    client.get("/healthz")
    samples = _samples(client.get("/metrics").get_data(as_text=True))
    assert samples[("wa_request_duration_seconds_count", (("service", "dashboard"),))] >= 1


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: `make promtool` installs Debian's prometheus package"
    return found


def test_alert_rules_are_valid():
    result = subprocess.run(
        [_promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _post(base: str, payload: dict) -> int:
    body = orjson.dumps(payload)
    request = urllib.request.Request(
        base + "/webhooks/whatsapp",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signing.sign(body, TEST_SECRETS["WHATSAPP_APP_SECRET"]),
        },
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def _alert_test(tmp_path: Path, age: float, firing: bool) -> subprocess.CompletedProcess:
    """``promtool test rules`` on a series that starts at the scraped ``age`` and grows a
    minute a minute, as it does while no worker drains."""
    rule = next(
        rule
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
        if rule["alert"] == "DeliveriesWaitTooLong"
    )
    labels = {"job": "wa_ingest"}
    expected = [
        {"exp_labels": {**labels, **rule["labels"]}, "exp_annotations": rule["annotations"]}
    ]
    start, step = (f"{age:.0f}", "+60x10") if firing else ("0", "x10")
    test = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": 'wa_queue_oldest_delivery_age_seconds{job="wa_ingest",instance="a"}',
                        "values": start + step,
                    }
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "DeliveriesWaitTooLong",
                        "exp_alerts": expected if firing else [],
                    }
                ],
            }
        ],
    }
    path = tmp_path / f"queue-age-{'firing' if firing else 'quiet'}.yml"
    path.write_text(yaml.safe_dump(test))
    return subprocess.run([_promtool(), "test", "rules", str(path)], capture_output=True, text=True)


@pytest.mark.slow
def test_queue_age_alert_from_a_running_service(servers, db, redis_conn, settings, tmp_path):
    """Workers stopped, deliveries queued: the real service's scrape makes the alert fire; once
    the queue is drained, it does not."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    service = subprocess.Popen(
        [sys.executable, "-m", "wa_analytics.cli", "--log-level", "WARNING",
         "serve", "--port", str(port), "--workers", "2"],
        env=env,
    )  # fmt: skip
    try:
        _get(base + "/readyz")
        _queue_old_delivery(redis_conn, settings, 360)  # queued 6 minutes ago, no worker since
        for n in range(20):
            assert _post(base, _delivery(n)) == 200
        scraped = _samples(_get(base + "/metrics"))
        # Both gunicorn workers' counts are in the one scrape (multiprocess mode).
        assert _value(scraped, "wa_deliveries_total", source="whatsapp", outcome="accepted") == 20
        assert _value(scraped, "wa_queue_waiting_deliveries") == 21
        age = _value(scraped, "wa_queue_oldest_delivery_age_seconds")
        assert age >= 360
        result = _alert_test(tmp_path, age, firing=True)
        assert result.returncode == 0, result.stdout + result.stderr

        run_worker(redis_conn, settings)
        drained = _samples(_get(base + "/metrics"))
        assert _value(drained, "wa_queue_waiting_deliveries") == 0
        age = _value(drained, "wa_queue_oldest_delivery_age_seconds")
        assert age == 0
        result = _alert_test(tmp_path, age, firing=False)
        assert result.returncode == 0, result.stdout + result.stderr
        # The alert test would catch a rule that never fires: it fails when expected to fire.
        assert _alert_test(tmp_path, age, firing=True).returncode != 0
    finally:
        service.terminate()
        service.wait(timeout=30)


@pytest.mark.slow
def test_worker_serves_its_metrics(client, redis_conn, settings):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "WA_DRAIN_LINGER_SECONDS"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "wa_analytics.cli", "--log-level", "WARNING",
         "worker", "--metrics-port", str(port)],
        env=env,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        assert _value(_samples(_get(url)), "wa_worker_up") == 1
        assert signed_post(client, "/webhooks/whatsapp", _delivery(4)).status_code == 200
        unknown_status = cloud_api_delivery(
            statuses=[status("wamid.metrics4", "447400900123", 1700000009, "exploded")]
        )
        assert signed_post(client, "/webhooks/whatsapp", unknown_status).status_code == 200
        deadline = time.monotonic() + 30
        quarantined = {"reason": "unknown_status"}
        while (
            _value(samples := _samples(_get(url)), "wa_events_stored_total") < 1
            or _value(samples, "wa_quarantined_items_total", **quarantined) < 1
        ):
            assert time.monotonic() < deadline, "the worker stored nothing"
            time.sleep(0.2)
        assert _value(samples, "wa_events_stored_total") == 1
        assert _value(samples, "wa_quarantined_items_total", **quarantined) == 1
        assert _value(samples, "wa_drain_failures_total") == 0
        assert _value(samples, "wa_queue_waiting_deliveries") == 0
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def _json_lines(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def test_json_logs(servers):
    code = (
        "import logging; from wa_analytics.core.logs import configure_logging; configure_logging();"
        "logging.getLogger('wa.test').warning('queued %d', 3)"
    )
    env = {**os.environ, "WA_LOG_FORMAT": "json"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    [line] = _json_lines(out)
    assert line["level"] == "WARNING" and line["logger"] == "wa.test"
    assert line["message"] == "queued 3" and line["time"].endswith("+00:00")


@pytest.mark.slow
def test_json_logs_of_the_service_and_gunicorn(servers):
    """Every line the service and gunicorn write is JSON with WA_LOG_FORMAT=json."""
    port = _free_port()
    env = {**os.environ, "WA_LOG_FORMAT": "json"}
    service = subprocess.Popen(
        [sys.executable, "-m", "wa_analytics.cli", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _get(f"http://127.0.0.1:{port}/readyz")
    finally:
        service.terminate()
        out, err = service.communicate(timeout=30)
    lines = _json_lines(out + err)
    assert any(line["logger"] == "gunicorn.error" for line in lines), lines
    assert all(line["logger"] != "gunicorn.access" for line in lines), "access log turned on"


def test_a_failed_drain_is_counted(monkeypatch):
    from prometheus_client import REGISTRY

    from worker import jobs

    def fail():
        raise RuntimeError("postgres is down")

    before = REGISTRY.get_sample_value("wa_drain_failures_total") or 0.0
    monkeypatch.setattr(jobs, "_drain_deliveries", fail)
    with pytest.raises(RuntimeError):
        jobs.drain_deliveries()
    assert REGISTRY.get_sample_value("wa_drain_failures_total") == before + 1


def test_each_start_gets_an_empty_metrics_directory(tmp_path, monkeypatch):
    from wa_analytics.core.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    first = prepare_multiprocess_dir(tmp_path, "ingest-8000")
    (first / "counter_123.db").write_bytes(b"left by the last run")
    again = prepare_multiprocess_dir(tmp_path, "ingest-8000")
    assert again == first and not any(again.iterdir())
    assert os.environ[MULTIPROC_ENV] == str(again)
    other = prepare_multiprocess_dir(tmp_path, "dashboard-8050")
    assert other != first and os.environ[MULTIPROC_ENV] == str(other)


@pytest.mark.slow
def test_dashboard_metrics_add_up_its_gunicorn_workers(servers):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    dashboard = subprocess.Popen(
        [sys.executable, "-m", "wa_analytics.cli", "--log-level", "WARNING",
         "dashboard", "--port", str(port), "--workers", "2"],
        env=env,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        _get(base + "/healthz")
        for _ in range(30):
            _get(base + "/healthz")
        samples = _samples(_get(base + "/metrics"))
        assert _value(samples, "wa_request_duration_seconds_count", service="dashboard") == 31
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def test_a_failure_to_count_never_fails_a_delivery(client, monkeypatch):
    from wa_analytics.core import metrics

    def broken(source, status, seconds):
        raise OSError("metrics directory removed")

    monkeypatch.setattr(metrics.metrics(), "delivery", broken)
    assert signed_post(client, "/webhooks/whatsapp", _delivery(5)).status_code == 200


def test_threads_racing_to_the_first_delivery_build_the_series_once(tmp_path):
    """A gunicorn thread pool's first requests arrive together: every thread must get the same
    series, none a DuplicateTimeseries from registering them twice."""
    code = """
import sys, threading
from wa_analytics.core import metrics
start = threading.Barrier(32)
seen, failed = [], []
def first():
    start.wait()
    try:
        seen.append(metrics.metrics())
    except Exception as exc:
        failed.append(repr(exc))
threads = [threading.Thread(target=first) for _ in range(32)]
[t.start() for t in threads]
[t.join() for t in threads]
assert not failed, failed
assert len({id(m) for m in seen}) == 1
"""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(3):  # a race: each round is a fresh process
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
