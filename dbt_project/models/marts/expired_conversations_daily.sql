-- Conversations whose 24-hour window closed with no reply, by the local day it closed. Whether
-- a window has closed is decided at this build: a conversation row keeps the
-- is_expired_unanswered of its own last build, which a window closing since then leaves stale.
with

conversations as (
    select * from {{ ref('conversations') }}
),

closed as (
    select
        {{ to_reporting_time('closed_at') }}::date as activity_date,
        not is_answered as is_expired_unanswered
    from conversations
    where closed_at <= now()
),

final as (
    select
        activity_date,
        count(*) as conversations_closed,
        count(*) filter (where is_expired_unanswered) as expired_unanswered,
        count(*) filter (where is_expired_unanswered)::double precision
        / count(*) as expired_unanswered_rate
    from closed
    group by activity_date
)

select * from final
