"""The filters every metrics endpoint takes: a date range and a business number."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

MAX_DAYS = 366
DEFAULT_DAYS = 28
# WhatsApp Business started in 2018; the bounds also keep date arithmetic away from year 1.
EARLIEST, LATEST = date(2000, 1, 1), date(2999, 12, 31)


class BadFilter(ValueError):
    """A query parameter the API cannot use; the message says which and why."""


@dataclass(frozen=True)
class Period:
    """Local days ``start`` to ``end``, both included, optionally one business number; days are
    local to ``timezone``, the one the marts were built with."""

    start: date
    end: date
    business_number: str | None = None
    timezone: str = "UTC"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> "Period":
        """The period of the same length just before this one, for change figures."""
        return Period(
            self.start - timedelta(days=self.days),
            self.start - timedelta(days=1),
            self.business_number,
            self.timezone,
        )

    def params(self) -> dict:
        return {"start": self.start, "end": self.end, "number": self.business_number}

    def as_json(self) -> dict:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "business_number": self.business_number,
            "timezone": self.timezone,
        }


def period_from_args(args, conn: psycopg.Connection) -> Period:
    """``start``, ``end`` (ISO dates, local days, inclusive) and ``business_number`` from the
    query string. Without ``end``, the latest day with data; without ``start``, the 28 days
    up to ``end``."""
    number = args.get("business_number") or None
    if number is not None and not (number.isascii() and number.isalnum() and len(number) <= 64):
        raise BadFilter("business_number must be Meta's phone number id (letters and digits)")
    timezone = reporting_timezone(conn)
    end = _date(args, "end") or latest_day(conn) or datetime.now(ZoneInfo(timezone)).date()
    start = _date(args, "start") or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise BadFilter("start must not be after end")
    if (end - start).days + 1 > MAX_DAYS:
        raise BadFilter(f"the range may span at most {MAX_DAYS} days")
    return Period(start, end, number, timezone)


def _date(args, name: str) -> date | None:
    value = args.get(name)
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise BadFilter(f"{name} must be a date like 2026-11-25, not {value!r}") from None
    if not EARLIEST <= day <= LATEST:
        raise BadFilter(f"{name} must be between {EARLIEST} and {LATEST}")
    return day


def latest_day(conn: psycopg.Connection) -> date | None:
    """The latest local day any mart the API reads has data for."""
    return conn.execute(
        """
        select max(day) from (
            select max(activity_date) as day from marts.responses
            union all select max(sent_date) from marts.message_delivery
            union all select max(activity_date) from marts.inbound_traffic_hourly
        ) as latest
        """
    ).fetchone()[0]


def reporting_timezone(conn: psycopg.Connection) -> str:
    """The time zone the marts' days and hours are local to (dbt var reporting_timezone)."""
    return conn.execute("select reporting_timezone from marts.reporting_settings").fetchone()[0]
