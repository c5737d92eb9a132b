"""HMAC-SHA256 webhook signatures, as Meta sends them in ``X-Hub-Signature-256``."""

import hashlib
import hmac

PREFIX = "sha256="


def sign(body: bytes, secret: str) -> str:
    """The header a sender puts on ``body``: ``sha256=<hex HMAC-SHA256 keyed with secret>``."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_valid(body: bytes, secret: str, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body``; compared in constant time."""
    if not header or not secret:
        return False
    # Hex is case-insensitive; compare_digest needs equal-length ASCII, so normalise first.
    return hmac.compare_digest(
        sign(body, secret).encode(), header.strip().lower().encode("ascii", "replace")
    )


def constant_time_equal(given: str, expected: str) -> bool:
    """String equality that takes as long whatever the first difference (for tokens)."""
    return hmac.compare_digest(given.encode(), expected.encode())
