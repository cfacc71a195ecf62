{%- set unit_keys = ['level', 'group_code', 'period'] -%}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_stale_fingerprints(ref('int_incident__reporting_lag_inputs'),
        ['level', 'group_code', 'period']) }}"
) }}
-- Median reporting lag (docs/incidents.md, "Median reporting lag"): days from event to
-- report over the patient safety incidents of an organisation, sector (within its ICB),
-- ICB or the region, by event month. A median does not add up: each level's is computed
-- here from the events themselves (fct_incident), never from the levels below. The mean
-- (INC_REPORTING_LAG, the SPC measure) is beside it for comparison.
-- Incremental by level, group and month (macros/incremental_units.sql; docs/incidents.md,
-- "Median reporting lag, incremental by group and month"): a unit is rebuilt when the
-- fingerprint of its inputs (int_incident__reporting_lag_inputs) is not the one its row was
-- built from (inputs_hash); only the events of the months with a unit to build are read.
-- fct_incident_reporting_lag is these rows with the contract's columns.
with to_build as (
    {{ fingerprints_to_build(ref('int_incident__reporting_lag_inputs'), unit_keys) }}
),

events as (
    select
        e.org_code,
        e.event_month as period,
        e.reporting_lag_days,
        o.sector_code,
        o.icb_code
    from {{ ref('fct_incident') }} as e
    inner join {{ ref('dim_organisation') }} as o on e.org_code = o.org_code
    where
        e.event_type = 'incident'
        and e.event_month in (select to_build.period from to_build)
),

levels as (
    -- g: level, group_code, group_icb_code, group_sector_code
    select
        events.*,
        g.*
    from events
    {{ geography_levels('events', organisation=true) }}
),

figures as (
    select
        {{ geography_group_columns() }},
        period,
        cast(count(distinct org_code) as bigint) as organisations,
        cast(count(*) as bigint) as incidents,
        cast(median(reporting_lag_days) as double) as median_lag_days,
        cast(quantile_cont(reporting_lag_days, 0.25) as double) as lower_quartile_lag_days,
        cast(quantile_cont(reporting_lag_days, 0.75) as double) as upper_quartile_lag_days,
        cast(avg(reporting_lag_days) as double) as mean_lag_days
    from levels
    where ({{ unit_keys | join(', ') }}) in (select {{ unit_keys | join(', ') }} from to_build)
    group by all
)

select
    figures.*,
    to_build.inputs_hash
from figures
inner join to_build on {{ keys_equal('figures', 'to_build', unit_keys) }}
