{#- How fresh the marts are, as the dashboard and the metrics API show it (as_of, built_at):
    each build of the whole project is recorded in audit.dbt_builds by dbt itself, so every way
    of building counts (the transform's schedule, an analyst's `wa-analytics dbt build`).
    on-run-start records the build with the newest raw.events.loaded_at it reads (as_of);
    on-run-end marks it finished, passed when no node errored or failed. A build of part of the
    project (--select, --exclude, a selector other than the transform's rounds, resource types,
    --empty) or a command that builds
    nothing (test, seed) leaves no record: it does not make every mart as fresh as its as_of.
    A build that dies before on-run-end stays unfinished, so it never counts as passed. -#}
{% macro builds_the_marts() %}
    {%- set args = invocation_args_dict %}
    {#- The transform's rounds (selectors.yml: scheduled_round) build every table the marts are
        made of; they leave out only views and tests of views. -#}
    {%- set part_only = args.get('select') or args.get('exclude')
        or args.get('selector') not in (none, 'scheduled_round')
        or args.get('resource_types') or args.get('exclude_resource_types') or args.get('empty') %}
    {{- return(args.get('which') in ('build', 'run') and not part_only) }}
{% endmacro %}

{#- on-run-start: the table (every command creates it, so readers find it after any run), then
    this build's row. Kept to the last day's builds (pruned by on-run-end): a few thousand rows
    at one build every 30 seconds. -#}
{% macro record_build_start() %}
    create schema if not exists audit;
    create table if not exists audit.dbt_builds (
        invocation_id uuid primary key,
        command text not null,
        as_of timestamptz,
        has_passed boolean,
        started_at timestamptz not null,
        finished_at timestamptz
    );
    {#- Added after the table: where the next build starts reading raw.events (run_limits). -#}
    alter table audit.dbt_builds add column if not exists read_until timestamptz;
    {#- The readers' one query: the newest passed build. -#}
    create index if not exists dbt_builds_passed_finished_at_idx
    on audit.dbt_builds (finished_at) where has_passed;
    {%- if execute and builds_the_marts() %}
    insert into audit.dbt_builds (invocation_id, command, as_of, read_until, started_at)
    select
        '{{ invocation_id }}',
        '{{ invocation_args_dict.get("which") }}',
        (select max(events.loaded_at) from {{ source('whatsapp', 'events') }} as events),
        ({{ visible_until() }}),
        now()
    {%- endif %}
{% endmacro %}

{#- Up to where this build sees every row of raw.events, before any model reads it. A row's
    loaded_at is its transaction's start (now()), and it shows only once that transaction
    commits, so every row the build cannot see is loaded at or after the start of the oldest
    transaction open now (or now, if none): the next build reads from there. Nothing committed
    late is missed, and a build re-reads only what arrived during the one before it. A session
    hidden from this role (another role, without pg_read_all_stats) might be writing: then
    incremental_lookback_hours before now. -#}
{% macro visible_until() %}
    select
        least(
            clock_timestamp(),
            min(activity.xact_start),
            max(clock_timestamp() - interval '{{ var("incremental_lookback_hours") }} hours')
            filter (where activity.state is null)
        )
    from pg_stat_activity as activity
    where
        activity.datname = current_database()
        and activity.backend_type = 'client backend'
        and activity.pid != pg_backend_pid()
{% endmacro %}

{#- on-run-end: this build's outcome from dbt's `results`, and the rows older than a day gone
    (never the newest passed build's: it says how old the marts are however long ago it was). -#}
{% macro record_build_end(results) %}
    {%- if execute and builds_the_marts() %}
    {%- set failed = results | selectattr('status', 'in', ['error', 'fail', 'runtime error'])
        | list %}
    update audit.dbt_builds
    set finished_at = clock_timestamp(), has_passed = {{ 'false' if failed else 'true' }}
    where invocation_id = '{{ invocation_id }}';
    delete from audit.dbt_builds
    where
        started_at < now() - interval '1 day'
        and invocation_id is distinct from (
            select passed.invocation_id
            from audit.dbt_builds as passed
            where passed.has_passed
            order by passed.finished_at desc
            limit 1
        )
    {%- endif %}
{% endmacro %}
