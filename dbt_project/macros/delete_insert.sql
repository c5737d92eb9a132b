{#- dbt's delete+insert, with the delete written as `= any(array(...))` for a single-column key:
    the rows to replace are then found through the index on the key, even in models that run
    with nested loops disabled (an `in (...)` there becomes a hash join over the whole table).
    Models keyed by contact replace only the rows of the touched contacts that differ from
    their recomputation (a new event rewrites its own rows, not the contact's whole history),
    and record the days of those rows where asked (changed_days.sql); daily models fed by them
    replace the changed days. -#}
{% macro postgres__get_delete_insert_merge_sql(
    target, source, unique_key, dest_columns, incremental_predicates
) -%}
    {%- set meta = config.get('meta', {}) -%}
    {%- if unique_key == 'contact_id' -%}
        {{ replace_changed_rows(target, source, dest_columns, meta.get('changed_days', [])) }}
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

{#- The touched contacts' rows: delete those the recomputation no longer gives (a contact whose
    rows all went away included), insert those it gives anew, leave the rest, and record the
    days of what was deleted or inserted. Rows are compared whole, by a hash of their text;
    each row's loaded_at is its own events', so an unchanged row hashes the same. -#}
{% macro replace_changed_rows(target, source, dest_columns, day_columns) %}
    {#- Anti-joins on (contact, hash), not `not in`: a hashed `not in` that outgrows work_mem
        turns into a scan per row. -#}
    {%- set names = dest_columns | map(attribute="name") | map("string") | list -%}
    {%- set dest_cols_csv = get_quoted_csv(names) -%}
    {%- set record = day_columns | length > 0 %}
    with
    recomputed as (
        select
            fresh.contact_id,
            {{ row_hash('fresh', names) }} as row_hash
        from {{ source }} as fresh
    ),

    deleted as (
        delete from {{ target }} as dbt_internal_dest
        where
            dbt_internal_dest.contact_id = any(array({{ touched_contacts() }}))
            and not exists (
                select 1
                from recomputed
                where
                    recomputed.contact_id = dbt_internal_dest.contact_id
                    and recomputed.row_hash = {{ row_hash('dbt_internal_dest', names) }}
            )
        returning dbt_internal_dest.*
    )

    {% if record %}{{ insert_changed_days(target, 'deleted', day_columns) }}
    {%- else %}select count(*) from deleted{% endif %};

    with
    kept as (
        select
            stored.contact_id,
            {{ row_hash('stored', names) }} as row_hash
        from {{ target }} as stored
        where stored.contact_id = any(array({{ touched_contacts() }}))
    ),

    added as (
        insert into {{ target }} ({{ dest_cols_csv }})
        select {{ dest_cols_csv }}
        from {{ source }} as fresh
        where not exists (
            select 1
            from kept
            where
                kept.contact_id = fresh.contact_id
                and kept.row_hash = {{ row_hash('fresh', names) }}
        )
        returning *
    )

    {% if record %}{{ insert_changed_days(target, 'added', day_columns) }}
    {%- else %}select count(*) from added{% endif %}
{% endmacro %}

{% macro row_hash(alias, names) -%}
    md5(row(
        {%- for name in names %}{{ alias }}.{{ adapter.quote(name) }}{{ ", " if not loop.last }}{% endfor -%}
    )::text)
{%- endmacro %}
