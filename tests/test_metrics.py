"""Health in Prometheus: the services' and the worker's /metrics, and the alert rules."""

import time
from pathlib import Path

import orjson
from helpers import cloud_api_delivery, run_worker, signed_post, text_message
from prometheus_client.parser import text_string_to_metric_families

from wa_analytics.queueing import Envelope, delivery_id_for, push, schedule_drain

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
