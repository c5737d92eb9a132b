{#- Daily aggregates rebuilt by the days that changed, not in full.

    A per-contact model with `meta: {changed_days: [columns]}` records, in each incremental
    build, the days (those columns' values) of the rows it deleted or added; unchanged rows are
    left as they are (see delete_insert.sql), so a new event at the end of a contact's history
    marks its own day, not every day of that history. A full build of it records one row with no
    day: everything changed.

    A daily model with `meta: {days_from: {model: ..., column: ...}}` recomputes only the days
    its upstream recorded since its own last build (its mark in intermediate.build_watermarks,
    set to the time of each build), and all days when the upstream was rebuilt or it has no
    mark. Its delete+insert replaces exactly those days. -#}
{% macro create_changed_days() %}
    create table if not exists intermediate.changed_days (
        model_name text not null,
        day date,
        changed_at timestamptz not null default now()
    );
    create index if not exists changed_days_model_changed_at_idx
    on intermediate.changed_days (model_name, changed_at);
    {{ forget_what_was_read('intermediate.changed_days', 'days_from', 'loaded_until') }}
{% endmacro %}

{#- Delete from `table` the records every model that reads it (meta `reader_key`) has read:
    those from before the earliest of their marks (`mark`, a build_watermarks column). -#}
{% macro forget_what_was_read(table, reader_key, mark) %}
    {%- set readers = models_with_meta(reader_key) %}
    {%- if readers %}
    delete from {{ table }}
    where changed_at < (
        select min(marks.{{ mark }})
        from intermediate.build_watermarks as marks
        where marks.model_name in ('{{ readers | join("', '") }}')
    )
    {%- endif %}
{% endmacro %}

{#- Post-hook of a daily model: the next build reads the upstream's days recorded after this. -#}
{% macro record_days_mark() %}
    {{ record_watermark('now()') }}
{% endmacro %}

{#- Post-hook of a per-contact model: after a full build, every day (meta changed_days) and
    every contact (meta changed_contacts, changed_contacts.sql) of it changed: a record with
    neither. -#}
{% macro record_rebuilt() %}
    {%- set meta = config.get('meta') -%}
    {%- if execute and meta is mapping and not is_incremental() -%}
        {%- for key in ('changed_days', 'changed_contacts') if meta.get(key) %}
        insert into intermediate.{{ key }} (model_name) values ('{{ this.schema }}.{{ this.identifier }}');
        {%- endfor %}
    {%- endif -%}
{% endmacro %}

{#- SQL in a data-modifying CTE chain: record the days of the rows `rows_cte` returned. -#}
{% macro insert_changed_days(target, rows_cte, columns) %}
    insert into intermediate.changed_days (model_name, day)
    select distinct '{{ target.schema }}.{{ target.identifier }}', changed.day
    from {{ rows_cte }}
    cross join lateral (
        values {% for column in columns %}({{ rows_cte }}.{{ column }}){{ "," if not loop.last }}{% endfor %}
    ) as changed (day)
    where changed.day is not null
{% endmacro %}

{%- macro days_upstream() -%}
    {%- set days_from = config.get('meta')['days_from'] -%}
    {%- set upstream = ref(days_from['model']) -%}
    {{ return((upstream, upstream.schema ~ '.' ~ upstream.identifier, days_from['column'])) }}
{%- endmacro -%}

{#- True when this daily model must recompute every day: its upstream was rebuilt since its
    last build, or it has no mark (first incremental build after an upgrade). -#}
{% macro all_days_changed() %}
    {%- set upstream, upstream_name, column = days_upstream() -%}
    (
        {{ recorded_watermark() }} is null
        or exists (
            select 1
            from intermediate.changed_days as changed
            where
                changed.model_name = '{{ upstream_name }}'
                and changed.day is null
                and changed.changed_at > {{ recorded_watermark() }}
        )
    )
{% endmacro %}

{#- The days to recompute: recorded since the last build, or every day of the upstream. -#}
{% macro changed_days() %}
    {%- set upstream, upstream_name, column = days_upstream() -%}
    select changed.day
    from intermediate.changed_days as changed
    where
        changed.model_name = '{{ upstream_name }}'
        and changed.day is not null
        and changed.changed_at > {{ recorded_watermark() }}
    union
    select distinct upstream.{{ column }}
    from {{ upstream }} as upstream
    where {{ all_days_changed() }}
{% endmacro %}

{#- The filter on the upstream's rows in a daily model (true in full builds). `= any(array())`
    reaches the upstream's index on the day. -#}
{% macro only_changed_days() -%}
    {%- if is_incremental() -%}
        {%- set upstream, upstream_name, column = days_upstream() -%}
        {{ column }} = any(array({{ changed_days() }}))
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The tables ("schema.alias") of the models whose meta has `key` (none while dbt parses). -#}
{% macro models_with_meta(key) %}
    {%- set found = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and (node.config.meta or {}).get(key) -%}
                {%- do found.append(node.schema ~ '.' ~ node.alias) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(found) }}
{% endmacro %}
