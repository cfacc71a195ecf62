{{ config(schema='marts', materialized='table', tags=['after_spc']) }}
-- Internal tier: every sustained run (7 or more points on one side of their segment's mean,
-- in any segment) of a marts.fct_spc series that follows no applicable recorded change
-- within attribution_window_months: for the observatory to review and, if it was a change,
-- to record it. Method: docs/programme-impact.md section 4, computed per series by
-- int_programme_impact__series (incremental by series), which holds each series' runs.
select
    cast(series.level as varchar) as level,
    cast(series.series_key as varchar) as series_key,
    cast(series.org_code as varchar) as org_code,
    cast(series.sector_code as varchar) as sector_code,
    cast(series.icb_code as varchar) as icb_code,
    cast(series.programme_code as varchar) as programme_code,
    cast(series.measure_code as varchar) as measure_code,
    cast({{ signal_label('runs.run.side * series.direction') }} as varchar) as signal,
    cast(runs.run.run_start as date) as run_start,
    cast(runs.run.run_end as date) as run_end,
    cast(runs.run.points as bigint) as points
from {{ ref('int_programme_impact__series') }} as series
cross join unnest(series.unexplained_runs) as runs (run)
