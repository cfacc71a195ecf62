{{ config(schema='public', materialized='table', tags=['after_spc']) }}
-- Public tier: fct_programme_impact's method (docs/programme-impact.md section 4) on the
-- public SPC series (sector, ICB and region) of public.pub_spc, so every figure comes from
-- the disclosure-controlled, rounded counts. No organisation series and no organisation
-- code. Events are rounded to the public rounding base; the four event figures are
-- withheld together (null) when any of them, rounded, is a count in the small range
-- (macros/disclosure.sql), since each is the difference of two others.
with spc as (
    select
        level, series_key, cast(null as varchar) as org_code, sector_code, icb_code,
        programme_code, measure_code, period, numerator, denominator, value, chart,
        improvement_direction, centre, lpl, upl, segment, segment_start, in_baseline
    from {{ source('spc_public', 'pub_spc') }}
),

series_change as (
    select level, series_key, measure_code, change_id, change_month
    from {{ source('spc_public', 'pub_series_change') }}
),

changes as (
    select change_id, description from {{ ref('pub_change') }}
)

{{ impact_ctes() }},

rounded as (
    select
        impact.*,
        {{ disclosure_round('impact.expected_events') }} as expected_rounded,
        {{ disclosure_round('impact.observed_events') }} as observed_rounded
    from impact
),

events as (
    select
        rounded.*,
        rounded.observed_rounded - rounded.expected_rounded as excess_rounded,
        {{ disclosure_is_small('abs(rounded.expected_rounded)') }}
        or {{ disclosure_is_small('abs(rounded.observed_rounded)') }}
        or {{ disclosure_is_small('abs(rounded.observed_rounded - rounded.expected_rounded)') }}
            as events_withheld
    from rounded
)

select
    cast(level as varchar) as level,
    cast(series_key as varchar) as series_key,
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
    cast(case when not coalesce(events_withheld, false) then expected_rounded end as bigint)
        as expected_events,
    cast(case when not coalesce(events_withheld, false) then observed_rounded end as bigint)
        as observed_events,
    cast(case when not coalesce(events_withheld, false) then excess_rounded end as bigint)
        as excess_events,
    cast(case when not coalesce(events_withheld, false) then excess_rounded * direction end as bigint)
        as events_better
from events
where level in ('sector', 'icb', 'region')
