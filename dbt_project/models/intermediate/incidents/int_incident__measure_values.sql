-- Incident measures derived centrally from the records (docs/incidents.md, "Measures"):
-- organisation x month x measure, numerator and denominator, one definition for everyone.
-- Patient safety incidents only (event_type incident), by event month. Occupied bed days
-- come from the organisation's current returns (the denominator of its per-bed-day
-- measures); a month without them has no rate. Falls and pressure ulcers need a local
-- category (LFPSE v5 has no such code): organisations sending local exports only.
with events as (
    select * from {{ ref('fct_incident') }}
    where event_type = 'incident'
),

bed_days as (
    select
        v.org_code,
        v.period,
        max(v.denominator) as occupied_bed_days
    from {{ ref('stg_raw__measure_values') }} as v
    inner join {{ ref('measure_catalogue') }} as c on v.measure_code = c.measure_code
    where v.is_current and c.denominator_definition = 'Occupied bed days'
    group by v.org_code, v.period
),

by_org as (
    select
        org_code,
        event_month as period,
        count(*) as incidents,
        count(*) filter (where harm_level in ('no_harm', 'low')) as no_or_low_harm,
        count(*) filter (where harm_level != 'not_recorded') as harm_recorded,
        count(*) filter (where harm_code <= 3) as moderate_or_worse,
        count(*) filter (where category = 'falls') as falls,
        count(*) filter (where category = 'medication' or involves_medication) as medication,
        count(*) filter (where category = 'device' or involves_device) as device,
        count(*) filter (where category = 'pressure_ulcer') as pressure_ulcer,
        bool_or(layout = 'incidents_datix') as has_local_categories,
        sum(reporting_lag_days) as reporting_lag_days,
        max(submission_id) as submission_id
    from events
    group by org_code, event_month
),

joined as (
    select
        by_org.*,
        bed_days.occupied_bed_days
    from by_org
    left join bed_days
        on by_org.org_code = bed_days.org_code and by_org.period = bed_days.period
),

-- measure code -> (numerator, denominator), one row per organisation and month
measures as (
    select
        joined.org_code,
        joined.period,
        joined.submission_id,
        m.measure_code,
        m.numerator,
        m.denominator
    from joined
    cross join
        lateral (
            values
            ('INC_REPORTING_RATE', joined.incidents, joined.occupied_bed_days, true),
            ('INC_MODERATE_HARM_RATE', joined.moderate_or_worse, joined.occupied_bed_days, true),
            ('INC_MEDICATION_RATE', joined.medication, joined.occupied_bed_days, true),
            ('INC_DEVICE_RATE', joined.device, joined.occupied_bed_days, true),
            (
                'INC_FALLS_RATE', joined.falls, joined.occupied_bed_days,
                joined.has_local_categories
            ),
            (
                'INC_PRESSURE_ULCER_RATE', joined.pressure_ulcer, joined.occupied_bed_days,
                joined.has_local_categories
            ),
            ('INC_NO_LOW_HARM_SHARE', joined.no_or_low_harm, joined.harm_recorded, true),
            ('INC_REPORTING_LAG', joined.reporting_lag_days, joined.incidents, true)
        ) as m (measure_code, numerator, denominator, applies)
    where m.applies and m.denominator > 0
)

select
    org_code,
    period,
    measure_code,
    cast(numerator as bigint) as numerator,
    cast(denominator as bigint) as denominator,
    cast(submission_id as bigint) as submission_id
from measures
