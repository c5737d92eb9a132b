-- Every wait that broke its promised response time (seed sla_targets, in opening hours): one
-- row per wait, answered late or still open past its target at the build, with the contact,
-- the agent who answered (null while open) and how late, in opening seconds. The rows behind
-- sla_attainment_daily's breached figures. A table rebuilt at every build (as its open waits
-- are): a view would be dropped with the tables it reads while dbt rebuilds them.
{{ config(indexes=[{'columns': ['activity_date']}]) }}

with

answered as (
    select * from {{ ref('int_sla_waits_answered') }}
    where not is_within_target
),

open_waits as (
    select * from {{ ref('int_sla_waits_open') }}
    where is_breached
),

breaches as (
    select
        activity_date,
        business_phone_number_id,
        contact_id,
        conversation_id,
        wait_kind,
        agent_id,
        waiting_since,
        responded_at,
        business_seconds,
        target_seconds,
        seconds_late,
        false as is_open,
        response_message_id
    from answered

    union all

    select
        activity_date,
        business_phone_number_id,
        contact_id,
        conversation_id,
        wait_kind,
        null as agent_id,
        waiting_since,
        null as responded_at,
        business_seconds,
        target_seconds,
        seconds_late,
        true as is_open,
        null as response_message_id
    from open_waits
),

final as (
    select * from breaches
)

select * from final
