{#- The incremental strategy `replace_where`, chosen by name in a model's config
    (incremental_strategy='replace_where'; dbt's documented way to add one: a macro named
    get_incremental_<name>_sql). It deletes the stored rows that the model's
    incremental_predicates select, then inserts the rows the model's query returned.

    The predicates name what this run recomputes, from a run-state model (contacts_this_run,
    messages_this_run, days_this_run), and the model's query recomputes exactly those rows.
    dbt's delete+insert would delete only the keys among the new rows: a contact, message or day
    whose rows all went away (a message that moved to another contact) would keep them. The
    predicates name the run-state tables by schema: dbt reads a model's config() when it parses
    it, when ref() there still names the model itself; the query's ref() makes the dependency. -#}
{% macro get_incremental_replace_where_sql(arg_dict) %}
    {%- set predicates = arg_dict['incremental_predicates'] -%}
    {%- if not predicates -%}
        {{ exceptions.raise_compiler_error(
            "replace_where replaces the rows its incremental_predicates select: give some") }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) %}
    delete from {{ arg_dict['target_relation'] }}
    where
    {%- for predicate in predicates %}
        ({{ predicate }}){{ ' and' if not loop.last }}
    {%- endfor %};

    insert into {{ arg_dict['target_relation'] }} ({{ columns }})
    select {{ columns }}
    from {{ arg_dict['temp_relation'] }}
{% endmacro %}
