-- Public tier: median reporting lag of patient safety incidents by region, ICB and sector
-- (within its ICB) and event month (docs/incidents.md, "Median reporting lag"), from
-- fct_incident_reporting_lag. Only the median is published, never a count: with no counts
-- nothing can be added up or taken away, so a suppressed cell cannot be derived from the
-- others and no secondary suppression is needed. A cell is suppressed (median null, flag
-- set) when its incidents are in the public small-count range ('primary':
-- 1..public_max_suppressed_count) or come from fewer than public_min_contributors
-- organisations ('contributors').
with cells as (
    select
        level,
        icb_code,
        sector_code,
        period,
        median_lag_days,
        case
            when incidents <= {{ disclosure_rule('public_max_suppressed_count') }} then 'primary'
            when {{ disclosure_has_few_contributors('organisations') }} then 'contributors'
        end as suppression_reason
    from {{ ref('fct_incident_reporting_lag') }}
    where level in ('region', 'icb', 'sector')
)

select
    level,
    icb_code,
    sector_code,
    period,
    case when suppression_reason is null then round(median_lag_days, 1) end as median_lag_days,
    suppression_reason is not null as is_suppressed,
    suppression_reason
from cells
