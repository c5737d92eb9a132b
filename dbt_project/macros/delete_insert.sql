{#- dbt's delete+insert, with the delete written as `= any(array(...))` for a single-column key:
    the rows to replace are then found through the index on the key, even in models that run
    with nested loops disabled (an `in (...)` there becomes a hash join over the whole table).
    Models keyed by contact delete every touched contact, not only those with new rows, so that
    a row that no longer follows from the data does not outlive its recomputation. -#}
{% macro postgres__get_delete_insert_merge_sql(
    target, source, unique_key, dest_columns, incremental_predicates
) -%}
    {%- if unique_key is string -%}
        {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute="name")) -%}
        delete from {{ target }} as dbt_internal_dest
        where {{ unique_key }} = any(array(
        {%- if unique_key == 'contact_id' %}
            {#- Every contact that was recomputed, including one whose rows all went away. #}
            {{ touched_contacts() }}
        {%- else %}
            select distinct {{ unique_key }} from {{ source }}
        {%- endif %}
        ))
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
