"""Meta's ``user_preferences`` webhook → one ``preference_updated`` event per item: a contact
stopped or resumed a business's marketing messages (docs/webhooks/README.md)."""

import hashlib
from datetime import datetime

from worker.parsing.errors import ParseError
from worker.parsing.event import (
    PREFERENCE_UPDATED,
    Event,
    parse_timestamp,
    require,
)
from worker.parsing.identity import contact_of

PREFERENCES = frozenset({"stop", "resume"})


def preference_event(item: object, received_at: datetime) -> Event:
    """The event of one ``user_preferences`` item. Its ``detail`` (a sentence) is not kept."""
    category = require(item, "category")
    value = item.get("value")
    if type(value) is not str or value not in PREFERENCES:
        raise ParseError("'value' is missing or not 'stop' or 'resume'")
    occurred_at = parse_timestamp(require(item, "timestamp", (str, int)), received_at)
    user_id, props = contact_of(item, "wa_id", "user_id")
    props |= {"direction": "inbound", "preference_category": category, "preference": value}
    event = Event(PREFERENCE_UPDATED, user_id, "", occurred_at, None, props)
    event.message_id = preference_message_id(event)
    return event


def preference_message_id(event: Event) -> str:
    """The id of a preference change, which Meta gives none: the same for a retry of it (the
    unique key dedups), and derived from the ``user_id`` the event keeps, so that with numbers
    hashed it is derived from the pseudonym, never from the number (processing derives it
    again after hashing)."""
    props = event.properties
    seconds = int(event.occurred_at.timestamp())
    fact = f"{event.user_id}|{props['preference_category']}|{props['preference']}|{seconds}"
    return "pref." + hashlib.sha256(fact.encode()).hexdigest()[:40]
