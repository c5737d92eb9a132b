-- From which local day the daily models recompute: the day of the earliest row this build may
-- have changed (recompute_from; null when nothing changed). A contact's history is a timeline,
-- whose messages before their earliest change (contacts_this_run) are as they were: so are the
-- conversations and waits that ended before it. Their rows change from the first conversation
-- or wait still open then on, in the timeline as rebuilt, which starts the same.
with

contacts as (
    select * from {{ ref('contacts_this_run') }}
),

conversations as (
    select * from {{ ref('int_conversations_windowed') }}
    where contact_id = any(array(select contacts.contact_id from contacts))
),

waits as (
    select * from {{ ref('int_waits_paired') }}
    where contact_id = any(array(select contacts.contact_id from contacts))
),

changed_since as (
    select changed_from as changed_since
    from contacts

    union all

    select conversations.opened_at
    from contacts
    inner join conversations
        on
            contacts.contact_id = conversations.contact_id
            and contacts.changed_from > conversations.opened_at
            and contacts.changed_from <= conversations.closed_at

    union all

    select waits.waiting_since
    from contacts
    inner join waits
        on
            contacts.contact_id = waits.contact_id
            and contacts.changed_from > waits.waiting_since
            and (contacts.changed_from <= waits.responded_at or waits.responded_at is null)
),

final as (
    select
        min(changed_since) as recompute_from,
        {{ to_reporting_time('min(changed_since)') }}::date as first_day
    from changed_since
)

select * from final
