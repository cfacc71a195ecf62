-- Reconciliation with the returns (observatory, completeness page): for the measures
-- providers also report as counts, the provider's count beside the count derived from its
-- incident records for the same organisation and month, flagged when they differ by more
-- than var('incident_reconciliation_tolerance') of the reported count (and by more than 2).
{% set tolerance = var('incident_reconciliation_tolerance') %}

with events as (
    select * from {{ ref('fct_incident') }}
    where event_type = 'incident'
),

derived as (
    select org_code, event_month as period, 'INCIDENT_REPORTING' as measure_code,
        count(*) as derived_count
    from events group by all
    union all
    select org_code, event_month, 'MED_INCIDENTS_HARM', count(*)
    from events
    where (category = 'medication' or involves_medication) and harm_code <= 3
    group by all
    union all
    select org_code, event_month, 'DEVICE_INCIDENTS', count(*)
    from events where category = 'device' or involves_device
    group by all
    union all
    select org_code, event_month, 'FALLS_HARM', count(*)
    from events where category = 'falls' and harm_code <= 3
    group by all
),

-- Organisation-months the records cover: a measure with no derived event there is 0.
covered as (
    select distinct org_code, event_month as period, bool_or(layout = 'incidents_datix')
        over (partition by org_code) as has_local_categories
    from events
),

reported as (
    select v.org_code, v.period, v.measure_code, v.numerator as reported_count
    from {{ ref('stg_raw__measure_values') }} as v
    where v.is_current
      and v.measure_code in ('INCIDENT_REPORTING', 'MED_INCIDENTS_HARM', 'DEVICE_INCIDENTS',
                             'FALLS_HARM')
)

select
    r.org_code,
    r.period,
    r.measure_code,
    cast(r.reported_count as bigint) as reported_count,
    cast(coalesce(d.derived_count, 0) as bigint) as derived_count,
    cast(coalesce(d.derived_count, 0) - r.reported_count as bigint) as difference,
    abs(coalesce(d.derived_count, 0) - r.reported_count) > 2
        and abs(coalesce(d.derived_count, 0) - r.reported_count)
        > {{ tolerance }} * r.reported_count as is_flagged
from reported as r
inner join covered as c using (org_code, period)
left join derived as d using (org_code, period, measure_code)
-- Falls are derivable only from local categories.
where r.measure_code <> 'FALLS_HARM' or c.has_local_categories
