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
    {%- if execute -%}
        {#- Read once when the model is compiled, and written in as a constant: the planner then
            knows how many events it selects (from loaded_at's statistics) and the query does
            not look it up again at every use. -#}
        {%- set found = run_query("select (" ~ since ~ ")::text") -%}
        {%- set since = "'" ~ found.columns[0].values()[0] ~ "'::timestamptz" -%}
    {%- endif %}
    select events.user_id as contact_id
    from {{ source('whatsapp', 'events') }} as events
    where events.loaded_at > {{ since }}
    union
    select revisions.user_id as contact_id
    from {{ source('whatsapp', 'contact_revisions') }} as revisions
    where revisions.revised_at > {{ since }}
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
