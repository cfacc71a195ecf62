-- Incident measures derived centrally from the records (docs/incidents.md, "Measures"):
-- organisation x month x measure, numerator and denominator, one definition for everyone.
-- Patient safety incidents only (event_type incident), by event month. Occupied bed days
-- come from where the catalogue's denominator_source says: kh03 (KH03's total occupied
-- bed days, stg_raw__kh03_bed_days) or returns (the organisation's current returned bed
-- days, the denominator of its per-bed-day measures); a month without them has no rate.
-- Bed days from KH03 are averages x days, so rounded to whole days. Falls and pressure
-- ulcers need a local category (LFPSE v5 has no such code): organisations sending local
-- exports only.
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

kh03_bed_days as (
    select
        org_code,
        period,
        round(occupied_bed_days) as occupied_bed_days
    from {{ ref('stg_raw__kh03_bed_days') }}
    where sector = 'total'
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
        bed_days.occupied_bed_days as returned_bed_days,
        kh03_bed_days.occupied_bed_days as kh03_bed_days
    from by_org
    left join bed_days
        on by_org.org_code = bed_days.org_code and by_org.period = bed_days.period
    left join kh03_bed_days
        on by_org.org_code = kh03_bed_days.org_code and by_org.period = kh03_bed_days.period
),

-- measure code -> (numerator, denominator), one row per organisation and month
measures as (
    select
        joined.org_code,
        joined.period,
        joined.submission_id,
        m.measure_code,
        m.numerator,
        case
            when not m.per_bed_day then m.denominator
            when c.denominator_source = 'kh03' then joined.kh03_bed_days
            else joined.returned_bed_days
        end as denominator
    from joined
    cross join
        lateral (
            values
            ('INC_REPORTING_RATE', joined.incidents, null, true, true),
            ('INC_MODERATE_HARM_RATE', joined.moderate_or_worse, null, true, true),
            ('INC_MEDICATION_RATE', joined.medication, null, true, true),
            ('INC_DEVICE_RATE', joined.device, null, true, true),
            (
                'INC_FALLS_RATE', joined.falls, null, true,
                joined.has_local_categories
            ),
            (
                'INC_PRESSURE_ULCER_RATE', joined.pressure_ulcer, null, true,
                joined.has_local_categories
            ),
            ('INC_NO_LOW_HARM_SHARE', joined.no_or_low_harm, joined.harm_recorded, false, true),
            ('INC_REPORTING_LAG', joined.reporting_lag_days, joined.incidents, false, true)
        ) as m (measure_code, numerator, denominator, per_bed_day, applies)
    inner join {{ ref('measure_catalogue') }} as c on m.measure_code = c.measure_code
    where m.applies
)

select
    org_code,
    period,
    measure_code,
    cast(numerator as bigint) as numerator,
    cast(denominator as bigint) as denominator,
    cast(submission_id as bigint) as submission_id
from measures
where denominator > 0
