"""Millions of events straight into ``raw.events`` for the dbt measurement, made by Postgres.

Each exchange is five events: a contact writes, an agent answers (the CRM's message.sent), and
Meta reports sent, delivered and read. One answer in ten is a campaign's template (charged), one
contact message in twenty comes from a click-to-WhatsApp ad. Contacts come back every few days;
replies take from seconds to hours. Going through the webhooks would take longer than the
measurement itself.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

EVENTS_PER_EXCHANGE = 5

INSERT = """
insert into raw.events (
    event_id, event_name, channel_type, user_id, message_id, status, occurred_at, received_at,
    loaded_at, source, delivery_id, properties
)
select
    md5(x.event_name || '|' || x.message_id || '|' || coalesce(x.status, ''))::uuid,
    x.event_name, 'whatsapp', x.user_id, x.message_id, x.status, x.occurred_at,
    x.occurred_at + interval '1 second',
    coalesce(%(loaded_at)s, x.occurred_at + interval '1 minute'), x.source,
    md5('delivery|' || x.exchange || '|' || x.kind)::uuid,
    jsonb_strip_nulls(jsonb_build_object(
        'direction', case when x.kind = 0 then 'inbound' else 'outbound' end,
        'message_type', case when x.kind <= 1 then 'text' end,
        'content_length', case when x.kind <= 1 then 12 + x.exchange %% 80 end,
        'has_media', case when x.kind <= 1 then x.exchange %% 9 = 0 end,
        'agent_id', case when x.kind = 1 then 'agent-' || x.exchange %% 12 end,
        'status', x.status,
        'pricing_category', case when x.kind in (2, 3) then
            case when x.exchange %% 10 = 0 then 'marketing' else 'service' end end,
        'pricing_type', case when x.kind in (2, 3) then
            case when x.exchange %% 10 = 0 then 'regular' else 'free_customer_service' end end,
        'is_billable', case when x.kind in (2, 3) then x.exchange %% 10 = 0 end,
        'contact_region', 'US',
        'template_name', case when x.kind = 1 and x.exchange %% 10 = 0 then 'spring_sale' end,
        'campaign_id', case when x.kind = 1 and x.exchange %% 10 = 0
            then 'cmp-' || x.exchange / 100000 end,
        'referral_source_id', case when x.kind = 0 and x.exchange %% 20 = 1
            then 'ad-' || x.exchange %% 7 end,
        'business_phone_number_id', '106540352242922',
        'source', x.source
    ))
from (
    select
        e.exchange, e.kind,
        (array['message_received', 'message_sent', 'status_updated', 'status_updated',
               'status_updated'])[e.kind + 1] as event_name,
        (array[null, null, 'sent', 'delivered', 'read'])[e.kind + 1] as status,
        case when e.kind = 1 then 'crm' else 'whatsapp' end as source,
        '+1555' || lpad(((e.exchange * 7919) %% %(contacts)s)::text, 7, '0') as user_id,
        'wamid.synthetic.' || case when e.kind = 0 then 'in.' else 'out.' end || e.exchange
            as message_id,
        %(start)s::timestamptz
            + make_interval(secs => e.exchange * %(spacing)s)
            + case e.kind
                when 0 then interval '0 seconds'
                else make_interval(secs => 20 + (e.exchange * 37) %% 5400 + (e.kind - 1) * 30)
            end as occurred_at
    from (
        select i / 5 as exchange, (i %% 5)::int as kind
        from generate_series(%(first)s::bigint, %(last)s::bigint) as i
    ) as e
) as x
"""


def insert_events(
    conn: psycopg.Connection,
    first: int,
    count: int,
    contacts: int,
    start,
    spacing_seconds: float,
    loaded_at=None,
) -> None:
    """Events number ``first`` to ``first + count - 1`` of the synthetic stream, loaded at
    ``loaded_at``, or (None) a minute after each happened, as a pipeline that keeps up does."""
    conn.execute(
        INSERT,
        {
            "first": first,
            "last": first + count - 1,
            "contacts": contacts,
            "start": start,
            "spacing": spacing_seconds,
            "loaded_at": loaded_at,
        },
    )


@dataclass(frozen=True)
class History:
    """The synthetic stream of a bench database: its contacts, and when its exchanges happen."""

    contacts: int
    start: datetime
    spacing_seconds: float

    @classmethod
    def for_events(cls, events: int, now: datetime, days: int = 90) -> "History":
        """``events`` events over the ``days`` days before yesterday, one contact for every 20
        events (10 million events: 500,000 contacts)."""
        exchanges = max(1, events // EVENTS_PER_EXCHANGE)
        return cls(max(100, events // 20), now - timedelta(days=days + 1), days * 86400 / exchanges)

    def insert(self, conn: psycopg.Connection, first: int, count: int, loaded_at=None) -> None:
        insert_events(conn, first, count, self.contacts, self.start, self.spacing_seconds,
                      loaded_at)  # fmt: skip
