"""Long-running processes (workers, the transform) outlive their dependencies: they retry with
backoff while Redis or PostgreSQL is unreachable, and say so once when the outage starts and
once when it ends, however many retries it takes.

One ``Outage`` per dependency and process (``REDIS``, ``POSTGRES``), shared by its threads, so
that the worker's loop, its watchdog and its drain jobs report one outage once between them.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

log = logging.getLogger(__name__)

# The longest wait between two attempts to reach a dependency that is down.
MAX_BACKOFF_SECONDS = 30.0

T = TypeVar("T")


class Outage:
    """The state of one dependency as this process sees it: reachable, or down since when."""

    def __init__(self, dependency: str, meanwhile: str = "retrying with backoff"):
        self.dependency = dependency
        self.meanwhile = meanwhile  # what the process does until it answers
        self.since: float | None = None  # time.monotonic() of the first failure
        self._lock = threading.Lock()

    @property
    def ongoing(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException | str) -> bool:
        """One failed attempt to reach the dependency: the first of an outage logs a WARNING,
        the rest only at DEBUG. True if this one started the outage."""
        with self._lock:
            started = self.since is None
            if started:
                self.since = time.monotonic()
        if started:
            log.warning("%s unreachable; %s (%s)", self.dependency, self.meanwhile, describe(error))
        else:
            log.debug("%s still unreachable (%s)", self.dependency, describe(error))
        return started

    def ended(self) -> bool:
        """The dependency answered: logs the end of an outage (and how long it lasted) once.
        True if an outage ended here."""
        if self.since is None:  # the usual case: no lock on a hot path
            return False
        with self._lock:
            if self.since is None:
                return False
            seconds, self.since = time.monotonic() - self.since, None
        log.info("%s reachable again after %.1f s", self.dependency, seconds)
        return True


REDIS = Outage("redis")
POSTGRES = Outage("postgresql")


def describe(error: BaseException | str) -> str:
    """An error in one line: its class and the first line of its message (no secrets: drivers
    name the host and port, never the password)."""
    if isinstance(error, str):
        return error
    message = str(error).strip().splitlines()
    return f"{type(error).__name__}: {message[0]}" if message else type(error).__name__


def backoff(attempt: int, base: float = 0.5, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """Seconds to wait before retry number ``attempt`` (0 first): doubling from ``base`` up to
    ``cap``, the upper half random, so that processes that lost a server together do not all
    come back to it in the same instant."""
    ceiling = min(cap, base * 2 ** min(attempt, 32))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def retry(
    action: Callable[[], T],
    outage: Outage,
    errors: tuple[type[BaseException], ...],
    stop: threading.Event | None = None,
    cap: float = MAX_BACKOFF_SECONDS,
) -> T | None:
    """``action()`` until it does not raise one of ``errors``, waiting with ``backoff`` between
    attempts and reporting them to ``outage``; its result, or None once ``stop`` is set."""
    attempt = 0
    while True:
        try:
            result = action()
        except errors as error:
            outage.failed(error)
            delay = backoff(attempt, cap=cap)
            attempt += 1
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                return None
            continue
        outage.ended()
        return result
