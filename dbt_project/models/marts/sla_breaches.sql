-- Every wait that broke its promised response time (seed sla_targets, in opening hours): one
-- row per wait, answered late or still open past its target at the build, with the contact,
-- the agent who answered (null while open) and how late, in opening seconds. The rows behind
-- sla_attainment_daily's breached figures. Incremental: a build replaces the answered breaches
-- of the contacts it recomputes, and every open one (open waits are judged at each build).
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["is_open or contact_id = any(array(select contact_id from intermediate.contacts_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['activity_date']}, {'columns': ['contact_id']}, {'columns': ['is_open']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

answered as (
    select * from {{ ref('int_sla_waits_answered') }}
    where
        not is_within_target
        {% if is_incremental() %}
            -- An incremental build recomputes the contacts whose messages changed
            -- (contacts_this_run), whole.
            and contact_id = any(array(select contacts_this_run.contact_id from contacts_this_run))
        {% endif %}
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
