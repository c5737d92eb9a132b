{#- Settings for one model's transaction (dbt_project.yml says why). -#}
{% macro model_session_settings() %}
    set local enable_nestloop = off;
    set local jit = off;
    set local work_mem = '{{ var("model_work_mem") }}'
{% endmacro %}

{#- Fresh tables have no statistics until autovacuum's turn, and the next model plans with them;
    an incremental build changes a few percent of the rows, for which autovacuum suffices. -#}
{% macro analyze_when_rebuilt() %}
    {%- if not is_incremental() and config.get('materialized') != 'view' -%}
        analyze {{ this }}
    {%- endif -%}
{% endmacro %}
