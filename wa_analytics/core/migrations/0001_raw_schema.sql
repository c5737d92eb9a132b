-- Raw layer: every accepted delivery verbatim (message text redacted), the standardised events
-- derived from it, and the authentic items that could not be parsed.
create schema if not exists raw;

create table raw.deliveries (
    delivery_id uuid primary key,
    source text not null check (source in ('whatsapp', 'crm')),
    received_at timestamptz not null,
    loaded_at timestamptz not null default now(),
    -- The delivery as received, with message text replaced by its length (see worker/redact.py).
    body jsonb not null
);
create index deliveries_received_at_idx on raw.deliveries (received_at);

create table raw.events (
    -- Deterministic: uuid5 of the dedup key, so a re-derived event gets the same id.
    event_id uuid primary key,
    event_name text not null
        check (event_name in ('message_received', 'message_sent', 'status_updated')),
    channel_type text not null check (channel_type in ('whatsapp')),
    -- The contact's WhatsApp number in E.164, e.g. +16315551234 (personal data).
    user_id text not null,
    message_id text not null,
    -- Only for status_updated: sent | delivered | read | failed | deleted.
    status text,
    occurred_at timestamptz not null,
    received_at timestamptz not null,
    loaded_at timestamptz not null default now(),
    source text not null check (source in ('whatsapp', 'crm')),
    delivery_id uuid not null,
    properties jsonb not null,
    -- The same message (or the same status of it) from a retry or from the other source adds nothing.
    constraint events_dedup_key unique nulls not distinct (message_id, event_name, status),
    constraint events_status_only_on_status_updates
        check ((event_name = 'status_updated') = (status is not null))
);
create index events_loaded_at_idx on raw.events (loaded_at);
create index events_user_occurred_idx on raw.events (user_id, occurred_at);

create table raw.quarantine (
    quarantine_id bigint generated always as identity primary key,
    delivery_id uuid not null,
    source text not null check (source in ('whatsapp', 'crm')),
    received_at timestamptz not null,
    loaded_at timestamptz not null default now(),
    reason text not null,
    -- The part of the delivery that failed (or the whole delivery), message text redacted.
    item jsonb not null,
    -- Identifies the item within its delivery so a retried batch quarantines it once.
    item_path text not null,
    constraint quarantine_item_key unique (delivery_id, item_path)
);
