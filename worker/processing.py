"""From queued envelopes to the rows of one batch: deliveries, events and quarantined items."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from wa_analytics.queueing import Envelope
from worker.enrichment import enrich
from worker.parsing.crm import parse_crm_event
from worker.parsing.errors import ParseError
from worker.parsing.event import Event, Rejected
from worker.parsing.whatsapp import parse_notification
from worker.phones import PhoneRules, pseudonymise
from worker.redact import pseudonymise_phones, redact_crm, redact_whatsapp


@dataclass
class Batch:
    """Rows ready for COPY, deduplicated within the batch (the first arrival wins)."""

    deliveries: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    quarantine: list[tuple] = field(default_factory=list)
    _event_ids: set = field(default_factory=set)
    _delivery_ids: set = field(default_factory=set)

    def add_event(self, event: Event, delivery_id: str, source: str, received_at: datetime):
        event_id = event.event_id
        if event_id in self._event_ids:
            return
        self._event_ids.add(event_id)
        self.events.append(
            (
                event_id,
                event.event_name,
                event.channel_type,
                event.user_id,
                event.message_id,
                event.status,
                event.occurred_at,
                received_at,
                source,
                delivery_id,
                orjson.dumps(event.properties | {"source": source}).decode(),
            )
        )


def build_batch(envelopes: Iterable[Envelope], rules: PhoneRules | None = None) -> Batch:
    batch = Batch()
    for envelope in envelopes:
        if envelope.delivery_id in batch._delivery_ids:
            continue  # the same delivery twice in one batch: a sender's retry
        batch._delivery_ids.add(envelope.delivery_id)
        add_delivery(batch, envelope, rules or PhoneRules())
    return batch


def add_delivery(batch: Batch, envelope: Envelope, rules: PhoneRules) -> None:
    received_at = datetime.fromtimestamp(envelope.received_at, UTC)
    source, delivery_id = envelope.source, envelope.delivery_id
    try:
        payload = orjson.loads(envelope.body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        # The door only queues JSON objects; anything else here is kept, never dropped.
        stored = {"unparseable_body_bytes": len(envelope.body)}
        batch.deliveries.append((delivery_id, source, received_at, orjson.dumps(stored).decode()))
        batch.quarantine.append(
            (delivery_id, source, received_at, "body is not a JSON object", "{}", "$")
        )
        return
    stored = redact_whatsapp(payload) if source == "whatsapp" else redact_crm(payload)
    if rules.hash_key:
        # With pseudonymisation on, no number is stored anywhere, the raw delivery included.
        stored = pseudonymise_phones(stored, source, rules)
    batch.deliveries.append((delivery_id, source, received_at, orjson.dumps(stored).decode()))
    add_derived(batch, delivery_id, source, received_at, stored, rules)


def add_derived(
    batch: Batch,
    delivery_id: str,
    source: str,
    received_at: datetime,
    stored: dict,
    rules: PhoneRules,
) -> None:
    """Add the events and rejections derived from one stored (redacted) delivery."""
    for outcome in derive(source, stored, received_at, rules.default_region):
        if isinstance(outcome, Rejected):
            item = orjson.dumps(outcome.item, default=str).decode()
            batch.quarantine.append(
                (delivery_id, source, received_at, outcome.reason, item, outcome.path)
            )
        else:
            if rules.hash_key:
                outcome.user_id = pseudonymise(outcome.user_id, rules.hash_key)
            batch.add_event(enrich(outcome), delivery_id, source, received_at)


def derive(source: str, payload: dict, received_at: datetime, default_region: str | None):
    """Events (or rejections) from one stored (redacted) delivery; used by reprocess too."""
    if source == "whatsapp":
        yield from parse_notification(payload, received_at)
        return
    try:
        yield parse_crm_event(payload, received_at, default_region)
    except ParseError as exc:
        yield Rejected("$", str(exc), payload)
