-- What each template brought, per local day it was sent and business number: the funnel from
-- sent to delivered, read, replied and clicked, the failures by error code and the contacts who
-- stopped marketing messages, with rates and medians. One send's figures: int_template_sends.
-- Incremental by day: a send's figures change with its own message (from days_this_run's first
-- day on), with a reply, an opt-out or the next template to its contact within a day of it (from
-- the day before), and with a click, at any time (the days of clicked_sends_this_run).
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[
            "activity_date >= (select first_day - 1 from intermediate.days_this_run)"
            " or activity_date = any(array(select sent_date from intermediate.int_template_sends"
            " where message_id = any(array(select message_id"
            " from intermediate.clicked_sends_this_run))))"
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

clicked_sends_this_run as (
    select * from {{ ref('clicked_sends_this_run') }}
),

sends as (
    select * from {{ ref('int_template_sends') }}
    where
        template_name is not null
        {% if is_incremental() %}
            -- An incremental build recomputes the days above.
            and (
                sent_date >= (select days_this_run.first_day - 1 from days_this_run)
                -- Read again through its index on message_id: not this import CTE, which
                -- Postgres would materialize whole for two readers.
                or sent_date = any(array(
                    select clicked.sent_date
                    from {{ ref('int_template_sends') }} as clicked
                    where clicked.message_id = any(array(
                        select clicked_sends_this_run.message_id from clicked_sends_this_run
                    ))
                ))
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
