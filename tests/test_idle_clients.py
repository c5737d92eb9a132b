"""Idle clients against `wa-analytics serve` on its own, without the proxy (test_proxy.py has
the stack with it): the default workers answer every probe within a second."""

import time

import pytest
from idle_clients import IdleClients, probe

from wa_analytics.core.processes import free_port, spawn_cli, stop_all, wait_ready

HOST = "127.0.0.1"


@pytest.fixture
def service(servers, redis_conn, monkeypatch):
    """`wa-analytics serve` with its defaults (2 x cores + 1 workers): its port."""
    monkeypatch.delenv("GUNICORN_CMD_ARGS", raising=False)
    port = free_port()
    process = spawn_cli(["serve", "--port", str(port)])
    try:
        wait_ready(f"http://{HOST}:{port}", process)
        yield port
    finally:
        stop_all([process])


def test_200_idle_clients_delay_no_answer_past_a_second(service):
    """200 connections that never send a byte, each reopened as soon as the service closes it
    (a silent connection is closed after about 5 s): over 12 s, two rounds of them, every
    /healthz and every signed webhook answers within a second. Sync workers failed this: five
    idle connections held all five for gunicorn's 30 s timeout."""
    with IdleClients(HOST, service, count=200) as idle:
        time.sleep(0.5)  # every idle connection made, before the clock starts
        probes = probe(HOST, service, duration=12, timeout=3)
    for name in probes.times:
        assert probes.slowest(name) < 1.0, probes.summary()
    assert probes.statuses == {"GET /healthz": {200}, "POST /webhooks/whatsapp": {200}}
    assert idle.reopened >= 200, "the service should close silent connections, then see more"
