"""The one error a parser raises, and the classes of reasons an item is quarantined for."""

import re


class ParseError(ValueError):
    """Why an item was quarantined, in words an operator can act on."""


# The reason's class, by its first words (the reasons are this worker's own sentences): a short
# fixed set, so that Prometheus can count quarantined items by reason without a series per
# value. First match wins; "other" is a reason this table has not learned yet (a test keeps the
# worker's known bad inputs out of it).
REASON_CLASSES = (
    ("timestamp", r"timestamp |'timestamp' "),
    ("phone_number", r"phone number |WhatsApp id |business-scoped user id "),
    ("too_long_or_large", r".* longer than \d+ characters|.* is outside 0\.\.\d+"),
    ("unknown_event", r"unknown event "),
    ("unknown_status", r"unknown status "),
    (
        "wrong_shape",
        r".* is missing or not |.* are both missing|expected an object "
        r"|.* is not (?:a list|an object|a string|a non-empty string|true or false)"
        r"|body is not ",
    ),
    ("worker_error", r"the worker failed on this delivery"),
    ("refused_by_database", r"PostgreSQL refused "),
)
_CLASSIFY = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in REASON_CLASSES))


def reason_class(reason: str) -> str:
    """The class of a quarantine ``reason`` (one of REASON_CLASSES' names, or "other")."""
    found = _CLASSIFY.match(reason)
    return found.lastgroup if found else "other"
