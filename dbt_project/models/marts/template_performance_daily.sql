-- What each template brought, per local day it was sent and business number: the funnel from
-- sent to delivered, read, replied and clicked, the failures by error code and the contacts who
-- stopped marketing messages, with rates and medians. One send's figures: int_template_sends.
-- Incremental by day: the days from the first this run changed on (days_this_run), which hold
-- every send whose own message changed, and the days of the sends of the contacts recomputed
-- (contacts_this_run), whose replies, clicks and opt-outs may have changed at any later time.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[
            "activity_date >= (select first_day from intermediate.days_this_run)"
            " or activity_date = any(array(select sent_date from intermediate.int_template_sends"
            " where contact_id = any(array(select contact_id from intermediate.contacts_this_run))))"
        ],
        on_schema_change='fail',
        indexes=[{'columns': ['activity_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
days_this_run as (
    select * from {{ ref('days_this_run') }}
),

contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

template_sends as (
    select * from {{ ref('int_template_sends') }}
),

{% if is_incremental() %}
    recomputed_days as (
        select days_this_run.first_day as sent_date
        from days_this_run

        union

        select template_sends.sent_date
        from template_sends
        where
            template_sends.contact_id
            = any(array(select contacts_this_run.contact_id from contacts_this_run))
    ),
{% endif %}

sends as (
    select * from template_sends
    where
        template_name is not null
        {% if is_incremental() %}
            -- An incremental build recomputes the days above.
            and (
                sent_date >= (select days_this_run.first_day from days_this_run)
                or sent_date = any(array(select recomputed_days.sent_date from recomputed_days))
            )
        {% endif %}
),

counted as (
    select
        sent_date as activity_date,
        business_phone_number_id,
        template_name,
        template_language,
        template_category,
        count(*) as messages_sent,
        count(*) filter (where is_delivered) as messages_delivered,
        count(*) filter (where is_read) as messages_read,
        count(*) filter (where is_failed) as messages_failed,
        array_agg(error_code) filter (where is_failed) as failed_error_codes,
        count(*) filter (where is_replied) as messages_replied,
        count(*) filter (where is_clicked) as messages_clicked,
        count(*) filter (where is_opted_out) as opt_outs,
        count(*) filter (where is_resumed) as resumes,
        percentile_cont(0.5) within group (order by seconds_to_read) as median_seconds_to_read,
        percentile_cont(0.5) within group (order by seconds_to_reply) as median_seconds_to_reply
    from sends
    group by 1, 2, 3, 4, 5
),

final as (
    select
        activity_date,
        business_phone_number_id,
        template_name,
        template_language,
        template_category,
        messages_sent,
        messages_delivered,
        messages_read,
        messages_failed,
        -- {"131026": 3, ...}; a failure without a code counts under "unknown".
        (
            select jsonb_object_agg(codes.code, codes.failures)
            from (
                select
                    coalesce(error_code::text, 'unknown') as code,
                    count(*) as failures
                from unnest(failed_error_codes) as error_code
                group by 1
            ) as codes
        ) as failures_by_error_code,
        messages_replied,
        messages_clicked,
        opt_outs,
        resumes,
        messages_delivered::double precision / messages_sent as delivery_rate,
        messages_read::double precision / nullif(messages_delivered, 0) as read_rate,
        messages_replied::double precision / messages_sent as reply_rate,
        messages_clicked::double precision / messages_sent as click_rate,
        opt_outs::double precision / messages_sent as opt_out_rate,
        median_seconds_to_read,
        median_seconds_to_reply
    from counted
)

select * from final
