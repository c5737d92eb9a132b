{#- dbt's delete+insert, with the delete written as `= any(array(...))` for a single-column key:
    the rows to replace are then found through the index on the key, even in models that run
    with nested loops disabled (an `in (...)` there becomes a hash join over the whole table).
    Models keyed by contact or message replace only the rows of the touched contacts or messages
    (touched_contacts.sql) that differ from their recomputation (a new event rewrites its own
    rows, not the contact's whole history), and record the days of those rows where asked
    (changed_days.sql); daily models fed by them replace the changed days. -#}
{% macro postgres__get_delete_insert_merge_sql(
    target, source, unique_key, dest_columns, incremental_predicates
) -%}
    {%- set meta = config.get('meta', {}) -%}
    {%- if unique_key in ('contact_id', 'message_id') -%}
        {{ replace_changed_rows(target, source, unique_key, dest_columns, meta) }}
    {%- elif unique_key is string -%}
        {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute="name")) -%}
        delete from {{ target }} as dbt_internal_dest
        where
        {%- if meta.get('days_from') %}
            {#- Every changed day, including one whose rows all went away. #}
            (
                {{ all_days_changed() }}
                or {{ unique_key }} = any(array({{ changed_days() }}))
            )
        {%- else %}
            {{ unique_key }} = any(array(select distinct {{ unique_key }} from {{ source }}))
        {%- endif %}
        {%- for predicate in incremental_predicates or [] %}
            and {{ predicate }}
        {%- endfor %};

        insert into {{ target }} ({{ dest_cols_csv }})
        (
            select {{ dest_cols_csv }}
            from {{ source }}
        )
    {%- else -%}
        {{ default__get_delete_insert_merge_sql(
            target, source, unique_key, dest_columns, incremental_predicates
        ) }}
    {%- endif -%}
{%- endmacro %}

{#- The rows of the touched contacts or messages (`key`): delete those the recomputation no
    longer gives (a contact whose rows all went away included), insert those it gives anew,
    leave the rest, and record the days (meta changed_days) and each contact's earliest time
    (meta changed_contacts) of what was deleted or inserted. A model with meta recompute
    compares only its recomputed contacts' rows that may have changed (changed_contacts.sql),
    on both sides. One statement: both sides are compared with the same snapshot of the stored
    rows, read once. Each row's loaded_at is its own events', so an unchanged row compares
    equal. -#}
{% macro replace_changed_rows(target, source, key, dest_columns, meta) %}
    {%- set names = dest_columns | map(attribute="name") | map("string") | list -%}
    {%- set dest_cols_csv = get_quoted_csv(names) -%}
    {%- set day_columns = meta.get('changed_days', []) -%}
    {%- set recompute = recompute_config() %}
    with
    {%- if recompute %}
    changes as materialized (
        {{ changed_contacts() }}
    ),
    {%- endif %}

    stored_rows as materialized (
        select
            dbt_internal_dest.ctid as stored_row,
            {%- for name in names %}
            dbt_internal_dest.{{ adapter.quote(name) }}{{ "," if not loop.last }}
            {%- endfor %}
        from {{ target }} as dbt_internal_dest
        where dbt_internal_dest.{{ key }} = any(array(
            {%- if recompute %}
            select changes.contact_id from changes
            {%- else %}
            {{ touched_keys(key) }}
            {%- endif %}
        ))
    ),
    {%- if recompute %}

    {{ recomputed_cte(stored_rows='stored_rows') }}

    fresh as (
        select source_rows.*
        from {{ source }} as source_rows
        inner join recomputed on source_rows.contact_id = recomputed.contact_id
        where {{ may_have_changed('source_rows', recompute) }}
    ),

    stored_from_points as (
        select stored_rows.*
        from stored_rows
        inner join recomputed on stored_rows.contact_id = recomputed.contact_id
        where {{ may_have_changed('stored_rows', recompute) }}
    ),
    {%- endif %}
    {%- set source = 'fresh' if recompute else source %}
    {%- set stored = 'stored_from_points' if recompute else 'stored_rows' %}

    deleted as (
        delete from {{ target }} as dbt_internal_dest
        where dbt_internal_dest.ctid = any(array(
            select stored.stored_row
            from {{ stored }} as stored
            where not exists (
                select 1
                from {{ source }} as fresh
                where {{ same_row('fresh', 'stored', key, names) }}
            )
        ))
        returning dbt_internal_dest.*
    ),

    added as (
        insert into {{ target }} ({{ dest_cols_csv }})
        select {{ dest_cols_csv }}
        from {{ source }} as fresh
        where not exists (
            select 1
            from {{ stored }} as stored
            where {{ same_row('fresh', 'stored', key, names) }}
        )
        returning *
    ),

    changed_rows as (
        select * from deleted
        union all
        select * from added
    )
    {%- if meta.get('changed_contacts') %},

    recorded_contacts as (
        {{ insert_changed_contacts(target, 'changed_rows', meta['changed_contacts']) }}
        returning 1
    )
    {%- endif %}

    {% if day_columns | length > 0 %}{{ insert_changed_days(target, 'changed_rows', day_columns) }}
    {%- else %}select count(*) from changed_rows{% endif %}
{% endmacro %}

{#- Two rows are the same when every column is, nulls alike. Hashed on the key, the rest
    compared in the join filter: a contact or message has a few rows, and comparing values
    directly is several times cheaper than hashing each row's text. -#}
{% macro same_row(left, right, key, names) -%}
    {{ left }}.{{ key }} = {{ right }}.{{ key }}
    {%- for name in names if name != key %}
        and {{ left }}.{{ adapter.quote(name) }} is not distinct from {{ right }}.{{ adapter.quote(name) }}
    {%- endfor -%}
{%- endmacro %}
