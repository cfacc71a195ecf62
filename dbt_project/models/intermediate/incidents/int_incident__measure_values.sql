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
    select v.org_code, v.period, max(v.denominator) as occupied_bed_days
    from {{ ref('stg_raw__measure_values') }} as v
    inner join {{ ref('measure_catalogue') }} as c using (measure_code)
    where v.is_current and c.denominator_definition = 'Occupied bed days'
    group by v.org_code, v.period
),

by_org as (
    select
        org_code,
        event_month as period,
        count(*) as incidents,
        count(*) filter (where harm_level in ('no_harm', 'low')) as no_or_low_harm,
        count(*) filter (where harm_level <> 'not_recorded') as harm_recorded,
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
    select by_org.*, bed_days.occupied_bed_days
    from by_org
    left join bed_days using (org_code, period)
),

measures as (
    select org_code, period, 'INC_REPORTING_RATE' as measure_code,
        incidents as numerator, occupied_bed_days as denominator, submission_id
    from joined where occupied_bed_days > 0
    union all
    select org_code, period, 'INC_MODERATE_HARM_RATE', moderate_or_worse, occupied_bed_days,
        submission_id
    from joined where occupied_bed_days > 0
    union all
    select org_code, period, 'INC_MEDICATION_RATE', medication, occupied_bed_days, submission_id
    from joined where occupied_bed_days > 0
    union all
    select org_code, period, 'INC_DEVICE_RATE', device, occupied_bed_days, submission_id
    from joined where occupied_bed_days > 0
    union all
    select org_code, period, 'INC_FALLS_RATE', falls, occupied_bed_days, submission_id
    from joined where occupied_bed_days > 0 and has_local_categories
    union all
    select org_code, period, 'INC_PRESSURE_ULCER_RATE', pressure_ulcer, occupied_bed_days,
        submission_id
    from joined where occupied_bed_days > 0 and has_local_categories
    union all
    select org_code, period, 'INC_NO_LOW_HARM_SHARE', no_or_low_harm, harm_recorded,
        submission_id
    from joined where harm_recorded > 0
    union all
    select org_code, period, 'INC_REPORTING_LAG', reporting_lag_days, incidents, submission_id
    from joined
)

select
    org_code,
    period,
    measure_code,
    cast(numerator as bigint) as numerator,
    cast(denominator as bigint) as denominator,
    cast(submission_id as bigint) as submission_id
from measures
