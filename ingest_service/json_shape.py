"""Whole-body limits a parsed delivery must keep (wa_analytics/core/limits.py): nesting and
unique keys.

Both run on every delivery, so each starts with a check in C that settles the common case and
walks the payload in Python only when that check cannot.
"""

import json

import orjson

from wa_analytics.core.limits import MAX_NESTING


def shape_refusal(body: bytes, payload: object) -> str | None:
    """Why a parsed body breaks the contract's shape, or None if it keeps it."""
    if nesting_depth(body, payload) > MAX_NESTING:
        return f"JSON nested deeper than {MAX_NESTING} levels"
    if (key := duplicate_key(body, payload)) is not None:
        return f"duplicate key {key[:64]!r} in a JSON object; each key may appear once"
    return None


def nesting_depth(body: bytes, payload: object) -> int:
    """How deeply ``payload`` nests arrays and objects (a scalar is 0), or, when that is at most
    the limit, possibly a larger number no larger than the limit.

    A body with no more brackets than the limit cannot nest deeper than it: counting them is a
    pass in C, and settles nearly every delivery without walking the tree.
    """
    brackets = body.count(b"[") + body.count(b"{")
    if brackets <= MAX_NESTING:
        return brackets
    depth, level = 0, [(payload, 1)]
    while level:
        value, at = level.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        depth = max(depth, at)
        level.extend((inner, at + 1) for inner in value)
    return depth


def duplicate_key(body: bytes, payload: object) -> str | None:
    """A key that some object of ``body`` holds twice, or None.

    The parser keeps the last of two equal keys, so what it checks and what a raw copy keeps
    could differ. Every key is followed by one colon outside strings, and re-serialising the
    parsed payload writes each kept key and each kept string's colons once more; so unless a
    colon is escaped (\\u003a), the body has no more colons than its re-serialised form exactly
    when no key was dropped. That settles it in C; only a body with more colons (a duplicate,
    or a string beside one) is parsed again, by a parser that sees every key.
    """
    if b"\\u003" not in body and body.count(b":") == orjson.dumps(payload).count(b":"):
        return None
    found: list[str] = []

    def keep_pairs(pairs: list[tuple[str, object]]) -> dict:
        kept = dict(pairs)
        if len(kept) < len(pairs) and not found:
            seen: set[str] = set()
            for key, _ in pairs:
                if key in seen:
                    found.append(key)
                    break
                seen.add(key)
        return kept

    json.loads(body, object_pairs_hook=keep_pairs)
    return found[0] if found else None
