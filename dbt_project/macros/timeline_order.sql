{#- A contact's messages in time order, an inbound message before an outbound one at the same
    instant (a reply cannot precede what it answers), then by message id: the order waits and
    conversations are read in. -#}
{% macro timeline_order() -%}
    occurred_at asc, case when direction = 'inbound' then 0 else 1 end asc, message_id asc
{%- endmacro %}

{#- Per-contact tables are written in contact order (the order by that ends their models): an
    incremental build reads a recomputed contact's rows from one or two pages instead of one
    page a row scattered over the whole table. Rows a build adds go at the end, in the same
    order. -#}
{% macro in_contact_order() -%}
    order by contact_id
{%- endmacro %}
