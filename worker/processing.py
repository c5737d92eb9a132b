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
from worker.parsing.whatsapp import parse_notification, single_status, status_event
from worker.phones import PhoneRules, pseudonymise
from worker.redact import pseudonymise_phones, redact_crm, redact_whatsapp

# jsonb's binary form: a version byte, then the JSON text. Rows hold JSON in the form binary
# COPY sends, so that no value needs converting on its way out (see store.COPY_TYPES).
JSONB_VERSION = b"\x01"


@dataclass
class Batch:
    """Rows ready for binary COPY, deduplicated within the batch.

    Each row's first value is its key (deliveries and quarantine: the delivery id; events: the
    event id), used to skip what is already stored. Ids are held as their 16 bytes, JSON as
    bytes: a delivery's body as its text, properties and items in jsonb's binary form. Where two
    reports of one event differ, the one that ``precedence`` puts first is kept, whatever the
    order they came in.
    """

    deliveries: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    quarantine: list[tuple] = field(default_factory=list)
    _event_rows: dict = field(default_factory=dict)
    _delivery_ids: set = field(default_factory=set)

    def add_delivery(self, delivery_id: bytes, source: str, received_at: datetime, body: bytes):
        self.deliveries.append((delivery_id, source, received_at, body))

    def add_rejected(self, delivery_id: bytes, source: str, received_at: datetime, item: Rejected):
        stored_item = JSONB_VERSION + orjson.dumps(item.item, default=str)
        self.quarantine.append(
            (delivery_id, source, received_at, item.reason, stored_item, item.path)
        )

    def add_event(self, event: Event, delivery_id: bytes, source: str, received_at: datetime):
        event_id = event.event_id
        event.properties["source"] = source
        row = (
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
            JSONB_VERSION + orjson.dumps(event.properties),
        )
        index = self._event_rows.get(event_id)
        if index is None:
            self._event_rows[event_id] = len(self.events)
            self.events.append(row)
        elif precedence(row) < precedence(self.events[index]):
            self.events[index] = row


# The Cloud API is the system of record for messages and their statuses: where Meta and the CRM
# report the same event, Meta's report is kept (it carries pricing and conversation data).
SOURCE_RANK = {"whatsapp": 0, "crm": 1}


def precedence(row: tuple) -> tuple:
    """Which of two reports of one event is kept: Meta's before the CRM's, then the earlier
    ``occurred_at``, then the smaller delivery id. A total order on what was reported (never on
    when it arrived), so duplicated and reordered deliveries always keep the same row.
    store.MERGE_EVENTS applies the same order in SQL."""
    return (SOURCE_RANK[row[8]], row[6], row[9])


def uuid_bytes(text: str) -> bytes:
    """A uuid's 16 bytes (the order Postgres sorts uuids in), from its text (hyphens or not)."""
    return bytes.fromhex(text.replace("-", ""))


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
    source, delivery_id = envelope.source, uuid_bytes(envelope.delivery_id)
    try:
        payload = orjson.loads(envelope.body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        # The door only queues JSON objects; anything else here is kept, never dropped.
        stored = {"unparseable_body_bytes": len(envelope.body)}
        batch.add_delivery(delivery_id, source, received_at, orjson.dumps(stored))
        batch.add_rejected(
            delivery_id, source, received_at, Rejected("$", "body is not a JSON object", {})
        )
        return
    if b"\\u0000" in envelope.body:
        payload = without_nul(payload)
    elif (
        source == "whatsapp"
        and not rules.hash_key
        and _add_single_status(batch, delivery_id, envelope.body, payload, received_at)
    ):
        return
    stored, stored_json = stored_form(payload, envelope.body, source, rules)
    batch.add_delivery(delivery_id, source, received_at, stored_json)
    add_derived(batch, delivery_id, source, received_at, stored, rules)


def _add_single_status(
    batch: Batch, delivery_id: bytes, body: bytes, payload: dict, received_at: datetime
) -> bool:
    """The fast path for a notification of one status (see ``single_status``): nothing in it
    to redact, so it is kept as received. False sends anything else down the general path,
    which also turns a status that does not parse into a quarantined item."""
    found = single_status(payload)
    if found is None:
        return False
    try:
        event = status_event(*found, received_at)
    except ParseError:
        return False
    batch.add_delivery(delivery_id, "whatsapp", received_at, body)
    batch.add_event(enrich(event), delivery_id, "whatsapp", received_at)
    return True


def stored_form(payload: dict, body: bytes, source: str, rules: PhoneRules) -> tuple[dict, bytes]:
    """The delivery as it is kept (text redacted, numbers hashed if asked) and its JSON.

    A status notification holds no text: when the body has nothing to redact (no message, no
    contact profile, no escape that could spell one), it is kept as received, without a copy.
    """
    if source == "whatsapp" and not rules.hash_key and not _may_hold_text(payload):
        return payload, body
    stored = redact_whatsapp(payload) if source == "whatsapp" else redact_crm(payload)
    if rules.hash_key:
        # With pseudonymisation on, no number is stored anywhere, the raw delivery included.
        stored = pseudonymise_phones(stored, source, rules)
    return stored, orjson.dumps(stored)


def _may_hold_text(payload: dict) -> bool:
    """Whether a Cloud API notification has messages or contact profiles (or an odd shape)."""
    entries = payload.get("entry")
    if not isinstance(entries, list):
        return True
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            return True
        for change in changes:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict) or "messages" in value or "contacts" in value:
                return True
    return False


def without_nul(value: object) -> object:
    """``value`` with NUL characters replaced: PostgreSQL's text and jsonb cannot hold them,
    and one would make the whole batch fail."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {without_nul(key): without_nul(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    return value


def add_derived(
    batch: Batch,
    delivery_id: bytes,
    source: str,
    received_at: datetime,
    stored: dict,
    rules: PhoneRules,
) -> None:
    """Add the events and rejections derived from one stored (redacted) delivery."""
    for outcome in derive(source, stored, received_at, rules.default_region):
        if isinstance(outcome, Rejected):
            batch.add_rejected(delivery_id, source, received_at, outcome)
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
