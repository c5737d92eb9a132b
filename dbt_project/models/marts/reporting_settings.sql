-- What the marts were built with, for the tools that show them: every day and hour in the marts
-- is local to reporting_timezone. One row, replaced by each build.
with

final as (
    select
        '{{ var("reporting_timezone") }}'::text as reporting_timezone,
        now() as built_at
)

select * from final
