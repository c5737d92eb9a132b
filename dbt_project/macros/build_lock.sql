{#- on-run-start: one dbt build at a time. The process that starts dbt holds the advisory lock
    var('build_lock_key') on a session of its own for the whole run (wa_analytics/core/dbt.py: dbt
    closes this hook's connection before the first model, and opens one per model, so no lock
    taken here could last the run) and names that session in WA_BUILD_LOCK_SESSION. A build
    whose named session does not hold the lock on this database (dbt started directly, or the
    lock taken on another database) stops here. -#}
{% macro assert_build_lock() %}
    {%- if execute %}
    {%- set holder = env_var('WA_BUILD_LOCK_SESSION', '0') | int %}
    do $$
    begin
        if not exists (
            select 1
            from pg_catalog.pg_locks as locks
            where
                locks.locktype = 'advisory'
                and locks.database = (
                    select databases.oid
                    from pg_catalog.pg_database as databases
                    where databases.datname = current_database()
                )
                and locks.granted
                and locks.classid = 0
                and locks.objid = {{ var('build_lock_key') }}
                and locks.objsubid = 1
                and locks.pid = {{ holder }}
        ) then
            raise exception 'this dbt build does not hold the build lock (another build may be running): run dbt as `wa-analytics dbt build ...` (or run, seed, test), which waits for the running build and holds the lock for the whole run';
        end if;
    end
    $$
    {%- endif %}
{% endmacro %}
