{#- Contacts with events that arrived since the last build of {{ this }} (its watermark, less
    the lookback window, var incremental_lookback_hours, which covers batches committed out of
    order), and
    contacts an event left since then (raw.contact_revisions: a report that comes first moved
    it to another contact). Late and out-of-order events arrive with a new loaded_at, however
    old their occurred_at, so every contact whose history changed is recomputed in full. -#}
{% macro touched_contacts() %}
    {%- set since -%}
        {{ build_watermark() }} - interval '{{ var("incremental_lookback_hours") }} hours'
    {%- endset %}
    select events.user_id as contact_id
    from {{ source('whatsapp', 'events') }} as events
    where events.loaded_at > {{ since }}
    union
    select revisions.user_id as contact_id
    from {{ source('whatsapp', 'contact_revisions') }} as revisions
    where revisions.revised_at > {{ since }}
{% endmacro %}

{#- When the latest event of each contact was loaded (only touched contacts in incremental
    runs): joined into incremental marts, it limits them to those contacts and is the
    watermark the next run starts from. -#}
{% macro contact_loads() %}
    select
        user_id as contact_id,
        max(loaded_at) as loaded_at
    from {{ source('whatsapp', 'events') }}
    where {{ only_touched_contacts('user_id') }}
    group by user_id
{% endmacro %}

{#- The condition that keeps only touched contacts in incremental runs (true otherwise). Written
    as `= any(array(...))`, not `in (...)`: the planner turns IN into a join that stays above
    views and window functions, but pushes this one down to the index on the contact. -#}
{% macro only_touched_contacts(column) -%}
    {%- if is_incremental() -%}
        {{ column }} = any(array({{ touched_contacts() }}))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
