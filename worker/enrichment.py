"""Enrichment: a step per ``channel_type`` that adds derived properties to an event.

Web analytics enriches events from the user agent and the IP address (device, geo). WhatsApp
events carry neither; their geography is the contact's number (or business-scoped user id),
read before numbers are hashed (processing.derived_rows). A new channel adds its list of
enrichers here; nothing else in the worker changes.
"""

from collections.abc import Callable

from worker.parsing.event import Event
from worker.parsing.identity import region_of

Enricher = Callable[[Event], None]


def contact_region(event: Event) -> None:
    """``contact_region``: the region of the contact's number or BSUID, when it is known."""
    if (region := region_of(event.user_id)) is not None:
        event.properties["contact_region"] = region


ENRICHERS: dict[str, tuple[Enricher, ...]] = {
    # No user agent or client IP on WhatsApp: the user-agent and geo-IP enrichers are skipped.
    "whatsapp": (contact_region,),
}


def enrich(event: Event) -> Event:
    """Run the channel's enrichers on ``event`` (in place) and return it."""
    for enricher in ENRICHERS.get(event.channel_type, ()):
        enricher(event)
    return event
