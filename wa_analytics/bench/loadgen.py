"""An HTTP load generator light enough to share two cores with the server it measures.

Requests are prepared (signed) before the clock starts; each is sent on its own connection, as
gunicorn's sync workers close the connection after every response. Two kinds of run:

- closed loop: ``connections`` requests always in flight, as fast as the server answers (the
  capacity, like ``wrk -c``);
- open loop: requests start at a fixed rate whatever the server does, and each latency is
  counted from when its request was due, so a stalled server cannot hide its queue
  (no coordinated omission).

Both run in ``processes`` processes so that the generator itself is not held to one core.
"""

import asyncio
import gc
import multiprocessing
import time
from dataclasses import dataclass, field


@dataclass
class Result:
    """What one run saw: answers by status, latencies in seconds, and when each 200 came."""

    elapsed: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    acknowledged: list[tuple[int, float]] = field(default_factory=list)  # (request index, time)

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def merge(self, other: "Result", sequential: bool = False) -> None:
        """Add ``other``'s answers: run alongside this one, or after it (``sequential``)."""
        if sequential:
            self.elapsed += other.elapsed
        else:
            self.elapsed = max(self.elapsed, other.elapsed)
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.latencies += other.latencies
        self.acknowledged += other.acknowledged


def http_request(host: str, port: int, method: str, path: str, body: bytes = b"",
                 headers: dict[str, str] | None = None) -> bytes:  # fmt: skip
    """The request's bytes, ready to write to a socket."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def _send(host: str, port: int, request: bytes) -> int:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return 0
    try:
        writer.write(request)
        status_line = await reader.readline()
        await reader.read()  # to the end: the server closes the connection
        parts = status_line.split(b" ", 2)
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    except OSError:
        return 0
    finally:
        writer.close()


async def _closed_loop(host, port, requests, connections, duration) -> Result:
    result = Result()
    deadline = time.monotonic() + duration
    position = 0

    async def client() -> None:
        nonlocal position
        while time.monotonic() < deadline:
            index, position = position, position + 1
            started = time.monotonic()
            status = await _send(host, port, requests[index % len(requests)])
            result.statuses[status] = result.statuses.get(status, 0) + 1
            result.latencies.append(time.monotonic() - started)

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(connections)))
    result.elapsed = time.monotonic() - started
    return result


async def _open_loop(host, port, requests, rate, first_index, start_at) -> Result:
    """Send ``requests`` at ``rate`` per second from ``start_at`` (a ``time.time()``)."""
    result = Result()

    async def one(index: int, due: float) -> None:
        status = await _send(host, port, requests[index])
        answered = time.time()
        result.statuses[status] = result.statuses.get(status, 0) + 1
        result.latencies.append(answered - due)
        if status == 200:
            result.acknowledged.append((first_index + index, answered))

    tasks = []
    for index in range(len(requests)):
        due = start_at + index / rate
        if (wait := due - time.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(index, due)))
    await asyncio.gather(*tasks)
    result.elapsed = time.time() - start_at
    return result


def _closed_worker(args) -> Result:
    gc.disable()  # see _open_worker
    return asyncio.run(_closed_loop(*args))


def _open_worker(args) -> Result:
    # The run's tasks and results are garbage only at its end: a collection during the run
    # (tens of ms over thousands of tasks) would be counted as the server's latency.
    gc.disable()
    return asyncio.run(_open_loop(*args))


def closed_loop(host: str, port: int, requests: list[bytes], connections: int = 16,
                duration: float = 10.0, processes: int = 2) -> Result:  # fmt: skip
    """Keep ``connections`` requests in flight for ``duration`` seconds."""
    share = max(1, connections // processes)
    slices = [requests[i::processes] or requests for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_closed_worker, [(host, port, part, share, duration) for part in slices])
    return _merged(parts)


def alternating(host: str, port: int, first: list[bytes], second: list[bytes],
                duration: float, rounds: int) -> tuple[Result, Result]:  # fmt: skip
    """Two closed-loop capacities, each ``duration`` seconds in all, measured in alternating
    slices (first, second, second, first, ...) so that a machine that slows down or speeds up
    during the run weighs on both alike. Each slice of ``second`` sends requests not sent yet."""
    totals = (Result(), Result())
    for index in range(2 * rounds):
        which = (index + index // 2) % 2  # 0 1 1 0 0 1 1 0 ...
        requests = first if which == 0 else second[index // 2 :: rounds] or second
        part = closed_loop(host, port, requests, duration=duration / rounds)
        totals[which].merge(part, sequential=True)
    return totals


def open_loop(host: str, port: int, requests: list[bytes], rate: float,
              processes: int = 2) -> Result:  # fmt: skip
    """Send every request once, at ``rate`` per second in all; ``acknowledged`` is indexed by
    position in ``requests``."""
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        # Started once the processes exist, with time to hand them their requests: a late start
        # would count the generator's own delay as the server's latency.
        start_at = time.time() + 0.5 + len(requests) / 200_000
        args = []
        for i in range(processes):
            # Process i sends requests i, i + p, i + 2p, ...: together, the full rate in order.
            share = requests[i::processes]
            args.append((host, port, share, rate / processes, 0, start_at + i / rate))
        parts = pool.map(_open_worker, args)
    for i, part in enumerate(parts):
        part.acknowledged = [(i + index * processes, at) for index, at in part.acknowledged]
    return _merged(parts)


def _merged(parts: list[Result]) -> Result:
    total = Result()
    for part in parts:
        total.merge(part)
    return total
