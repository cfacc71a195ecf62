-- Organisation x month x event type x category (agent or local category) x harm level:
-- the count of events (internal tier), from fct_incident.
select
    org_code,
    event_month as period,
    event_type,
    coalesce(category, 'not_recorded') as category,
    harm_level,
    cast(count(*) as bigint) as incidents,
    cast(count(*) filter (where involves_medication) as bigint) as medication_incidents,
    cast(count(*) filter (where involves_device) as bigint) as device_incidents,
    cast(sum(reporting_lag_days) as bigint) as reporting_lag_days_total
from {{ ref('fct_incident') }}
group by all
