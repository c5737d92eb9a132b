-- One row per WhatsApp customer-service conversation (24-hour window after the contact's
-- latest inbound message), with its first response.
{#- The windows open and unanswered when last built are found through the second index;
    expired_conversations_daily reads the recently closed through the third. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[
            "contact_id = any(array(select contact_id from intermediate.contacts_this_run"
            " union all select contact_id from marts.conversations where not is_answered"
            " and not is_expired_unanswered and closed_at <= now()))"
        ],
        on_schema_change='fail',
        indexes=[
            {'columns': ['contact_id']},
            {'columns': ['is_answered', 'is_expired_unanswered', 'closed_at']},
            {'columns': ['closed_at']},
        ],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

conversations as (
    select * from {{ ref('int_conversations_windowed') }}
    {% if is_incremental() %}
        -- An incremental build recomputes, whole, the contacts whose messages changed
        -- (contacts_this_run) and those with a window closed unanswered since the last build,
        -- which expires now.
        where contact_id = any(array(
            select contacts_this_run.contact_id from contacts_this_run
            union all
            select built.contact_id from {{ this }} as built
            where
                not built.is_answered
                and not built.is_expired_unanswered
                and built.closed_at <= now()
        ))
    {% endif %}
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
