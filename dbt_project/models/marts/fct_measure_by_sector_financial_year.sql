-- Roll-up: sector x measure x financial year (April to March) across the region's ICBs,
-- the shape of the analysts' "financial year by sector" question (docs/benchmark.md): the
-- counts of the ICB x sector x month roll-up summed, then divided. Built with the models
-- after SPC (tag after_spc, rebuilt whole): it reads a period model, so it cannot be in the
-- step before them, and rebuilding about a thousand rows costs less than a partition would.
{{ config(materialized='table', tags=['after_spc']) }}

select
    periods.financial_year,
    periods.financial_year_start,
    facts.sector_code,
    facts.measure_code,
    facts.programme_code,
    cast(count(distinct facts.period) as bigint) as months_reported,
    min(facts.period) as first_period,
    max(facts.period) as last_period,
    cast(sum(facts.numerator) as bigint) as numerator,
    cast(sum(facts.denominator) as bigint) as denominator,
    {{ rate('sum(facts.numerator)', 'sum(facts.denominator)', 'max(measures.multiplier)') }}
        as value
from {{ ref('fct_measure_by_sector_monthly') }} as facts
inner join {{ ref('dim_period') }} as periods on facts.period = periods.period
inner join {{ ref('measure_catalogue') }} as measures on facts.measure_code = measures.measure_code
group by
    periods.financial_year,
    periods.financial_year_start,
    facts.sector_code,
    facts.measure_code,
    facts.programme_code
