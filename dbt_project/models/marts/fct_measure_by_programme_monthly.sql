-- Roll-up: programme x measure x month over every organisation in the warehouse (the
-- whole region by default). Counts are summed, then divided.
select
    facts.programme_code,
    facts.measure_code,
    facts.period,
    count(*) as organisations_reporting,
    count(distinct facts.icb_code) as icbs_reporting,
    cast(sum(facts.numerator) as bigint) as numerator,
    cast(sum(facts.denominator) as bigint) as denominator,
    {{ rate('sum(facts.numerator)', 'sum(facts.denominator)', 'max(measures.multiplier)') }}
        as value
from {{ ref('fct_measure_monthly') }} as facts
inner join {{ ref('measure_catalogue') }} as measures on facts.measure_code = measures.measure_code
{% if is_incremental() %}
where facts.period between {{ period_range() }}
{% endif %}
group by facts.programme_code, facts.measure_code, facts.period
