-- Every raw event with its properties checked and typed: the one place where raw.events' JSON
-- becomes columns. Data from outside never fails a build, so no value is cast before it is
-- checked against the contract (the vars in dbt_project.yml: the numbers of
-- wa_analytics/core/limits.py and the worker's time rule, which the worker applies to new events):
--   * An event whose keys cannot be used is left out of the marts, with exclusion_reason:
--     a message or contact id longer than max_id_length (it would break the indexes on them),
--     or a time it cannot have happened at (before earliest_occurred_at, or more than
--     max_clock_skew after it was received or after the build).
--   * A property that is present but unusable (wrong JSON type, out of range, too long) becomes
--     null and the event still counts; unusable_values names it, with the rule it breaks.
-- The staging models read the usable events; excluded_events reads the rest.
{%- set max_id = var('max_id_length') %}
{%- set max_text = var('max_text_length') %}
{%- set id_rule = 'not a string or number of at most ' ~ max_id ~ ' characters' %}
{%- set text_rule = 'not a string or number of at most ' ~ max_text ~ ' characters' %}
{%- set integer_rule = 'not an integer from 0 to ' ~ var('max_integer') %}
{%- set boolean_rule = 'not true or false' %}
{%- set max_clock_skew = var('max_clock_skew') %}
{#- Properties of issue 22 (costs, templates and campaigns, ads, opt-outs), checked like the ones
    spelled out below: ids and other text. -#}
{%- set more_ids = [
    'context_message_id', 'campaign_id', 'referral_source_id', 'referral_ctwa_clid',
] %}
{%- set more_texts = [
    'pricing_type', 'contact_region', 'template_name', 'template_language', 'template_category',
    'campaign_name', 'referral_source_type', 'referral_source_url', 'referral_headline',
    'preference_category', 'preference',
] %}

with

events as (
    select * from {{ source('whatsapp', 'events') }}
),

typed as (
    select
        event_id,
        message_id,
        user_id,
        delivery_id,
        -- Ids and other text: a JSON string or number of at most max_id_length / max_text_length
        -- characters.
        case
            when
                jsonb_typeof(properties -> 'agent_id') in ('string', 'number')
                and length(properties ->> 'agent_id') <= {{ max_id }}
                then properties ->> 'agent_id'
        end as agent_id,
        case
            when
                jsonb_typeof(properties -> 'business_phone_number_id') in ('string', 'number')
                and length(properties ->> 'business_phone_number_id') <= {{ max_id }}
                then properties ->> 'business_phone_number_id'
        end as business_phone_number_id,
        case
            when
                jsonb_typeof(properties -> 'conversation_id') in ('string', 'number')
                and length(properties ->> 'conversation_id') <= {{ max_id }}
                then properties ->> 'conversation_id'
        end as conversation_id,
        -- Other identifiers of the contact, Meta's statements that they are one person
        -- (int_contact_links).
        case
            when
                jsonb_typeof(properties -> 'contact_user_id') in ('string', 'number')
                and length(properties ->> 'contact_user_id') <= {{ max_id }}
                then properties ->> 'contact_user_id'
        end as contact_user_id,
        case
            when
                jsonb_typeof(properties -> 'changed_to_user_id') in ('string', 'number')
                and length(properties ->> 'changed_to_user_id') <= {{ max_id }}
                then properties ->> 'changed_to_user_id'
        end as changed_to_user_id,
        case
            when
                jsonb_typeof(properties -> 'changed_to_contact_user_id') in ('string', 'number')
                and length(properties ->> 'changed_to_contact_user_id') <= {{ max_id }}
                then properties ->> 'changed_to_contact_user_id'
        end as changed_to_contact_user_id,
        case
            when
                jsonb_typeof(properties -> 'changed_from_contact_user_id') in ('string', 'number')
                and length(properties ->> 'changed_from_contact_user_id') <= {{ max_id }}
                then properties ->> 'changed_from_contact_user_id'
        end as changed_from_contact_user_id,
        case
            when
                jsonb_typeof(properties -> 'message_type') in ('string', 'number')
                and length(properties ->> 'message_type') <= {{ max_text }}
                then properties ->> 'message_type'
        end as message_type,
        case
            when
                jsonb_typeof(properties -> 'error_title') in ('string', 'number')
                and length(properties ->> 'error_title') <= {{ max_text }}
                then properties ->> 'error_title'
        end as error_title,
        case
            when
                jsonb_typeof(properties -> 'pricing_category') in ('string', 'number')
                and length(properties ->> 'pricing_category') <= {{ max_text }}
                then properties ->> 'pricing_category'
        end as pricing_category,
        case
            when
                jsonb_typeof(properties -> 'pricing_model') in ('string', 'number')
                and length(properties ->> 'pricing_model') <= {{ max_text }}
                then properties ->> 'pricing_model'
        end as pricing_model,
        case
            when
                jsonb_typeof(properties -> 'conversation_origin_type') in ('string', 'number')
                and length(properties ->> 'conversation_origin_type') <= {{ max_text }}
                then properties ->> 'conversation_origin_type'
        end as conversation_origin_type,
        {%- for key in more_ids %}
            case
                when
                    jsonb_typeof(properties -> '{{ key }}') in ('string', 'number')
                    and length(properties ->> '{{ key }}') <= {{ max_id }}
                    then properties ->> '{{ key }}'
            end as {{ key }},
        {%- endfor %}
        {%- for key in more_texts %}
            case
                when
                    jsonb_typeof(properties -> '{{ key }}') in ('string', 'number')
                    and length(properties ->> '{{ key }}') <= {{ max_text }}
                    then properties ->> '{{ key }}'
            end as {{ key }},
        {%- endfor %}
        -- Integers: digits (a JSON number or a string), at most ten before the cast to bigint,
        -- in range before the cast to integer. A message without a length carries no text.
        case
            when properties ->> 'content_length' is null then 0
            when properties ->> 'content_length' !~ '^[0-9]{1,10}$' then null
            when (properties ->> 'content_length')::bigint > {{ var('max_integer') }} then null
            else (properties ->> 'content_length')::integer
        end as content_length,
        case
            when properties ->> 'error_code' !~ '^[0-9]{1,10}$' then null
            when (properties ->> 'error_code')::bigint > {{ var('max_integer') }} then null
            else (properties ->> 'error_code')::integer
        end as error_code,
        -- Booleans: JSON true/false or the strings 'true'/'false'. A message not said to carry
        -- media carries none.
        case
            when properties ->> 'has_media' is null then false
            when properties ->> 'has_media' in ('true', 'false')
                then (properties ->> 'has_media')::boolean
        end as has_media,
        case
            when properties ->> 'is_billable' in ('true', 'false')
                then (properties ->> 'is_billable')::boolean
        end as is_billable,
        -- A past message from a history backfill; a live one is not marked.
        case
            when properties ->> 'is_backfill' is null then false
            when properties ->> 'is_backfill' in ('true', 'false')
                then (properties ->> 'is_backfill')::boolean
        end as is_backfill,
        -- The events that may link identifiers, found through the partial index on them
        -- (migration 0006): the same expression as its predicate.
        properties ?| array['contact_user_id', 'changed_to_user_id'] as names_other_ids,
        event_name,
        status,
        source,
        concat_ws(
            '; ',
            case
                when length(message_id) > {{ max_id }}
                    then 'message_id longer than {{ max_id }} characters'
            end,
            case
                when length(user_id) > {{ max_id }}
                    then 'user_id longer than {{ max_id }} characters'
            end,
            case
                when occurred_at < '{{ var("earliest_occurred_at") }}'::timestamptz
                    then 'occurred_at before {{ var("earliest_occurred_at") }}'
            end,
            case
                when
                    occurred_at
                    > least(received_at, now()) + interval '{{ max_clock_skew }}'
                    then 'occurred_at more than {{ max_clock_skew }} later than received_at or now'
            end
        ) as exclusion_reasons,
        occurred_at,
        received_at,
        loaded_at,
        properties
    from events
),

-- A property present (not absent, not JSON null) that did not pass its check.
checked as (
    select
        *,
        nullif(exclusion_reasons, '') as exclusion_reason,
        nullif(concat_ws(
            '; ',
            case
                when agent_id is null and properties ->> 'agent_id' is not null
                    then 'agent_id {{ id_rule }}'
            end,
            case
                when
                    business_phone_number_id is null
                    and properties ->> 'business_phone_number_id' is not null
                    then 'business_phone_number_id {{ id_rule }}'
            end,
            case
                when conversation_id is null and properties ->> 'conversation_id' is not null
                    then 'conversation_id {{ id_rule }}'
            end,
            case
                when
                    contact_user_id is null
                    and properties ->> 'contact_user_id' is not null
                    then 'contact_user_id {{ id_rule }}'
            end,
            case
                when
                    changed_to_user_id is null
                    and properties ->> 'changed_to_user_id' is not null
                    then 'changed_to_user_id {{ id_rule }}'
            end,
            case
                when
                    changed_to_contact_user_id is null
                    and properties ->> 'changed_to_contact_user_id' is not null
                    then 'changed_to_contact_user_id {{ id_rule }}'
            end,
            case
                when
                    changed_from_contact_user_id is null
                    and properties ->> 'changed_from_contact_user_id' is not null
                    then 'changed_from_contact_user_id {{ id_rule }}'
            end,
            case
                when message_type is null and properties ->> 'message_type' is not null
                    then 'message_type {{ text_rule }}'
            end,
            case
                when error_title is null and properties ->> 'error_title' is not null
                    then 'error_title {{ text_rule }}'
            end,
            case
                when pricing_category is null and properties ->> 'pricing_category' is not null
                    then 'pricing_category {{ text_rule }}'
            end,
            case
                when pricing_model is null and properties ->> 'pricing_model' is not null
                    then 'pricing_model {{ text_rule }}'
            end,
            case
                when
                    conversation_origin_type is null
                    and properties ->> 'conversation_origin_type' is not null
                    then 'conversation_origin_type {{ text_rule }}'
            end,
            {%- for key in more_ids %}
                case
                    when {{ key }} is null and properties ->> '{{ key }}' is not null
                        then '{{ key }} {{ id_rule }}'
                end,
            {%- endfor %}
            {%- for key in more_texts %}
                case
                    when {{ key }} is null and properties ->> '{{ key }}' is not null
                        then '{{ key }} {{ text_rule }}'
                end,
            {%- endfor %}
            case
                when content_length is null and properties ->> 'content_length' is not null
                    then 'content_length {{ integer_rule }}'
            end,
            case
                when error_code is null and properties ->> 'error_code' is not null
                    then 'error_code {{ integer_rule }}'
            end,
            case
                when has_media is null and properties ->> 'has_media' is not null
                    then 'has_media {{ boolean_rule }}'
            end,
            case
                when is_billable is null and properties ->> 'is_billable' is not null
                    then 'is_billable {{ boolean_rule }}'
            end,
            case
                when is_backfill is null and properties ->> 'is_backfill' is not null
                    then 'is_backfill {{ boolean_rule }}'
            end
        ), '') as unusable_values
    from typed
),

final as (
    select
        event_id,
        message_id,
        user_id as contact_id,
        delivery_id,
        agent_id,
        business_phone_number_id,
        conversation_id,
        contact_user_id,
        changed_to_user_id,
        changed_to_contact_user_id,
        changed_from_contact_user_id,
        event_name,
        status,
        source,
        message_type,
        error_title,
        pricing_category,
        pricing_model,
        conversation_origin_type,
        {%- for key in more_ids + more_texts %}
            {{ key }},
        {%- endfor %}
        exclusion_reason,
        unusable_values,
        content_length,
        error_code,
        has_media,
        is_billable,
        is_backfill,
        names_other_ids,
        occurred_at,
        received_at,
        loaded_at
    from checked
)

select * from final
