"""An independent reference implementation of the marts' metric definitions, in plain Python.

The end-to-end tests compute the marts from the generated traffic's truth with these functions
and compare them with what dbt built; the two share no code.
"""

from collections import defaultdict
from datetime import date, timedelta
from statistics import fmean
from zoneinfo import ZoneInfo


def percentile_cont(values: list[float], fraction: float) -> float:
    """SQL's percentile_cont: linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def answered_waits(truth) -> list[tuple]:
    """(contact, waiting_since, responded_at) for every answered wait. A history backfill's past
    messages are not waits or replies."""
    by_contact = defaultdict(list)
    for message in _live(truth.messages):
        rank = 0 if message.direction == "inbound" else 1
        by_contact[message.user_id].append((message.occurred_at, rank, message.message_id, message))
    waits = []
    for contact, messages in by_contact.items():
        waiting_since = None
        for occurred_at, _, _, message in sorted(messages, key=lambda m: m[:3]):
            if message.direction == "inbound":
                waiting_since = waiting_since or occurred_at
            elif waiting_since is not None:
                waits.append((contact, waiting_since, occurred_at))
                waiting_since = None
    return waits


def response_times_daily(truth, timezone: str) -> list[dict]:
    zone = ZoneInfo(timezone)
    per_day = defaultdict(list)
    for _, since, responded in answered_waits(truth):
        per_day[since.astimezone(zone).date()].append((responded - since).total_seconds())
    return [
        {
            "activity_date": day,
            "responses": len(seconds),
            "avg_response_seconds": fmean(seconds),
            "median_response_seconds": percentile_cont(seconds, 0.5),
            "p90_response_seconds": percentile_cont(seconds, 0.9),
        }
        for day, seconds in sorted(per_day.items())
    ]


def _inbound(truth):
    return [m for m in truth.messages if m.direction == "inbound"]


def _live(messages):
    return [m for m in messages if not m.is_backfill]


def contact_growth_daily(truth, timezone: str) -> list[dict]:
    zone = ZoneInfo(timezone)
    first_contact: dict[str, date] = {}
    days_with_traffic = set()
    for message in _inbound(truth):
        day = message.occurred_at.astimezone(zone).date()
        days_with_traffic.add(day)
        first_contact[message.user_id] = min(day, first_contact.get(message.user_id, day))
    if not days_with_traffic:
        return []
    new_per_day = defaultdict(int)
    for day in first_contact.values():
        new_per_day[day] += 1
    rows, cumulative, day = [], 0, min(days_with_traffic)
    while day <= max(days_with_traffic):
        new = new_per_day[day]
        before = cumulative
        cumulative += new
        rows.append(
            {
                "activity_date": day,
                "new_contacts": new,
                "cumulative_contacts": cumulative,
                "growth_rate": new / before if before else None,
            }
        )
        day += timedelta(days=1)
    return rows


def hourly_traffic(truth, timezone: str) -> list[dict]:
    zone = ZoneInfo(timezone)
    counts = defaultdict(set)
    for message in _live(_inbound(truth)):
        local = message.occurred_at.astimezone(zone)
        counts[(local.date(), local.hour, local.isoweekday())].add(message.message_id)
    return [
        {"activity_date": d, "hour_of_day": h, "day_of_week": w, "messages_received": len(ids)}
        for (d, h, w), ids in sorted(counts.items())
    ]
