-- One row per campaign (the CRM's campaign id): what its messages brought, from sent to
-- delivered, read, replied and clicked, the failures by error code and the contacts who stopped
-- marketing messages, with rates and medians, over all its sends. One send's figures:
-- int_template_sends.
-- Incremental by campaign: the campaigns of the sends of the contacts recomputed this run
-- (contacts_this_run) and of the sends on the days from the first this run changed on
-- (days_this_run), which hold every send whose own message changed.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[
            "campaign_id = any(array(select campaign_id from intermediate.int_template_sends"
            " where contact_id = any(array(select contact_id from intermediate.contacts_this_run))"
            " or sent_date >= (select first_day from intermediate.days_this_run)))"
        ],
        on_schema_change='fail',
        indexes=[{'columns': ['campaign_id']}],
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
    recomputed_campaigns as (
        select template_sends.campaign_id
        from template_sends
        where
            template_sends.contact_id
            = any(array(select contacts_this_run.contact_id from contacts_this_run))
            or template_sends.sent_date >= (select days_this_run.first_day from days_this_run)
    ),
{% endif %}

sends as (
    select * from template_sends
    where
        campaign_id is not null
        {% if is_incremental() %}
            -- An incremental build recomputes the campaigns above, whole.
            and campaign_id = any(array(
                select recomputed_campaigns.campaign_id from recomputed_campaigns
            ))
        {% endif %}
),

counted as (
    select
        campaign_id,
        -- A campaign renamed in the CRM is shown by its latest name.
        (array_agg(campaign_name order by sent_at desc) filter (
            where campaign_name is not null
        ))[1] as campaign_name,
        string_agg(distinct template_name, ', ' order by template_name) as template_names,
        count(distinct contact_id) as contacts_sent,
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
        percentile_cont(0.5) within group (order by seconds_to_reply) as median_seconds_to_reply,
        min(sent_at) as first_sent_at,
        max(sent_at) as last_sent_at
    from sends
    group by campaign_id
),

final as (
    select
        campaign_id,
        campaign_name,
        template_names,
        contacts_sent,
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
                group by coalesce(error_code::text, 'unknown')
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
        median_seconds_to_reply,
        first_sent_at,
        last_sent_at
    from counted
)

select * from final
