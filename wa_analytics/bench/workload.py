"""The benchmark's traffic: a marketing campaign as Meta reports it.

A campaign to N contacts comes back as sent, delivered and read statuses (some failed), one
status per webhook delivery as Meta usually sends them, plus the replies of the contacts who
answer. Numbers are spread over several countries; contacts repeat, as they do in real traffic,
which is what lets the worker's caches pay off.
"""

import random
from collections.abc import Iterator

import orjson

BUSINESS = {"display_phone_number": "15550001111", "phone_number_id": "106540352242922"}
# Valid mobile ranges per country, so that phone parsing does its full work.
NUMBER_PREFIXES = [
    ("1631555", 11),
    ("447400", 12),
    ("5511987", 13),
    ("9198765", 12),
    ("4915112", 13),
    ("525512", 12),
    ("34612", 11),
]
FAILURES = [(131026, "Message undeliverable"), (131049, "Meta chose not to deliver")]


def contact_number(index: int) -> str:
    prefix, length = NUMBER_PREFIXES[index % len(NUMBER_PREFIXES)]
    width = length - len(prefix)
    return prefix + str(index % 10**width).zfill(width)


def _envelope(value: dict) -> bytes:
    value = {"messaging_product": "whatsapp", "metadata": BUSINESS} | value
    change = {"field": "messages", "value": value}
    entry = {"id": "102290129340398", "changes": [change]}
    return orjson.dumps({"object": "whatsapp_business_account", "entry": [entry]})


def _status(message_id: str, wa_id: str, status: str, at: int, rng: random.Random) -> dict:
    item = {"id": message_id, "status": status, "timestamp": str(at), "recipient_id": wa_id}
    if status in ("sent", "delivered"):
        item["conversation"] = {"id": f"c{rng.getrandbits(40):x}", "origin": {"type": "marketing"}}
        item["pricing"] = {"billable": True, "pricing_model": "CBP", "category": "marketing"}
    if status == "failed":
        code, title = rng.choice(FAILURES)
        item["errors"] = [{"code": code, "title": title}]
    return item


def _reply(message_id: str, wa_id: str, at: int) -> dict:
    return {
        "contacts": [{"profile": {"name": "Customer"}, "wa_id": wa_id}],
        "messages": [
            {
                "from": wa_id,
                "id": message_id,
                "timestamp": str(at),
                "type": "text",
                "text": {"body": "Yes please, tell me more about the offer"},
            }
        ],
    }


def campaign(events: int, seed: int = 1, start: int = 1_795_000_000) -> Iterator[bytes]:
    """Signed-ready Cloud API bodies carrying about ``events`` events, one event each."""
    rng = random.Random(seed)
    produced, index = 0, 0
    while produced < events:
        wa_id = contact_number(index % max(events // 8, 1))
        message_id = f"wamid.bench.{seed}.{index}"
        at = start + index // 50
        outcome = rng.random()
        statuses = ["sent", "failed"] if outcome < 0.03 else ["sent", "delivered"]
        if outcome >= 0.03 and outcome < 0.7:
            statuses.append("read")
        for offset, status in enumerate(statuses):
            if produced >= events:
                return
            yield _envelope({"statuses": [_status(message_id, wa_id, status, at + offset, rng)]})
            produced += 1
        if outcome > 0.85 and produced < events:
            yield _envelope(_reply(f"wamid.bench.{seed}.{index}.r", wa_id, at + 30))
            produced += 1
        index += 1
