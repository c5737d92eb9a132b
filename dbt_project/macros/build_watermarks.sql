{#- How far each per-contact model has read raw.events: its last build's high-water mark of
    loaded_at. Kept apart from the model's rows: a contact who never writes in (a campaign's
    recipient) adds no conversation, response or business contact, so the rows' own latest
    loaded_at would lag behind what was read, and each build would recompute more contacts than
    changed. Created by on-run-start; written by each per-contact model's post-hook. -#}
{% macro create_build_watermarks() %}
    create schema if not exists intermediate;
    create table if not exists intermediate.build_watermarks (
        model_name text primary key,
        loaded_until timestamptz not null
    );
    {#- When the model was last built (changed_contacts.sql): added after the table. -#}
    alter table intermediate.build_watermarks add column if not exists built_at timestamptz
{% endmacro %}

{#- Pre-hook of a per-contact model, before it reads raw.events: note in the session where the
    next build must start reading. A row's loaded_at is its transaction's start (now()), and it
    shows only once that transaction commits, so every row this build cannot see is loaded at
    or after the start of the oldest transaction open now (or now, if none): the next build
    reads from there. Nothing committed late is missed, and a build re-reads only what arrived
    during the one before it. A session hidden from this role (another role, without
    pg_read_all_stats) might be writing: then incremental_lookback_hours before now. -#}
{% macro note_read_from() %}
    select set_config('wa.read_from', (
        select least(
            clock_timestamp(),
            min(activity.xact_start),
            max(clock_timestamp() - interval '{{ var("incremental_lookback_hours") }} hours')
            filter (where activity.state is null)
        )::text
        from pg_stat_activity as activity
        where
            activity.datname = current_database()
            and activity.backend_type = 'client backend'
            and activity.pid != pg_backend_pid()
    ), false)
{% endmacro %}

{#- Post-hook: record the point note_read_from noted, and clear it (the connection serves the
    next model). Without one (a model that lacks the pre-hook), the latest loaded_at less the
    lookback. -#}
{% macro record_build_watermark() %}
    {#- A view (a per-contact model's rows read through another's) reads nothing itself. -#}
    {%- if config.get('materialized') == 'view' %}{{ return('') }}{% endif -%}
    {%- set read_until -%}
        coalesce(
            nullif(current_setting('wa.read_from', true), '')::timestamptz,
            (
                select max(events.loaded_at)
                from {{ source('whatsapp', 'events') }} as events
            ) - interval '{{ var("incremental_lookback_hours") }} hours',
            '-infinity'::timestamptz
        )
    {%- endset %}
    {{ record_watermark(read_until) }};
    select set_config('wa.read_from', '', false)
{% endmacro %}

{#- Set {{ this }}'s row of intermediate.build_watermarks to `value` (SQL), built now. -#}
{% macro record_watermark(value) %}
    insert into intermediate.build_watermarks (model_name, loaded_until, built_at)
    select '{{ this.schema }}.{{ this.identifier }}', {{ value }}, now()
    on conflict (model_name) do update
    set loaded_until = excluded.loaded_until, built_at = excluded.built_at
{% endmacro %}

{#- {{ this }}'s recorded watermark (null before its first recorded build). -#}
{% macro recorded_watermark() %}
    (
        select watermarks.loaded_until
        from intermediate.build_watermarks as watermarks
        where watermarks.model_name = '{{ this.schema }}.{{ this.identifier }}'
    )
{% endmacro %}

{#- Where an incremental build of {{ this }} starts reading: its recorded watermark, else (the
    first build after an upgrade) the latest loaded_at among its rows, less the lookback. -#}
{% macro build_watermark() %}
    coalesce(
        {{ recorded_watermark() }},
        (select max(built.loaded_at) from {{ this }} as built)
        - interval '{{ var("incremental_lookback_hours") }} hours',
        '-infinity'::timestamptz
    )
{% endmacro %}
