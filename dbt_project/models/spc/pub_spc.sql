-- Public tier: the public series' SPC points (computed from the rounded, suppressed counts),
-- without the internal tier's columns. A suppressed cell is null in every figure (the
-- disclosure scan's rule): its centre, limits and segment number too; segment_start still
-- says which segment the gap falls in, and the series-level icons are kept.
select
    level,
    series_key,
    sector_code,
    icb_code,
    programme_code,
    measure_code,
    period,
    numerator,
    denominator,
    value,
    is_suppressed,
    chart,
    improvement_direction,
    case when not is_suppressed then centre end as centre,
    case when not is_suppressed then lpl end as lpl,
    case when not is_suppressed then upl end as upl,
    case when not is_suppressed then near_lpl end as near_lpl,
    case when not is_suppressed then near_upl end as near_upl,
    case when not is_suppressed then segment end as segment,
    segment_start,
    in_baseline,
    limits_basis,
    trial_limits,
    special_cause_flag,
    special_cause_type,
    special_cause_label,
    point_type,
    variation_icon,
    assurance_type
from {{ source('spc', 'spc_points') }}
where tier = 'public'
