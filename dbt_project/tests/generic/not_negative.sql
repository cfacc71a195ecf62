{# A count or a duration that cannot be below zero (e.g. a reporting lag: ingest refuses an
   event dated after its report). #}
{% test not_negative(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} < 0
{% endtest %}
