{{ config(schema='marts', materialized='table', tags=['after_spc']) }}
-- Internal tier: one row per measure and series (organisation, sector, ICB, region) of
-- marts.fct_spc: baseline, now, sustained signal and the change it follows, financial year
-- on financial year, events avoided or added. Method: docs/programme-impact.md section 4,
-- computed per series by int_programme_impact__series (incremental by series); this table
-- is its rows with the contract's columns (a copy: 50,844 rows at SCALE=1, under a second).
select
    {{ impact_columns(with_org_code=true) }},
    cast(expected_events as double) as expected_events,
    cast(observed_events as bigint) as observed_events,
    cast(observed_events - expected_events as double) as excess_events,
    cast((observed_events - expected_events) * direction as double) as events_better
from {{ ref('int_programme_impact__series') }}
