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

{% macro record_build_watermark() %}
    {#- A view (a per-contact model's rows read through another's) reads nothing itself. -#}
    {%- if config.get('materialized') == 'view' %}{{ return('') }}{% endif -%}
    {%- set read_until -%}
        (
            select coalesce(max(events.loaded_at), '-infinity'::timestamptz)
            from {{ source('whatsapp', 'events') }} as events
        )
    {%- endset %}
    {{ record_watermark(read_until) }}
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
    first build after an upgrade) the latest loaded_at among its rows. -#}
{% macro build_watermark() %}
    coalesce(
        {{ recorded_watermark() }},
        (select max(built.loaded_at) from {{ this }} as built),
        '-infinity'::timestamptz
    )
{% endmacro %}
