-- One row per campaign (the CRM's campaign id): what its messages brought, from sent to
-- delivered, read, replied and clicked, the failures by error code and the contacts who stopped
-- marketing messages, with rates and medians, over all its sends. One send's figures:
-- int_template_sends.
-- Incremental by campaign: the campaigns of the sends whose figures this build may change (those
-- of the day before days_this_run's first day on, and the clicked ones: see
-- template_performance_daily), whole, and those whose stored last send is that recent (a send that
-- left its campaign did so from its own message's time on).
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[
            "campaign_id = any(array("
            "select campaign_id from intermediate.int_template_sends"
            " where sent_date >= (select first_day - 1 from intermediate.days_this_run)"
            " or message_id = any(array(select message_id from intermediate.clicked_sends_this_run))"
            " union all select campaign_id from marts.campaign_funnel"
            " where last_sent_date >= (select first_day - 1 from intermediate.days_this_run)))"
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

clicked_sends_this_run as (
    select * from {{ ref('clicked_sends_this_run') }}
),

sends as (
    select * from {{ ref('int_template_sends') }}
    where
        campaign_id is not null
        {% if is_incremental() %}
            -- An incremental build recomputes the campaigns above, whole. Their sends are read
            -- again through the index on campaign_id: not this import CTE, which Postgres
            -- would materialize whole for two readers.
            and campaign_id = any(array(
                select recent.campaign_id
                from {{ ref('int_template_sends') }} as recent
                where
                    recent.sent_date >= (select days_this_run.first_day - 1 from days_this_run)
                    or recent.message_id = any(array(
                        select clicked_sends_this_run.message_id from clicked_sends_this_run
                    ))
                union all
                select built.campaign_id
                from {{ this }} as built
                where
                    built.last_sent_date
                    >= (select days_this_run.first_day - 1 from days_this_run)
            ))
        {% endif %}
),

counted as (
    select
        campaign_id,
        -- A campaign renamed in the CRM is shown by its latest name.
        (array_agg(campaign_name order by sent_at desc, message_id desc) filter (
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
        min(sent_date) as first_sent_date,
        max(sent_date) as last_sent_date,
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
        first_sent_date,
        last_sent_date,
        first_sent_at,
        last_sent_at
    from counted
)

select * from final
