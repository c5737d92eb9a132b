"""Enrichment: a step per ``channel_type`` that adds derived properties to an event.

Web analytics enriches events from the user agent and the IP address (device, geo). WhatsApp
events carry neither, so the seed design skips those enrichers for this channel. A new channel adds
its list of enrichers here; nothing else in the worker changes.
"""

from collections.abc import Callable

from worker.parsing.event import Event

Enricher = Callable[[Event], None]

ENRICHERS: dict[str, tuple[Enricher, ...]] = {
    # No user agent or client IP on WhatsApp: the user-agent and geo-IP enrichers are skipped.
    "whatsapp": (),
}


def enrich(event: Event) -> Event:
    """Run the channel's enrichers on ``event`` (in place) and return it."""
    for enricher in ENRICHERS.get(event.channel_type, ()):
        enricher(event)
    return event
