-- Roll-up: ICB x sector x measure x month. Counts are summed, then divided.
select
    facts.icb_code,
    facts.sector_code,
    facts.measure_code,
    facts.period,
    facts.programme_code,
    count(*) as organisations_reporting,
    cast(sum(facts.numerator) as bigint) as numerator,
    cast(sum(facts.denominator) as bigint) as denominator,
    {{ rate('sum(facts.numerator)', 'sum(facts.denominator)', 'max(measures.multiplier)') }}
        as value
from {{ ref('fct_measure_monthly') }} as facts
inner join {{ ref('measure_catalogue') }} as measures on facts.measure_code = measures.measure_code
{% if is_incremental() %}
where facts.period between {{ period_range() }}
{% endif %}
group by facts.icb_code, facts.sector_code, facts.measure_code, facts.period, facts.programme_code
