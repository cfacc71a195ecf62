-- Grain: organisation x measure x reporting month, the latest accepted submission.
-- Organisation attributes are as registered now; reporting_org_code carries a merged
-- organisation's history to its successor.
with current_values as (
    select * from {{ ref('int_measure_values__current') }}
),

organisations as (
    select * from {{ ref('int_organisations__resolved') }}
),

measures as (
    select * from {{ ref('measure_catalogue') }}
)

select
    current_values.org_code,
    current_values.measure_code,
    current_values.period,
    organisations.reporting_org_code,
    organisations.sector_code,
    organisations.icb_code,
    measures.programme_code,
    current_values.numerator,
    current_values.denominator,
    {{ rate('current_values.numerator', 'current_values.denominator', 'measures.multiplier') }}
        as value,
    current_values.submission_id,
    current_values.source_file,
    current_values.loaded_at
from current_values
inner join organisations on current_values.org_code = organisations.org_code
inner join measures on current_values.measure_code = measures.measure_code
{% if is_incremental() %}
where current_values.period between {{ period_range() }}
{% endif %}
