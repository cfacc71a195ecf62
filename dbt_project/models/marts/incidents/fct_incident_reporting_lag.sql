-- Median reporting lag (docs/incidents.md, "Median reporting lag"), by organisation, sector
-- (within its ICB), ICB and the region and event month: int_incident__reporting_lag's rows
-- (incremental by group and month) with the contract's columns.
select
    level,
    group_code,
    icb_code,
    sector_code,
    period,
    organisations,
    incidents,
    median_lag_days,
    lower_quartile_lag_days,
    upper_quartile_lag_days,
    mean_lag_days
from {{ ref('int_incident__reporting_lag') }}
