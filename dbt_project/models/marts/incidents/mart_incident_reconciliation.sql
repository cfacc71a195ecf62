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
    select
        e.org_code,
        e.event_month as period,
        m.measure_code,
        count(*) as derived_count
    from events as e
    cross join
        lateral (
            values
            ('INCIDENT_REPORTING', true),
            (
                'MED_INCIDENTS_HARM',
                (e.category = 'medication' or e.involves_medication) and e.harm_code <= 3
            ),
            ('DEVICE_INCIDENTS', e.category = 'device' or e.involves_device),
            ('FALLS_HARM', e.category = 'falls' and e.harm_code <= 3)
        ) as m (measure_code, counts)
    where m.counts
    group by all
),

-- Organisation-months the records cover: a measure with no derived event there is 0.
covered as (
    select
        org_code,
        event_month as period,
        bool_or(layout = 'incidents_datix') as has_local_categories
    from events
    group by org_code, event_month
),

reported as (
    select
        org_code,
        period,
        measure_code,
        numerator as reported_count
    from {{ ref('stg_raw__measure_values') }}
    where
        is_current
        and measure_code in (
            'INCIDENT_REPORTING', 'MED_INCIDENTS_HARM', 'DEVICE_INCIDENTS', 'FALLS_HARM'
        )
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
inner join covered as c on r.org_code = c.org_code and r.period = c.period
left join derived as d
    on r.org_code = d.org_code and r.period = d.period and r.measure_code = d.measure_code
-- Falls are derivable only from local categories.
where r.measure_code != 'FALLS_HARM' or c.has_local_categories
