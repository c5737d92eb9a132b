"""An independent reference implementation of the marts' metric definitions, in plain Python.

The end-to-end tests compute the marts from the generated traffic's truth with these functions
and compare them with what dbt built; the two share no code.
"""

import csv
from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
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


# -- SLA ----------------------------------------------------------------------------------------
# Read from the seeds themselves: the promise and the opening hours are the project's data.
SEEDS = Path(__file__).resolve().parent.parent / "dbt_project" / "seeds"


def _default_rows(seed: str) -> list[dict]:
    with (SEEDS / seed).open() as file:
        return [row for row in csv.DictReader(file) if row["business_phone_number_id"] == "*"]


def opening_seconds(start: datetime, end: datetime, timezone: str) -> float:
    """Seconds of the default opening hours (seed business_hours, '*') between two instants."""
    zone, total = ZoneInfo(timezone), 0.0
    hours = _default_rows("business_hours.csv")
    day = start.astimezone(zone).date() - timedelta(days=1)
    while day <= end.astimezone(zone).date():
        for row in hours:
            if int(row["day_of_week"]) != day.isoweekday():
                continue
            opens, closes = (
                time.fromisoformat(row["opens_at"]),
                time.fromisoformat(row["closes_at"]),
            )
            close_day = day + timedelta(days=1) if closes <= opens else day
            opened = datetime.combine(day, opens, zone)
            closed = datetime.combine(close_day, closes, zone)
            total += max((min(end, closed) - max(start, opened)).total_seconds(), 0)
        day += timedelta(days=1)
    return total


def all_waits(truth) -> list[dict]:
    """Every wait, answered or open: its contact, its start, its reply (or None), and whether it
    is due a first response: nobody had answered the conversation it started in (WhatsApp's
    window: an inbound message opens one when none is open, and it stays open until 24 hours
    after the contact's latest inbound message; a reply counts in it while it is open)."""
    by_contact = defaultdict(list)
    for m in _live(truth.messages):
        by_contact[m.user_id].append(m)
    waits = []
    for contact, messages in by_contact.items():
        messages.sort(key=lambda m: (m.occurred_at, m.direction != "inbound", m.message_id))
        wait, answered, latest_inbound = None, True, None
        for m in messages:
            if m.direction == "inbound":
                if latest_inbound is None or m.occurred_at >= latest_inbound + timedelta(hours=24):
                    answered = False  # a new conversation, nobody has answered yet
                latest_inbound = m.occurred_at
                if wait is None:
                    wait = {"contact": contact, "since": m.occurred_at, "reply": None,
                            "is_first": not answered}  # fmt: skip
                continue
            if latest_inbound and m.occurred_at < latest_inbound + timedelta(hours=24):
                answered = True
            if wait is not None:
                waits.append(wait | {"reply": m})
                wait = None
        if wait is not None:
            waits.append(wait)
    return waits


def sla_attainment_daily(truth, timezone: str, now: datetime) -> dict:
    """Per local day a wait started: the sla_attainment_daily figures with the '*' targets, the
    open waits judged at ``now``."""
    [targets] = _default_rows("sla_targets.csv")
    zone, days = ZoneInfo(timezone), defaultdict(Counter)
    for wait in all_waits(truth):
        minutes = targets["first_response_minutes" if wait["is_first"] else "next_response_minutes"]
        end = wait["reply"].occurred_at if wait["reply"] else now
        seconds = opening_seconds(wait["since"], end, timezone)
        day = days[wait["since"].astimezone(zone).date()]
        within = seconds <= float(minutes) * 60
        if wait["reply"] is None:
            day["open_within_target" if within else "open_past_target"] += 1
            continue
        day["answered_within_target" if within else "answered_late"] += 1
        if wait["is_first"]:
            day["first_responses"] += 1
            day["first_responses_within_target"] += within
            bucket = next(name for bound, name in FIRST_RESPONSE_BUCKETS if seconds < bound)
            day[bucket] += 1
    return days


FIRST_RESPONSE_BUCKETS = [
    (60, "first_responses_under_1m"),
    (300, "first_responses_1_to_5m"),
    (900, "first_responses_5_to_15m"),
    (3600, "first_responses_15_to_60m"),
    (float("inf"), "first_responses_over_60m"),
]


# -- What WhatsApp costs and what it brings -----------------------------------------------------
def _seed(name: str) -> list[dict]:
    with (SEEDS / name).open() as file:
        return list(csv.DictReader(file))


def _rate(category: str, market: str, day: date) -> tuple | None:
    """(currency, price) of the rate card row in force on ``day``: the market's own row, else
    the row for any market ('*')."""
    for wanted in (market, "*"):
        rows = [r for r in _seed("message_rates.csv")
                if r["category"] == category and r["market"] == wanted
                and date.fromisoformat(r["effective_from"]) <= day]  # fmt: skip
        if rows:
            row = max(rows, key=lambda r: r["effective_from"])
            return row["currency"], Decimal(row["price_per_message"])
    return None


LIFECYCLE = ["sent", "delivered", "read", "failed", "deleted"]


def messaging_costs(truth, timezone: str) -> dict:
    """(local day, category, pricing type, market) -> [charged, free, cost, savings]: each priced
    message once, on its first billable status (else its first priced one)."""
    zone = ZoneInfo(timezone)
    markets = {row["region"]: row["market"] for row in _seed("pricing_markets.csv")}
    priced = defaultdict(list)
    for s in truth.statuses:
        if s.pricing is not None:
            priced[s.message_id].append(s)
    groups = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0)])
    for statuses in priced.values():
        counted = min(statuses, key=lambda s: (not s.pricing[0], s.occurred_at,
                                               LIFECYCLE.index(s.status)))  # fmt: skip
        billable, category, pricing_type = counted.pricing
        day = counted.occurred_at.astimezone(zone).date()
        market = markets.get(counted.region, "Other")
        group = groups[(day, category, pricing_type, market)]
        _, price = _rate(category, market, day) or (None, Decimal(0))
        group[0 if billable else 1] += 1
        group[2 if billable else 3] += price
    return groups


def template_sends(truth) -> list[dict]:
    """Every template or campaign message with what it brought (int_template_sends' definitions:
    replies within 24 hours and before the next template to the contact, clicks naming it,
    marketing opt-outs in the same window)."""
    statuses = defaultdict(dict)
    for s in truth.statuses:
        statuses[s.message_id][s.status] = s.occurred_at
    inbound = defaultdict(list)
    for m in _live(_inbound(truth)):
        inbound[m.user_id].append(m)
    clicked = {m.context_message_id for m in _inbound(truth)
               if m.message_type in ("button", "interactive") and m.context_message_id}  # fmt: skip
    sends = defaultdict(list)
    for m in _live(truth.messages):
        if m.direction == "outbound" and (m.template or m.campaign):
            sends[m.user_id].append(m)
    out = []
    for contact, messages in sends.items():
        messages.sort(key=lambda m: (m.occurred_at, m.message_id))
        for i, m in enumerate(messages):
            end = m.occurred_at + timedelta(hours=24)
            if i + 1 < len(messages):
                end = min(end, messages[i + 1].occurred_at)
            replies = [
                r.occurred_at for r in inbound[contact] if m.occurred_at < r.occurred_at < end
            ]
            prefs = [p for p in truth.preferences
                     if p.user_id == contact and m.occurred_at < p.occurred_at < end]  # fmt: skip
            stops = [p.occurred_at for p in prefs if p.preference == "stop"]
            resumes = [p.occurred_at for p in prefs if p.preference == "resume"]
            seen = statuses[m.message_id]
            delivered = "delivered" in seen or "read" in seen
            out.append({
                "message": m,
                "is_delivered": delivered,
                "is_read": "read" in seen,
                "is_failed": "failed" in seen and not delivered,
                "seconds_to_read": (seen["read"] - m.occurred_at).total_seconds()
                if "read" in seen else None,
                "seconds_to_reply": (min(replies) - m.occurred_at).total_seconds()
                if replies else None,
                "is_clicked": m.message_id in clicked,
                "is_opted_out": bool(stops),
                "is_resumed": bool(stops) and bool(resumes) and max(resumes) > min(stops),
            })  # fmt: skip
    return out


def funnel(sends: list[dict]) -> dict:
    """The funnel figures of a group of template sends, as template_performance_daily and
    campaign_funnel name them."""
    reads = [s["seconds_to_read"] for s in sends if s["seconds_to_read"] is not None]
    replies = [s["seconds_to_reply"] for s in sends if s["seconds_to_reply"] is not None]
    return {
        "messages_sent": len(sends),
        "messages_delivered": sum(s["is_delivered"] for s in sends),
        "messages_read": sum(s["is_read"] for s in sends),
        "messages_failed": sum(s["is_failed"] for s in sends),
        "messages_replied": len(replies),
        "messages_clicked": sum(s["is_clicked"] for s in sends),
        "opt_outs": sum(s["is_opted_out"] for s in sends),
        "resumes": sum(s["is_resumed"] for s in sends),
        "median_seconds_to_read": percentile_cont(reads, 0.5) if reads else None,
        "median_seconds_to_reply": percentile_cont(replies, 0.5) if replies else None,
    }


FREE_ENTRY_POINT = timedelta(hours=72)


def ad_conversations(truth) -> list[dict]:
    """Every conversation whose opening message came from an ad, with ad_conversations'
    figures (WhatsApp's 24-hour window, as all_waits reads it)."""
    first_inbound = {}
    for m in _inbound(truth):
        first_inbound[m.user_id] = min(m.occurred_at, first_inbound.get(m.user_id, m.occurred_at))
    free = {
        s.message_id for s in truth.statuses if s.pricing and s.pricing[2] == "free_entry_point"
    }
    by_contact = defaultdict(list)
    for m in _live(truth.messages):
        by_contact[m.user_id].append(m)
    found = []
    for contact, messages in by_contact.items():
        messages.sort(key=lambda m: (m.occurred_at, m.direction != "inbound", m.message_id))
        conversations, latest = [], None
        for m in messages:
            if m.direction == "inbound":
                if latest is None or m.occurred_at >= latest + timedelta(hours=24):
                    conversations.append({"opened_at": m.occurred_at, "ad_id": None, "replies": []})
                latest = m.occurred_at
                if m.occurred_at == conversations[-1]["opened_at"] and m.ad_id:
                    conversations[-1]["ad_id"] = m.ad_id
            elif latest is not None and m.occurred_at < latest + timedelta(hours=24):
                conversations[-1]["replies"].append(m.occurred_at)
        ads = [c for c in conversations if c["ad_id"]]
        for i, c in enumerate(ads):
            end = c["opened_at"] + FREE_ENTRY_POINT
            if i + 1 < len(ads):
                end = min(end, ads[i + 1]["opened_at"])
            found.append({
                "contact_id": contact,
                "source_id": c["ad_id"],
                "opened_at": c["opened_at"],
                "is_new_contact": c["opened_at"] <= first_inbound[contact],
                "is_answered": bool(c["replies"]),
                "first_response_seconds": (c["replies"][0] - c["opened_at"]).total_seconds()
                if c["replies"] else None,
                "outbound_messages": len(c["replies"]),
                "free_entry_point_messages": sum(
                    1 for m in messages if m.direction == "outbound" and m.message_id in free
                    and c["opened_at"] <= m.occurred_at < end),
            })  # fmt: skip
    return found
