-- One row per outbound message, whichever source reported it: the CRM's message_sent and/or
-- Meta's status notifications. It counts once, at the earliest time any source reports for it.
with

messages as (
    select * from {{ ref('stg_whatsapp__messages') }}
    where {{ only_touched_contacts('contact_id') }}
),

status_updates as (
    select * from {{ ref('stg_whatsapp__status_updates') }}
    where {{ only_touched_contacts('contact_id') }}
),

inbound_message_ids as (
    select
        message_id,
        contact_id
    from messages
    where direction = 'inbound'
),

reports as (
    select
        message_id,
        contact_id,
        agent_id,
        business_phone_number_id,
        occurred_at,
        loaded_at,
        true as is_reported_sent
    from messages
    where direction = 'outbound'

    union all

    select
        message_id,
        contact_id,
        null as agent_id,
        business_phone_number_id,
        occurred_at,
        loaded_at,
        false as is_reported_sent
    from status_updates
),

final as (
    select
        reports.message_id,
        reports.contact_id,
        max(reports.agent_id) as agent_id,
        max(reports.business_phone_number_id) as business_phone_number_id,
        bool_or(reports.is_reported_sent) as is_reported_sent,
        min(reports.occurred_at) as sent_at,
        max(reports.loaded_at) as loaded_at
    from reports
    -- Statuses only ever describe outbound messages; an id seen inbound is not one.
    where
        not exists (
            select 1
            from inbound_message_ids
            where
                inbound_message_ids.message_id = reports.message_id
                and inbound_message_ids.contact_id = reports.contact_id
        )
    group by reports.message_id, reports.contact_id
)

select * from final
