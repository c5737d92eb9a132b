{#- The model (with the test's `where`) has no rows: each row it has is one result, so that a
    warning reports how many. -#}
{% test is_empty(model) %}

select *
from {{ model }}

{% endtest %}
