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
        {{ replace_changed_rows(target, source, unique_key, dest_columns, meta.get('changed_days', [])) }}
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
    leave the rest, and record the days of what was deleted or inserted. One statement: both
    sides are compared with the same snapshot of the stored rows, read once. Each row's
    loaded_at is its own events', so an unchanged row compares equal. -#}
{% macro replace_changed_rows(target, source, key, dest_columns, day_columns) %}
    {%- set names = dest_columns | map(attribute="name") | map("string") | list -%}
    {%- set dest_cols_csv = get_quoted_csv(names) %}
    with
    stored as materialized (
        select
            dbt_internal_dest.ctid as stored_row,
            {{ dest_cols_csv }}
        from {{ target }} as dbt_internal_dest
        where dbt_internal_dest.{{ key }} = any(array({{ touched_keys(key) }}))
    ),

    deleted as (
        delete from {{ target }} as dbt_internal_dest
        where dbt_internal_dest.ctid = any(array(
            select stored.stored_row
            from stored
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
            from stored
            where {{ same_row('fresh', 'stored', key, names) }}
        )
        returning *
    ),

    changed_rows as (
        select * from deleted
        union all
        select * from added
    )

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
