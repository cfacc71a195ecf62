select
    measure.measure_code,
    measure.measure_name,
    measure.programme_code,
    programme.programme_name,
    measure.numerator_definition,
    measure.denominator_definition,
    measure.multiplier,
    measure.unit,
    measure.improvement_direction,
    measure.measure_type,
    measure.spc_chart,
    measure.is_proportion,
    measure.target,
    measure.applies_to_sectors,
    measure.baseline_from,
    measure.baseline_to,
    measure.baseline_months,
    measure.source
from {{ ref('measure_catalogue') }} as measure
left join {{ ref('programmes') }} as programme
    on measure.programme_code = programme.programme_code
