"""The standardised event (docs/events.md) and helpers shared by the parsers."""

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from wa_analytics.core.limits import MAX_ID_LENGTH, MAX_INTEGER, MAX_TEXT_LENGTH
from worker.parsing.errors import ParseError

CHANNEL_WHATSAPP = "whatsapp"
MESSAGE_RECEIVED = "message_received"
MESSAGE_SENT = "message_sent"
STATUS_UPDATED = "status_updated"
# A contact stopped or resumed a business's marketing messages (Meta's user_preferences webhook).
PREFERENCE_UPDATED = "preference_updated"
STATUSES = frozenset({"sent", "delivered", "read", "failed", "deleted"})
MEDIA_TYPES = frozenset({"image", "audio", "video", "document", "sticker"})

# Fixed namespace so event ids are stable across machines and re-derivations.
EVENT_NAMESPACE = uuid.UUID("5d0c1d5e-8a0e-4b9a-9a57-3f1c1e0a7d11")
# The hash state after the namespace, copied for each id instead of hashing the namespace again.
_NAMESPACE_SHA1 = hashlib.sha1(EVENT_NAMESPACE.bytes)
# WhatsApp did not exist before this; older timestamps are corrupt, not history.
EARLIEST_PLAUSIBLE = datetime(2009, 1, 1, tzinfo=UTC)
# Senders' clocks drift a little; a day ahead of arrival is a broken timestamp.
MAX_CLOCK_SKEW = timedelta(days=1)


@dataclass(slots=True)
class Event:
    event_name: str
    user_id: str
    message_id: str
    occurred_at: datetime
    status: str | None = None
    properties: dict = field(default_factory=dict)
    channel_type: str = CHANNEL_WHATSAPP

    @property
    def event_id(self) -> bytes:
        """``uuid5(EVENT_NAMESPACE, name|message_id|status)``, its 16 bytes (the batch's key, and
        what binary COPY sends), computed without building a ``uuid.UUID``: this runs once per
        event."""
        sha1 = _NAMESPACE_SHA1.copy()
        sha1.update(f"{self.event_name}|{self.message_id}|{self.status or ''}".encode())
        digest = bytearray(sha1.digest()[:16])
        digest[6] = (digest[6] & 0x0F) | 0x50
        digest[8] = (digest[8] & 0x3F) | 0x80
        return bytes(digest)


# The properties held to the limit of ids (an ad click's id, ``referral_ctwa_clid``, is one).
ID_SUFFIXES = ("_id", "_clid")


def check_limits(event: Event) -> Event:
    """``event`` if every value it keeps is within the contract's limits
    (wa_analytics/core/limits.py); otherwise a ParseError naming the value, so that the item is
    quarantined, not stored: a PostgreSQL index refuses a long id and dbt's integer casts refuse
    a large number."""
    if len(event.message_id) > MAX_ID_LENGTH:
        raise ParseError(f"message id longer than {MAX_ID_LENGTH} characters")
    for key, value in event.properties.items():
        if type(value) is str:
            if len(value) > MAX_ID_LENGTH and (
                key.endswith(ID_SUFFIXES) or len(value) > MAX_TEXT_LENGTH
            ):
                limit = MAX_ID_LENGTH if key.endswith(ID_SUFFIXES) else MAX_TEXT_LENGTH
                raise ParseError(f"{key!r} longer than {limit} characters")
        elif type(value) is int and not 0 <= value <= MAX_INTEGER:
            raise ParseError(f"{key!r} {value} is outside 0..{MAX_INTEGER}")
    return event


@dataclass(slots=True)
class Rejected:
    """An item of an authentic delivery that could not become an event."""

    path: str
    reason: str
    item: object


def parse_timestamp(value: object, received_at: datetime) -> datetime:
    """Unix seconds (number or digit string) or ISO 8601 with an offset, as aware UTC."""
    if type(value) is str and len(value) <= 10 and value.isascii() and value.isdigit():
        # Meta's form, read without the general checks below: this runs once per event, and a
        # burst's events share their seconds. Ten digits end in 2286, within datetime's range.
        moment = _unix_seconds(value)
        if EARLIEST_PLAUSIBLE <= moment <= received_at + MAX_CLOCK_SKEW:
            return moment
        return _plausible(moment, value, received_at)
    if isinstance(value, bool) or value is None:
        raise ParseError(f"timestamp {value!r} is missing or not a time")
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        moment = _from_unix(float(value), value)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError as exc:
            raise ParseError(f"timestamp {value!r} is not ISO 8601 or Unix seconds") from exc
        if moment.tzinfo is None:
            raise ParseError(f"timestamp {value!r} has no UTC offset; the time zone is ambiguous")
        try:
            moment = moment.astimezone(UTC)
        except OverflowError as exc:  # e.g. 0001-01-01T00:30+01:00 is before year 1 in UTC
            raise ParseError(f"timestamp {value!r} is out of range") from exc
    else:
        raise ParseError(f"timestamp {value!r} is not ISO 8601 or Unix seconds")
    return _plausible(moment, value, received_at)


@lru_cache(maxsize=4096)
def _unix_seconds(digits: str) -> datetime:
    return datetime.fromtimestamp(int(digits), UTC)


def _from_unix(seconds: float, value: object) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ParseError(f"timestamp {value!r} is out of range") from exc


def _plausible(moment: datetime, value: object, received_at: datetime) -> datetime:
    if moment < EARLIEST_PLAUSIBLE or moment > received_at + MAX_CLOCK_SKEW:
        raise ParseError(
            f"timestamp {value!r} is implausible for a delivery received "
            f"{received_at:%Y-%m-%dT%H:%M:%SZ}"
        )
    return moment


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def text_length(value: object) -> int:
    """Characters of a piece of message text, from the text or from its redaction marker."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict) and isinstance(value.get("redacted_length"), int):
        return value["redacted_length"]
    return 0


def require(mapping: object, key: str, kind: type | tuple = str) -> object:
    """``mapping[key]`` if it is present and of ``kind``; otherwise a ParseError naming the key."""
    # The common case first, in few steps: a non-empty string where a string may be (every
    # field of a status is one, and this runs four times per event).
    value = mapping.get(key) if type(mapping) is dict else None
    if type(value) is str and value and isinstance(value, kind):
        return value
    if not isinstance(mapping, dict):
        raise ParseError(f"expected an object holding {key!r}, got {type(mapping).__name__}")
    value = mapping.get(key)
    if value is None or value == "" or not isinstance(value, kind) or isinstance(value, bool):
        raise ParseError(f"{key!r} is missing or not a {_kind_name(kind)}")
    return value


def _kind_name(kind: type | tuple) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {str: "string", int: "integer", float: "number", dict: "object", list: "list"}.get(
            k, k.__name__
        )
        for k in kinds
    )


# Optional parts of an item: absent (or null) means unknown, anything of the wrong kind is refused
# with the path of the value, so that the item is quarantined rather than read in part.


def optional_object(mapping: dict, key: str) -> dict | None:
    """``mapping[key]`` if it is an object, None if it is absent or null; else a ParseError."""
    value = mapping.get(key)
    if value is None or type(value) is dict:
        return value
    raise ParseError(f"{key!r} is not an object")


def optional_text(mapping: dict, key: str, where: str, non_empty: bool = False) -> str | None:
    """``mapping[key]`` (in the object ``where``) if it is a non-empty string; None if it is
    absent, null or (unless ``non_empty``) empty; else a ParseError."""
    value = mapping.get(key)
    if type(value) is str and (value or not non_empty):
        return value or None
    if value is None:
        return None
    kind = "a non-empty string" if non_empty else "a string"
    raise ParseError(f"'{where}.{key}' is not {kind}")


def required_id(mapping: dict, key: str, where: str) -> str:
    """``mapping[key]`` (in the object ``where``), a non-empty string or an integer, as a string;
    else a ParseError."""
    value = mapping.get(key)
    if (type(value) is str and value) or type(value) is int:
        return str(value)
    raise ParseError(f"'{where}.{key}' is missing or not a string or an integer")


def required_text(mapping: dict, key: str, where: str) -> str:
    """``mapping[key]`` (in the object ``where``) if it is a non-empty string; else a ParseError."""
    value = mapping.get(key)
    if type(value) is str and value:
        return value
    raise ParseError(f"'{where}.{key}' is missing or not a non-empty string")
