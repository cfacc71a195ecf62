{# The reporting months this run rebuilds, as "<first> and <last>" for a BETWEEN.
   Dagster passes period_start / period_end for the partitions of the run; without them
   (dbt by hand) the whole history is rebuilt. #}
{% macro period_range() -%}
    cast('{{ var("period_start", "1900-01-01") }}' as date)
    and cast('{{ var("period_end", "2999-12-01") }}' as date)
{%- endmacro %}
