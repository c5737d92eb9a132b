-- One row per outbound message with the first time each status was reported, its failure and
-- its pricing: the raw material of the delivery state machine (message_delivery).
with

status_updates as (
    select * from {{ ref('stg_whatsapp__status_updates') }}
),

pivoted as (
    select
        message_id,
        min(case when status = 'sent' then occurred_at end) as sent_status_at,
        min(case when status = 'delivered' then occurred_at end) as delivered_status_at,
        min(case when status = 'read' then occurred_at end) as read_status_at,
        min(case when status = 'failed' then occurred_at end) as failed_status_at,
        max(pricing_category) as pricing_category,
        max(pricing_model) as pricing_model,
        max(error_code) filter (where status = 'failed') as error_code,
        max(error_title) filter (where status = 'failed') as error_title,
        bool_or(is_billable) as is_billable,
        max(loaded_at) as loaded_at
    from status_updates
    group by message_id
)

select * from pivoted
