{{ config(schema='marts', materialized='table', tags=['after_spc']) }}
-- Internal tier: every sustained run (7 or more points on one side of their segment's mean,
-- in any segment) of a marts.fct_spc series that follows no applicable recorded change
-- within attribution_window_months: for the observatory to review and, if it was a change,
-- to record it. Method: docs/programme-impact.md section 4.
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
    cast(series.level as varchar) as level,
    cast(series.series_key as varchar) as series_key,
    cast(series.org_code as varchar) as org_code,
    cast(series.sector_code as varchar) as sector_code,
    cast(series.icb_code as varchar) as icb_code,
    cast(series.programme_code as varchar) as programme_code,
    cast(series.measure_code as varchar) as measure_code,
    cast({{ signal_label('attributed_runs.side * series.direction') }} as varchar) as signal,
    cast(attributed_runs.run_start as date) as run_start,
    cast(attributed_runs.run_end as date) as run_end,
    cast(attributed_runs.points as bigint) as points
from attributed_runs
inner join series
    on attributed_runs.level = series.level
    and attributed_runs.series_key = series.series_key
    and attributed_runs.measure_code = series.measure_code
where attributed_runs.change_id is null
