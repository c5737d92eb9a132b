"""From queued envelopes to the rows of one batch: deliveries, events and quarantined items."""

import logging
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from wa_analytics.core.queueing import Envelope
from worker.enrichment import enrich
from worker.parsing.crm import parse_crm_event
from worker.parsing.errors import ParseError
from worker.parsing.event import PREFERENCE_UPDATED, Event, Rejected
from worker.parsing.identity import IDENTITY_PROPERTIES
from worker.parsing.preferences import preference_message_id
from worker.parsing.whatsapp import parse_notification, single_status, status_event
from worker.phones import PhoneRules, pseudonymise
from worker.redact import (
    holds_no_text,
    pseudonymise_phones,
    recorded_regions,
    redact_crm,
    redact_whatsapp,
)

log = logging.getLogger(__name__)

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
    order they came in. A delivery's rows are added together or not at all (``add``), so a
    batch can be split by delivery (``split``); ``dead_letters`` are the deliveries that could
    not be stored at all, with the reason (kept in Redis by the drain: worker.dead_letters).
    ``runners_up`` keeps the reports that lost to another delivery's: if that delivery cannot
    be stored, the best of them takes its place (store.with_items_quarantined).
    """

    deliveries: list[tuple] = field(default_factory=list)
    events: list[tuple] = field(default_factory=list)
    quarantine: list[tuple] = field(default_factory=list)
    dead_letters: list[tuple[bytes, str]] = field(default_factory=list)
    runners_up: dict[bytes, list[tuple]] = field(default_factory=dict)
    _event_rows: dict = field(default_factory=dict)
    _delivery_ids: set = field(default_factory=set)

    def add(self, delivery: tuple | None, events=(), rejected=()) -> None:
        """One delivery's rows, built beforehand (building them is what may fail); no delivery
        row when it is stored already (reprocess)."""
        if delivery is not None:
            self.deliveries.append(delivery)
        self.quarantine.extend(rejected)
        for row in events:
            index = self._event_rows.get(row[0])
            if index is None:
                self._event_rows[row[0]] = len(self.events)
                self.events.append(row)
            else:
                if precedence(row) < precedence(self.events[index]):
                    row, self.events[index] = self.events[index], row
                self.runners_up.setdefault(row[0], []).append(row)

    def delivery_ids(self) -> list[bytes]:
        """The deliveries this batch holds rows of, in order (reprocess adds no delivery rows)."""
        ids = [row[0] for row in self.deliveries] + [row[9] for row in self.events]
        return list(dict.fromkeys(ids + [row[0] for row in self.quarantine]))

    def split(self) -> tuple["Batch", "Batch"]:
        """Two batches of about half the deliveries each, every row with its delivery's; they
        share this batch's dead letters and runners-up."""
        ids = self.delivery_ids()
        half = set(ids[: len(ids) // 2])
        first, second = (
            Batch(dead_letters=self.dead_letters, runners_up=self.runners_up) for _ in range(2)
        )
        for table, key in (("deliveries", 0), ("events", 9), ("quarantine", 0)):
            for row in getattr(self, table):  # an event's key: the delivery it was kept from
                getattr(first if row[key] in half else second, table).append(row)
        return first, second


def delivery_row(delivery_id: bytes, source: str, received_at: datetime, body: bytes) -> tuple:
    return (delivery_id, source, received_at, body)


def rejected_row(delivery_id: bytes, source: str, received_at: datetime, item: Rejected) -> tuple:
    stored_item = JSONB_VERSION + orjson.dumps(item.item, default=str)
    return (delivery_id, source, received_at, item.reason, stored_item, item.path)


def event_row(event: Event, delivery_id: bytes, source: str, received_at: datetime) -> tuple:
    event.properties["source"] = source
    return (
        event.event_id,
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


# The Cloud API is the system of record for messages and their statuses: where Meta and the CRM
# report the same event, Meta's report is kept (it carries pricing and conversation data).
SOURCE_RANK = {"whatsapp": 0, "crm": 1}


def precedence(row: tuple) -> tuple:
    """Which of two reports of one event is kept: Meta's before the CRM's, a live report before
    a history backfill's (Meta's past copy of a message that also came live), then the earlier
    ``occurred_at``, then the smaller delivery id. A total order on what was reported (never on
    when it arrived), so duplicated and reordered deliveries always keep the same row.
    store.MERGE_EVENTS applies the same order in SQL."""
    return (SOURCE_RANK[row[8]], BACKFILL_MARK in row[10], row[6], row[9])


# How a backfilled event's properties (event_row's JSON, written by orjson) mark it.
BACKFILL_MARK = b'"is_backfill":true'


def uuid_bytes(text: str) -> bytes:
    """A uuid's 16 bytes (the order Postgres sorts uuids in), from its text (hyphens or not)."""
    return bytes.fromhex(text.replace("-", ""))


def build_batch(items: Iterable[Envelope | bytes], rules: PhoneRules | None = None) -> Batch:
    """The rows of these deliveries (envelopes, or as queued: encoded). Whatever fails for one
    delivery fails it alone: it is kept redacted with a quarantined item that says what failed,
    or, if even that fails, it becomes a dead letter; the others' rows are built as usual."""
    batch, rules = Batch(), rules or PhoneRules()
    for item in items:
        try:
            envelope = Envelope.decode(item) if isinstance(item, bytes) else item
            if envelope.delivery_id in batch._delivery_ids:
                continue  # the same delivery twice in one batch: a sender's retry
            batch._delivery_ids.add(envelope.delivery_id)
            add_delivery(batch, envelope, rules)
        except Exception as exc:  # any class: one delivery never fails its batch
            # Logged without the exception's words or traceback values: they may quote text.
            log.warning("quarantining a delivery: %s", worker_error(exc))
            add_unprocessable(batch, item, rules, worker_error(exc))
    return batch


def worker_error(exc: BaseException) -> str:
    """What failed and where, for the quarantine's reason. Not the exception's message: it may
    quote a value of the delivery, and people's text is never stored."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" in {frame.name} ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    return f"the worker failed on this delivery: {type(exc).__name__}{where}"


def add_unprocessable(batch: Batch, item: Envelope | bytes, rules: PhoneRules, reason: str) -> None:
    """Keep a delivery that could not be processed: redacted, with its reason in quarantine, so
    that ``wa-analytics reprocess`` re-derives it after a fix; a dead letter if that fails too."""
    try:
        envelope = Envelope.decode(item) if isinstance(item, bytes) else item
        _, stored_json = stored_form(orjson.loads(envelope.body), b"", envelope.source, rules, True)
        add_quarantined(batch, envelope, stored_json, reason)
    except Exception as exc:
        encoded = item if isinstance(item, bytes) else item.encode()
        again = worker_error(exc)
        batch.dead_letters.append((encoded, reason if again == reason else f"{reason}; {again}"))


def add_quarantined(batch: Batch, envelope: Envelope, stored_json: bytes, reason: str) -> None:
    """A delivery kept as ``stored_json`` whose every item is quarantined with ``reason``."""
    received_at = datetime.fromtimestamp(envelope.received_at, UTC)
    delivery_id, source = uuid_bytes(envelope.delivery_id), envelope.source
    batch.add(
        delivery_row(delivery_id, source, received_at, stored_json),
        (),
        [rejected_row(delivery_id, source, received_at, Rejected("$", reason, {}))],
    )


def add_delivery(batch: Batch, envelope: Envelope, rules: PhoneRules) -> None:
    received_at = datetime.fromtimestamp(envelope.received_at, UTC)
    source, delivery_id = envelope.source, uuid_bytes(envelope.delivery_id)
    if source not in SOURCE_RANK:
        raise ValueError("unknown source")
    try:
        payload = orjson.loads(envelope.body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        # The door only queues JSON objects; anything else here is kept, never dropped.
        stored = orjson.dumps({"unparseable_body_bytes": len(envelope.body)})
        add_quarantined(batch, envelope, stored, "body is not a JSON object")
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
    events, rejected = derived_rows(delivery_id, source, received_at, stored, rules)
    batch.add(delivery_row(delivery_id, source, received_at, stored_json), events, rejected)


def _add_single_status(
    batch: Batch, delivery_id: bytes, body: bytes, payload: dict, received_at: datetime
) -> bool:
    """The fast path for a notification of one status (see ``single_status``) with nothing to
    redact, kept as received. False sends anything else down the general path, which also
    turns a status that does not parse into a quarantined item."""
    found = single_status(payload)
    if found is None or not holds_no_text(payload):
        return False
    try:
        event = status_event(*found, received_at)
    except ParseError:
        return False
    batch.add(
        delivery_row(delivery_id, "whatsapp", received_at, body),
        [event_row(enrich(event), delivery_id, "whatsapp", received_at)],
    )
    return True


def stored_form(
    payload: dict, body: bytes, source: str, rules: PhoneRules, redact: bool = False
) -> tuple[dict, bytes]:
    """The delivery as it is kept (text redacted, numbers hashed if asked) and its JSON.

    A status notification holds no text: when the body has nothing to redact (only keys kept
    as they are, see ``redact.holds_no_text``), it is kept as received, without a copy, unless
    ``redact`` asks for a redacted copy all the same.
    """
    if source == "whatsapp" and not (rules.hash_key or redact) and holds_no_text(payload):
        return payload, body
    stored = redact_whatsapp(payload) if source == "whatsapp" else redact_crm(payload)
    if rules.hash_key:
        # With pseudonymisation on, no number is stored anywhere, the raw delivery included.
        stored = pseudonymise_phones(stored, source, rules)
    return stored, orjson.dumps(stored)


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


def derived_rows(
    delivery_id: bytes, source: str, received_at: datetime, stored: dict, rules: PhoneRules
) -> tuple[list[tuple], list[tuple]]:
    """The event rows and quarantine rows derived from one stored (redacted) delivery."""
    events, rejected = [], []
    regions = recorded_regions(stored)
    for outcome in derive(source, stored, received_at, rules.default_region):
        if isinstance(outcome, Rejected):
            rejected.append(rejected_row(delivery_id, source, received_at, outcome))
        else:
            # Enriched before hashing: the contact's region is read from their number, or, in a
            # delivery stored with its numbers hashed, from what hashing recorded of it.
            enrich(outcome)
            if outcome.user_id in regions and "contact_region" not in outcome.properties:
                outcome.properties["contact_region"] = regions[outcome.user_id]
            if rules.hash_key:
                pseudonymise_identities(outcome, rules.hash_key)
            events.append(event_row(outcome, delivery_id, source, received_at))
    return events, rejected


def pseudonymise_identities(event: Event, key: str) -> None:
    """Replace every identifier of a contact that ``event`` holds (its user_id and the ids that
    link it: worker.parsing.identity) by its keyed hash, so that links still join; an id
    derived from the contact (a preference change's) is derived again from the hash."""
    event.user_id = pseudonymise(event.user_id, key)
    for name in IDENTITY_PROPERTIES & event.properties.keys():
        event.properties[name] = pseudonymise(event.properties[name], key)
    if event.event_name == PREFERENCE_UPDATED:
        event.message_id = preference_message_id(event)


def add_stored_delivery(
    batch: Batch, delivery_id: bytes, source: str, received_at: datetime, body: str, rules
) -> None:
    """Re-derive a stored delivery's rows into ``batch`` (reprocess); the delivery row is not
    added again. One that fails is quarantined alone, as in ``build_batch``."""
    try:
        events, rejected = derived_rows(delivery_id, source, received_at, orjson.loads(body), rules)
    except Exception as exc:
        events, rejected = (
            [],
            [rejected_row(delivery_id, source, received_at, Rejected("$", worker_error(exc), {}))],
        )
    batch.add(None, events, rejected)


def derive(source: str, payload: dict, received_at: datetime, default_region: str | None):
    """Events (or rejections) from one stored (redacted) delivery; used by reprocess too."""
    if source == "whatsapp":
        yield from parse_notification(payload, received_at)
        return
    try:
        yield parse_crm_event(payload, received_at, default_region)
    except ParseError as exc:
        yield Rejected("$", str(exc), payload)
