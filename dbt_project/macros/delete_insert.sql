{#- dbt's delete+insert, with the delete written as `= any(array(...))` for a single-column key:
    the rows to replace are then found through the index on the key, even in models that run
    with nested loops disabled (an `in (...)` there becomes a hash join over the whole table).
    Models keyed by contact delete every touched contact, not only those with new rows, so that
    a row that no longer follows from the data does not outlive its recomputation. Models that
    record their changed days (changed_days.sql) replace only the rows that differ; daily
    models fed by them replace the changed days. -#}
{% macro postgres__get_delete_insert_merge_sql(
    target, source, unique_key, dest_columns, incremental_predicates
) -%}
    {%- set meta = config.get('meta', {}) -%}
    {%- if unique_key == 'contact_id' and meta.get('changed_days') -%}
        {{ replace_changed_rows(target, source, dest_columns, meta['changed_days']) }}
    {%- elif unique_key is string -%}
        {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute="name")) -%}
        delete from {{ target }} as dbt_internal_dest
        where
        {%- if meta.get('days_from') %}
            {#- Every changed day, including one whose rows all went away. #}
            {{ all_days_changed() }}
            or {{ unique_key }} = any(array({{ changed_days() }}))
        {%- else %}
            {{ unique_key }} = any(array(
            {%- if unique_key == 'contact_id' %}
                {#- Every contact that was recomputed, including one whose rows all went away. #}
                {{ touched_contacts() }}
            {%- else %}
                select distinct {{ unique_key }} from {{ source }}
            {%- endif %}
            ))
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

{#- The touched contacts' rows: delete those the recomputation no longer gives, insert those it
    gives anew, leave the rest, and record the days of what was deleted or inserted. Rows are
    compared whole, by a hash of their text. -#}
{% macro replace_changed_rows(target, source, dest_columns, day_columns) %}
    {%- set names = dest_columns | map(attribute="name") | map("string") | list -%}
    {%- set dest_cols_csv = get_quoted_csv(names) -%}
    with
    recomputed as (
        select {{ row_hash('fresh', names) }} as row_hash
        from {{ source }} as fresh
    ),

    deleted as (
        delete from {{ target }} as dbt_internal_dest
        where
            dbt_internal_dest.contact_id = any(array({{ touched_contacts() }}))
            and {{ row_hash('dbt_internal_dest', names) }} not in (select row_hash from recomputed)
        returning dbt_internal_dest.*
    )

    {{ insert_changed_days(target, 'deleted', day_columns) }};

    with
    kept as (
        select {{ row_hash('stored', names) }} as row_hash
        from {{ target }} as stored
        where stored.contact_id = any(array({{ touched_contacts() }}))
    ),

    added as (
        insert into {{ target }} ({{ dest_cols_csv }})
        select {{ dest_cols_csv }}
        from {{ source }} as fresh
        where {{ row_hash('fresh', names) }} not in (select row_hash from kept)
        returning *
    )

    {{ insert_changed_days(target, 'added', day_columns) }}
{% endmacro %}

{% macro row_hash(alias, names) -%}
    md5(row(
        {%- for name in names %}{{ alias }}.{{ adapter.quote(name) }}{{ ", " if not loop.last }}{% endfor -%}
    )::text)
{%- endmacro %}
