{{ config(schema='marts', materialized='table', tags=['after_spc']) }}
-- Internal tier: one row per measure and series (organisation, sector, ICB, region) of
-- marts.fct_spc: baseline, now, sustained signal and the change it follows, financial year
-- on financial year, events avoided or added. Method: docs/programme-impact.md section 4.
with spc as (
    select
        level, series_key, org_code, sector_code, icb_code, programme_code, measure_code,
        period, numerator, denominator, value, chart, improvement_direction, centre, lpl, upl,
        segment, segment_start, in_baseline
    from {{ ref('fct_spc') }}
    where tier = 'internal'
),

series_change as (
    select level, series_key, measure_code, change_id, change_month
    from {{ ref('fct_series_change') }}
    where tier = 'internal'
),

changes as (
    select change_id, description from {{ ref('dim_change') }}
)

{{ impact_ctes() }}

select
    {{ impact_columns(with_org_code=true) }},
    cast(expected_events as double) as expected_events,
    cast(observed_events as bigint) as observed_events,
    cast(observed_events - expected_events as double) as excess_events,
    cast((observed_events - expected_events) * direction as double) as events_better
from impact
