"""Helpers shared by the tests: signed requests, an in-process worker, payload builders."""

import time

import orjson
import psycopg

from wa_analytics.core import signing
from wa_analytics.core.dbt import run_dbt
from wa_analytics.core.queueing import Envelope, delivery_id_for, drain_queue
from wa_analytics.demo.traffic import CRM_PATH
from worker.processing import build_batch
from worker.runner import DrainWorker
from worker.store import write_batch

TEST_SECRETS = {
    "WHATSAPP_APP_SECRET": "test-app-secret",
    "WHATSAPP_VERIFY_TOKEN": "test-verify-token",
    "CRM_WEBHOOK_SECRET": "test-crm-secret",
}
BUSINESS = {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"}


def signed_post(client, path: str, payload, secret: str | None = None, **kwargs):
    """POST ``payload`` (an object, or raw bytes) with the signature header the sender would add."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    if path == "/webhooks/crm":
        header, key = "X-Signature-256", TEST_SECRETS["CRM_WEBHOOK_SECRET"]
    else:
        header, key = "X-Hub-Signature-256", TEST_SECRETS["WHATSAPP_APP_SECRET"]
    headers = {header: signing.sign(body, secret or key), **kwargs.pop("headers", {})}
    kwargs.setdefault("content_type", "application/json")
    return client.post(path, data=body, headers=headers, **kwargs)


def run_worker(redis_conn, settings) -> bool:
    """Run the RQ worker in-process until the queue is empty, as ``wa-analytics worker --burst``
    (its class: RQ's own could wait up to a minute for its command thread as it ends)."""
    worker = DrainWorker([drain_queue(redis_conn, settings.queue_name)], connection=redis_conn)
    return worker.work(burst=True)


def store_deliveries(database_url: str, deliveries) -> None:
    """Store deliveries the way the worker does: one batch, one transaction."""
    with psycopg.connect(database_url) as conn:
        write_batch(conn, batch_of(deliveries))


def batch_of(deliveries):
    """The worker's batch of these deliveries, as if each had just been queued."""
    envelopes = []
    for delivery in deliveries:
        source = "crm" if delivery.path == CRM_PATH else "whatsapp"
        envelopes.append(
            Envelope(delivery_id_for(source, delivery.body), source, time.time(), delivery.body)
        )
    return build_batch(envelopes)


def cloud_api_delivery(messages=(), statuses=(), contacts=(), metadata=None) -> dict:
    """A Cloud API notification with one entry and one change holding these items."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": metadata or BUSINESS,
                            "contacts": list(contacts),
                            "messages": list(messages),
                            "statuses": list(statuses),
                        },
                    }
                ],
            }
        ],
    }


def text_message(message_id: str, wa_id: str, timestamp: int, body: str = "Hello there") -> dict:
    return {
        "from": wa_id,
        "id": message_id,
        "timestamp": str(timestamp),
        "type": "text",
        "text": {"body": body},
    }


def status(message_id: str, wa_id: str, timestamp: int, name: str = "delivered", **extra) -> dict:
    return {
        "id": message_id,
        "status": name,
        "timestamp": str(timestamp),
        "recipient_id": wa_id,
        "conversation": {"id": "CONVERSATION_ID", "origin": {"type": "service"}},
        "pricing": {"billable": True, "pricing_model": "CBP", "category": "service"},
        **extra,
    }


def crm_event(event: str, message_id: str, phone: str, timestamp, **extra) -> dict:
    payload = {
        "event": event,
        "timestamp": timestamp,
        "contact": {"phone": phone, "name": "Ana Souza"},
        "message": {"id": message_id, "type": "text", "text": "Olá! Como posso ajudar?"},
    }
    payload.update(extra)
    return payload


# Mart columns that depend on the time of the build, not on the data (a conversation counts as
# closed once its window has closed: one may close between two builds a few seconds apart).
AS_OF_BUILD = {
    "conversations": {"is_expired_unanswered"},
    "expired_conversations_daily": {
        "conversations_closed",
        "expired_unanswered",
        "expired_unanswered_rate",
    },
    "waiting_contacts": {"waiting_seconds", "is_window_open"},
    "reporting_settings": {"built_at"},
    # Open waits are judged at the build: one may pass its target between two builds.
    "sla_attainment_daily": {
        "waits",
        "breached",
        "open_past_target",
        "open_within_target",
        "attainment_rate",
    },
}
# Marts whose rows (not only values) depend on the time of the build: the rows compared.
ROWS_AS_OF_BUILD = {"sla_breaches": "not is_open"}


def build(*args: str) -> None:
    """``dbt build`` as an analyst runs it; fails the test with dbt's output if it fails."""
    result = run_dbt(["build", *args], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]


def table_rows(
    db, schema: str, table: str, leave_out=frozenset(), where: str = "true"
) -> list[tuple]:
    """Every row of ``schema.table`` (``where`` holds) without the ``leave_out`` columns, in a
    stable order."""
    columns = [
        row[0]
        for row in db.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, table),
        )
        if row[0] not in leave_out
    ]
    rows = db.execute(f"select {', '.join(columns)} from {schema}.{table} where {where}").fetchall()
    return sorted(rows, key=repr)


def mart_snapshot(db, leave_out=frozenset()) -> dict[str, list[tuple]]:
    """Every mart's rows, without the columns that depend on the build's time (or ``leave_out``)."""
    marts = db.execute(
        "select table_name from information_schema.tables where table_schema = 'marts'"
    ).fetchall()
    return {
        mart: table_rows(
            db,
            "marts",
            mart,
            AS_OF_BUILD.get(mart, set()) | set(leave_out),
            ROWS_AS_OF_BUILD.get(mart, "true"),
        )
        for (mart,) in marts
    }
