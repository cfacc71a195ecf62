{{ config(schema='marts', materialized='table', tags=['after_spc']) }}
-- Internal tier: one row per measure and series (organisation, sector, ICB, region) of
-- marts.fct_spc: baseline, now, sustained signal and the change it follows, financial year
-- on financial year, events avoided or added. Method: docs/programme-impact.md section 4.
with spc as (
    select
        level, series_key, org_code, sector_code, icb_code, programme_code, measure_code,
        period, numerator, denominator, value, chart, improvement_direction, centre, lpl, upl,
        segment, segment_start, in_baseline
    from {{ source('spc', 'fct_spc') }}
    where tier = 'internal'
),

series_change as (
    select level, series_key, measure_code, change_id, change_month
    from {{ source('spc', 'fct_series_change') }}
    where tier = 'internal'
),

changes as (
    select change_id, description from {{ ref('dim_change') }}
)

{{ impact_ctes() }}

select
    cast(level as varchar) as level,
    cast(series_key as varchar) as series_key,
    cast(org_code as varchar) as org_code,
    cast(sector_code as varchar) as sector_code,
    cast(icb_code as varchar) as icb_code,
    cast(programme_code as varchar) as programme_code,
    cast(measure_code as varchar) as measure_code,
    cast(chart as varchar) as chart,
    cast(improvement_direction as varchar) as improvement_direction,
    cast(baseline_from as date) as baseline_from,
    cast(baseline_to as date) as baseline_to,
    cast(baseline_points as bigint) as baseline_points,
    cast(baseline_mean as double) as baseline_mean,
    cast(baseline_lpl as double) as baseline_lpl,
    cast(baseline_upl as double) as baseline_upl,
    cast(current_segment_start as date) as current_segment_start,
    cast(current_mean as double) as current_mean,
    cast(current_lpl as double) as current_lpl,
    cast(current_upl as double) as current_upl,
    cast(last_12_from as date) as last_12_from,
    cast(last_12_to as date) as last_12_to,
    cast(last_12_value as double) as last_12_value,
    cast((last_12_value - baseline_mean) * direction as double) as improvement_abs,
    cast((last_12_value - baseline_mean) * direction / nullif(baseline_mean, 0) as double)
        as improvement_rel,
    cast({{ signal_label('signal_sign') }} as varchar) as signal,
    cast(signal_start as date) as signal_start,
    cast(attributed_change_id as varchar) as attributed_change_id,
    cast(attributed_change_description as varchar) as attributed_change_description,
    cast({{ financial_year_label('fy_current_start') }} as varchar) as fy_current,
    cast(fy_current_months as bigint) as fy_current_months,
    cast(fy_current_value as double) as fy_current_value,
    cast({{ financial_year_label('fy_previous_start') }} as varchar) as fy_previous,
    cast(fy_previous_months as bigint) as fy_previous_months,
    cast(fy_previous_value as double) as fy_previous_value,
    cast((fy_current_value - fy_previous_value) * direction as double) as fy_change_abs,
    cast(expected_events as double) as expected_events,
    cast(observed_events as bigint) as observed_events,
    cast(observed_events - expected_events as double) as excess_events,
    cast((observed_events - expected_events) * direction as double) as events_better
from impact
