"""Sending deliveries to the ingest service as a webhook sender would: signed, concurrently,
retrying what was not acknowledged."""

import http.client
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from wa_analytics.core import signing
from wa_analytics.demo.traffic import CRM_PATH, Delivery

RETRIES = 5


@dataclass
class SendReport:
    status_counts: Counter = field(default_factory=Counter)
    retried: int = 0


def send_all(
    base_url: str,
    deliveries: Sequence[Delivery],
    whatsapp_secret: str,
    crm_secret: str,
    concurrency: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> SendReport:
    """POST every delivery; a 503 or a dropped connection is retried with backoff, like Meta
    does. ``status_counts`` holds each delivery's final answer."""
    parts = urlsplit(base_url)
    local = threading.local()
    report = SendReport()
    lock = threading.Lock()
    done = 0

    def connection() -> http.client.HTTPConnection:
        if getattr(local, "conn", None) is None:
            local.conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        return local.conn

    def send(delivery: Delivery) -> None:
        nonlocal done
        is_crm = delivery.path == CRM_PATH
        header = "X-Signature-256" if is_crm else "X-Hub-Signature-256"
        headers = {
            "Content-Type": "application/json",
            header: signing.sign(delivery.body, crm_secret if is_crm else whatsapp_secret),
        }
        status = None
        for attempt in range(RETRIES + 1):
            try:
                conn = connection()
                conn.request("POST", delivery.path, body=delivery.body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                local.conn = None
                status = None
            if status is not None and status != 503:
                break
            with lock:
                report.retried += 1
            time.sleep(min(0.1 * 2**attempt, 2))
        with lock:
            report.status_counts[status or "connection failed"] += 1
            done += 1
            if progress:
                progress(done, len(deliveries))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(send, deliveries))
    return report
