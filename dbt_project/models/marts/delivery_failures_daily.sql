-- Failed outbound messages by the local day they were sent and the error that failed them.
with

message_delivery as (
    select * from {{ ref('message_delivery') }}
    where {{ only_changed_days() }}
),

final as (
    select
        sent_date as activity_date,
        coalesce(error_code, -1) as error_code,
        coalesce(max(error_title), 'unknown') as error_title,
        count(*) as failures
    from message_delivery
    where is_failed
    group by sent_date, coalesce(error_code, -1)
)

select * from final
