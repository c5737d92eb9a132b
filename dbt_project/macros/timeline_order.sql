{#- A contact's messages in time order, an inbound message before an outbound one at the same
    instant (a reply cannot precede what it answers), then by message id: the order waits and
    conversations are read in. -#}
{% macro timeline_order() -%}
    occurred_at asc, case when direction = 'inbound' then 0 else 1 end asc, message_id asc
{%- endmacro %}
