-- One row per WhatsApp customer-service conversation (24-hour window after the contact's
-- latest inbound message), with its first response.
with

{{ recomputed_cte() }}

-- An incremental build recomputes the conversations that changed (changed_contacts.sql), and
-- those whose window closed since the last build.
conversations as (
    {{ rows_to_recompute(ref('int_conversations_windowed'), 'opened_at') }}
),

final as (
    select
        conversation_id,
        contact_id,
        business_phone_number_id,
        first_response_agent_id,
        inbound_messages,
        outbound_messages,
        extract(
            epoch from first_response_at - opened_at
        )::double precision as first_response_seconds,
        first_response_at is not null as is_answered,
        first_response_at is null and closed_at <= now() as is_expired_unanswered,
        {{ to_reporting_time('opened_at') }}::date as opened_date,
        opened_at,
        last_message_at,
        first_response_at,
        closed_at,
        loaded_at
    from conversations
)

select * from final
{{ in_contact_order() }}
