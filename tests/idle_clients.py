"""Idle and slow clients against a real server: connections that send nothing, held open, and
probes that time what a real sender sees meanwhile."""

import http.client
import select
import socket
import threading
import time
from dataclasses import dataclass, field

import orjson
from helpers import TEST_SECRETS, cloud_api_delivery, text_message

from wa_analytics.core import signing


class IdleClients:
    """``count`` TCP connections to ``host:port`` that never send a byte. Any the server closes
    is opened again at once, as a client reconnecting to keep the service busy would."""

    def __init__(self, host: str, port: int, count: int = 200):
        self.address = (host, port)
        self.count = count
        self.reopened = 0
        self._sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep_open, daemon=True)

    def __enter__(self) -> "IdleClients":
        self._sockets = [self._connect() for _ in range(self.count)]
        self._keeper.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._keeper.join(timeout=5)
        for sock in self._sockets:
            sock.close()

    def _connect(self) -> socket.socket:
        # The handshake completes in the kernel whether or not a worker accepts the connection.
        return socket.create_connection(self.address, timeout=5)

    def _keep_open(self) -> None:
        while not self._stop.wait(0.05):
            readable, _, _ = select.select(self._sockets, [], [], 0)
            for sock in readable:  # an idle client's socket is readable only once closed
                index = self._sockets.index(sock)
                sock.close()
                try:
                    self._sockets[index] = self._connect()
                    self.reopened += 1
                except OSError:
                    self._sockets[index] = socket.socket()  # retried on the next round


@dataclass
class Probes:
    """Each probe's time to a full answer in seconds (None: no answer within the timeout)."""

    times: dict[str, list[float | None]] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)

    def slowest(self, name: str) -> float:
        return max((t if t is not None else float("inf")) for t in self.times[name])

    def summary(self) -> str:
        return ", ".join(
            f"{name}: {len(times)} probes, slowest {self.slowest(name):.3f} s, "
            f"statuses {sorted(self.statuses[name])}"
            for name, times in self.times.items()
        )


def signed_webhook() -> tuple[bytes, dict[str, str]]:
    """A Cloud API delivery and the headers Meta would send with it."""
    body = orjson.dumps(cloud_api_delivery([text_message("wamid.IDLE", "16315551234", 1767225600)]))
    signature = signing.sign(body, TEST_SECRETS["WHATSAPP_APP_SECRET"])
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": signature}


def probe(host: str, port: int, duration: float, interval: float = 0.25,
          timeout: float = 3.0) -> Probes:  # fmt: skip
    """``GET /healthz`` and a signed webhook ``POST`` every ``interval`` for ``duration``
    seconds, each on a new connection, each timed to its full answer."""
    body, headers = signed_webhook()
    requests = {"GET /healthz": ("GET", "/healthz", None, {}),
                "POST /webhooks/whatsapp": ("POST", "/webhooks/whatsapp", body, headers)}  # fmt: skip
    probes = Probes({name: [] for name in requests}, {name: set() for name in requests})
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        for name, (method, path, payload, extra) in requests.items():
            started = time.monotonic()
            connection = http.client.HTTPConnection(host, port, timeout=timeout)
            try:
                connection.request(method, path, body=payload, headers=extra)
                response = connection.getresponse()
                response.read()
                probes.statuses[name].add(response.status)
                probes.times[name].append(time.monotonic() - started)
            except OSError:  # includes the timeout
                probes.statuses[name].add(0)
                probes.times[name].append(None)
            finally:
                connection.close()
        time.sleep(interval)
    return probes
