{#- A timestamptz as local wall-clock time in the reporting time zone (var reporting_timezone). -#}
{% macro to_reporting_time(column) -%}
    ({{ column }} at time zone '{{ var("reporting_timezone") }}')
{%- endmacro %}
