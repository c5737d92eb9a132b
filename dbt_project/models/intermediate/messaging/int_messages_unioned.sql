-- Every message of every contact, inbound and outbound, each once, with the time it counts at.
with

messages as (
    select * from {{ ref('stg_whatsapp__messages') }}
    where {{ only_touched_contacts('contact_id') }}
),

outbound_messages as (
    select * from {{ ref('int_outbound_messages_unioned') }}
    where {{ only_touched_contacts('contact_id') }}
),

inbound as (
    select
        message_id,
        contact_id,
        null as agent_id,
        business_phone_number_id,
        'inbound' as direction,
        occurred_at,
        loaded_at
    from messages
    where direction = 'inbound'
),

outbound as (
    select
        message_id,
        contact_id,
        agent_id,
        business_phone_number_id,
        'outbound' as direction,
        sent_at as occurred_at,
        loaded_at
    from outbound_messages
),

final as (
    select * from inbound
    union all
    select * from outbound
)

select * from final
