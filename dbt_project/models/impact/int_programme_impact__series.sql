{# The keys of one internal SPC series. #}
{%- set series_keys = ['level', 'series_key', 'measure_code'] -%}
{%- set keys = series_keys | join(', ') -%}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    tags=['after_spc'],
    pre_hook="{{ delete_stale_fingerprints(ref('int_programme_impact__inputs'),
        ['level', 'series_key', 'measure_code']) }}"
) }}
-- Internal tier, one row per SPC series: the impact method (macros/impact.sql,
-- docs/programme-impact.md section 4) once for fct_programme_impact (its columns) and
-- mart_unexplained_shifts (unexplained_runs: the series' sustained runs that follow no
-- recorded change), which read this table and nothing else of the method.
-- Incremental by series (macros/incremental_units.sql; docs/programme-impact.md,
-- "Incremental by series"): a series' rows follow from its own inputs alone, and a series
-- is rebuilt when the fingerprint of those inputs (int_programme_impact__inputs) is not the
-- one its row here was built from (inputs_hash); every other series' row stays as built.
-- One organisation's new month rebuilds its own series and its sector's, ICB's and the
-- region's. --full-refresh builds every series.
with to_build as (
    {{ fingerprints_to_build(ref('int_programme_impact__inputs'), series_keys) }}
),

spc as (
    select {{ impact_point_columns() | join(', ') }}
    from {{ ref('fct_spc') }}
    where
        tier = 'internal'
        and ({{ keys }}) in (select {{ keys }} from to_build)
),

series_change as (
    select level, series_key, measure_code, change_id, change_month
    from {{ ref('fct_series_change') }}
    where
        tier = 'internal'
        and ({{ keys }}) in (select {{ keys }} from to_build)
),

changes as (
    select change_id, description from {{ ref('dim_change') }}
)

{{ impact_ctes() }},

unexplained as (
    select
        level,
        series_key,
        measure_code,
        list(
            struct_pack(side, run_start, run_end, points)
            order by run_start
        ) as unexplained_runs
    from attributed_runs
    where change_id is null
    group by level, series_key, measure_code
)

select
    impact.*,
    unexplained.unexplained_runs,
    to_build.inputs_hash
from impact
inner join to_build on {{ keys_equal('impact', 'to_build', series_keys) }}
left join unexplained on {{ keys_equal('impact', 'unexplained', series_keys) }}
