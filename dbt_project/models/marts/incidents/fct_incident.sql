-- One row per patient safety event (internal tier): codes and dates only, the latest
-- revision of every event no later extract deleted (int_incident__events).
-- Incremental by organisation (macros/incremental_units.sql, docs/incidents.md): an
-- organisation is rebuilt when the latest extract behind its events upstream differs from
-- the one behind its rows here (max(submission_id) of its events no extract deleted, on
-- both sides: its latest extract's events are never deleted and carry that extract's id,
-- so a new extract of the organisation always moves it).
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_stale_units(ref('int_incident__events'),
        'max(submission_id)', 'max(submission_id)', ['org_code'], 'not is_deleted') }}"
) }}

select
    event_key,
    org_code,
    layout,
    event_type,
    category,
    subcategory,
    service_area,
    location,
    specialty,
    array_to_string(list_sort(agents), ' ') as agents,
    coalesce(list_contains(agents, '4'), false) as involves_medication,
    coalesce(list_contains(agents, '3'), false) as involves_device,
    event_date,
    cast(date_trunc('month', event_date) as date) as event_month,
    reported_on,
    cast(reported_on - event_date as integer) as reporting_lag_days,
    cast(revision as bigint) as revision,
    cast(revisions as bigint) as revisions,
    cast(patients as bigint) as patients,
    cast(worst_physical_harm as smallint) as worst_physical_harm,
    cast(worst_psychological_harm as smallint) as worst_psychological_harm,
    cast(harm_code as smallint) as harm_code,
    case harm_code
        when 5 then 'no_harm'
        when 4 then 'low'
        when 3 then 'moderate'
        when 2 then 'severe'
        when 1 then 'fatal'
        else 'not_recorded'
    end as harm_level,
    submission_id
from {{ ref('int_incident__events') }}
where
    not is_deleted
    and {{ units_to_build(ref('int_incident__events'), ['org_code']) }}
