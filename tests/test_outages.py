"""An outage of a dependency is logged once as it starts and once as it ends, whatever the
number of retries (``wa_analytics.core.outages``), and retries back off up to a cap, with jitter."""

import logging
import threading

import pytest

from wa_analytics.core.outages import MAX_BACKOFF_SECONDS, Outage, backoff, retry


def test_an_outage_is_logged_once_as_it_starts_and_once_as_it_ends(caplog):
    outage = Outage("redis")
    caplog.set_level(logging.DEBUG, logger="wa_analytics.core.outages")
    assert not outage.ended()  # nothing to end
    assert outage.failed(ConnectionError("Error 111 connecting to 127.0.0.1:6379.\nmore"))
    for _ in range(20):
        assert not outage.failed(ConnectionError("Error 111"))
    assert outage.ended()
    assert not outage.ended()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert warnings == [
        "redis unreachable; retrying with backoff "
        "(ConnectionError: Error 111 connecting to 127.0.0.1:6379.)"
    ]
    assert len(infos) == 1 and infos[0].startswith("redis reachable again after ")


def test_threads_failing_together_start_one_outage():
    outage = Outage("postgresql")
    started = []
    threads = [
        threading.Thread(target=lambda: started.append(outage.failed("down"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert started.count(True) == 1


@pytest.mark.parametrize("attempt", [0, 1, 3, 6, 10, 100, 10_000])
def test_backoff_doubles_up_to_its_cap_with_jitter(attempt):
    ceiling = min(MAX_BACKOFF_SECONDS, 0.5 * 2 ** min(attempt, 32))
    delays = {backoff(attempt) for _ in range(50)}
    assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert len(delays) > 1  # not all in the same instant


def test_retry_retries_only_the_named_errors_and_stops_on_request():
    outage, calls = Outage("redis"), []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "up"

    assert retry(flaky, outage, (ConnectionError,), cap=0.01) == "up"
    assert len(calls) == 3 and not outage.ongoing
    with pytest.raises(ValueError):
        retry(lambda: int("x"), outage, (ConnectionError,))
    stop = threading.Event()
    stop.set()
    assert retry(lambda: 1 / 0, outage, (ZeroDivisionError,), stop) is None
    assert outage.ongoing
