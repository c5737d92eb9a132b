-- Which events this build reads: the rows of raw.events loaded at or after read_from, where the
-- last passed build of the whole project could see up to (audit.dbt_builds, macros/build_log.sql),
-- or every row before the first. The other run-state models (*_this_run) say what the
-- incremental models recompute from them.
with

builds as (
    select * from {{ source('audit', 'dbt_builds') }}
),

last_passed as (
    select read_until
    from builds
    where has_passed
    order by finished_at desc
    limit 1
),

this_build as (
    select read_until
    from builds
    where invocation_id = '{{ invocation_id }}'
),

final as (
    select
        {% if flags.FULL_REFRESH %}
            -- A full refresh rebuilds every model whole, and recomputes nothing from here.
            'infinity'::timestamptz as read_from,
        {% else %}
            coalesce(
                (select last_passed.read_until from last_passed), '-infinity'::timestamptz
            ) as read_from,
        {% endif %}
        -- Where the next build reads from, if this one passes. Null in a build of part of the
        -- project (--select), which the next build reads again.
        (select this_build.read_until from this_build) as read_until
)

select * from final
