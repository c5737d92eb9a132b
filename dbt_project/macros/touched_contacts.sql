{#- What an incremental build recomputes, by key: the contacts (`contact_id`) or the messages
    (`message_id`) with events that arrived since the last build of {{ this }} could see (its
    watermark, build_watermarks.sql: no batch that committed out of order is missed). Late and out-of-order events arrive with a new loaded_at, however old their
    occurred_at, so every contact or message whose history changed is recomputed in full.

    Contacts also include those an event left since then (raw.contact_revisions: a report that
    comes first moved it to another contact). Messages need no such list: the moved event keeps
    its message id and arrives with a new loaded_at, so its message is recomputed, and the row
    of the contact it left goes with it. Models whose rows each depend on one message's events
    (int_messages_unioned, message_delivery) recompute by message: a new status of an old
    conversation then reads that message's few events, not the contact's whole history. -#}
{% macro touched_keys(key) %}
    {%- set since -%}
        {{ build_watermark() }}
    {%- endset %}
    {%- if execute -%}
        {#- Read once when the model is compiled, and written in as a constant: the planner then
            knows how many events it selects (from loaded_at's statistics) and the query does
            not look it up again at every use. -#}
        {%- set found = run_query("select (" ~ since ~ ")::text") -%}
        {%- set since = "'" ~ found.columns[0].values()[0] ~ "'::timestamptz" -%}
    {%- endif %}
    {%- if key == 'message_id' %}
    select events.message_id
    from {{ source('whatsapp', 'events') }} as events
    where events.loaded_at >= {{ since }}
    {%- elif key == 'contact_id' %}
    select events.user_id as contact_id
    from {{ source('whatsapp', 'events') }} as events
    where events.loaded_at >= {{ since }}
    union
    select revisions.user_id as contact_id
    from {{ source('whatsapp', 'contact_revisions') }} as revisions
    where revisions.revised_at >= {{ since }}
    {%- else %}
    {{ exceptions.raise_compiler_error("incremental models recompute by contact_id or message_id, not " ~ key) }}
    {%- endif %}
{% endmacro %}

{#- The condition that keeps only touched contacts (or messages: `key`) in incremental runs
    (true otherwise). Written as `= any(array(...))`, not `in (...)`: the planner turns IN into
    a join that stays above views and window functions, but pushes this one down to the index
    on the key. -#}
{% macro only_touched(column, key) -%}
    {%- if is_incremental() -%}
        {{ column }} = any(array({{ touched_keys(key) }}))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{% macro only_touched_contacts(column) -%}
    {{ only_touched(column, 'contact_id') }}
{%- endmacro %}

{% macro only_touched_messages(column) -%}
    {{ only_touched(column, 'message_id') }}
{%- endmacro %}

{#- Per-contact tables are written in contact order (the order by that ends their models): an
    incremental build reads a touched contact's rows, and its merge compares them, from one or
    two pages instead of one page a row scattered over the whole table. Rows a merge adds go at
    the end, in the same order. -#}
{% macro in_contact_order() -%}
    order by contact_id
{%- endmacro %}
