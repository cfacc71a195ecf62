{# A roll-up of fct_measure_monthly (fct_measure_by_{icb,sector,programme}_monthly): one row
   per value of group_columns (in the order given, which is the table's column order),
   counting the organisations behind it (and any extra_counts, SQL "expression as name"),
   summing the counts and dividing the sums with rate(): rates are never averaged.
   Incremental runs read only the run's months (period_range). #}
{% macro measure_rollup(group_columns, extra_counts=[]) -%}
select
    {%- for column in group_columns %}
    facts.{{ column }},
    {%- endfor %}
    count(*) as organisations_reporting,
    {%- for expression in extra_counts %}
    {{ expression }},
    {%- endfor %}
    cast(sum(facts.numerator) as bigint) as numerator,
    cast(sum(facts.denominator) as bigint) as denominator,
    {{ rate('sum(facts.numerator)', 'sum(facts.denominator)', 'max(measures.multiplier)') }}
        as value
from {{ ref('fct_measure_monthly') }} as facts
inner join {{ ref('measure_catalogue') }} as measures on facts.measure_code = measures.measure_code
{% if is_incremental() %}
where facts.period between {{ period_range() }}
{% endif %}
group by {% for column in group_columns %}facts.{{ column }}{{ ', ' if not loop.last }}{% endfor %}
{%- endmacro %}
