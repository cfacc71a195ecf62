-- Median reporting lag (docs/incidents.md, "Median reporting lag"): days from event to
-- report over the patient safety incidents of an organisation, sector (within its ICB),
-- ICB or the region, by event month. A median does not add up: each level's is computed
-- here from the events themselves (fct_incident), never from the levels below. The mean
-- (INC_REPORTING_LAG, the SPC measure) is beside it for comparison.
with events as (
    select
        e.org_code,
        e.event_month as period,
        e.reporting_lag_days,
        o.sector_code,
        o.icb_code
    from {{ ref('fct_incident') }} as e
    inner join {{ ref('dim_organisation') }} as o on e.org_code = o.org_code
    where e.event_type = 'incident'
),

levels as (
    select
        events.*,
        g.level,
        g.group_code,
        g.group_icb_code,
        g.group_sector_code
    from events
    {{ geography_levels('events', organisation=true) }}
)

select
    level,
    group_code,
    group_icb_code as icb_code,
    group_sector_code as sector_code,
    period,
    cast(count(distinct org_code) as bigint) as organisations,
    cast(count(*) as bigint) as incidents,
    cast(median(reporting_lag_days) as double) as median_lag_days,
    cast(quantile_cont(reporting_lag_days, 0.25) as double) as lower_quartile_lag_days,
    cast(quantile_cont(reporting_lag_days, 0.75) as double) as upper_quartile_lag_days,
    cast(avg(reporting_lag_days) as double) as mean_lag_days
from levels
group by all
