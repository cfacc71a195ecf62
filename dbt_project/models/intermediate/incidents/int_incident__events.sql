-- A table, not a view like the other intermediate models: fct_incident,
-- mart_incident_extracts and two tests read it, and as a view each computed it again over
-- every stored record (SCALE=1, 5.7 million records: about 100 s each, four times a run).
-- Incremental by organisation (macros/incremental_units.sql, docs/incidents.md): an
-- organisation is rebuilt when its latest stored extract (raw.incident_extracts) is not
-- the latest behind its rows here (the largest last_seen_submission of its events); the
-- other organisations' rows stay as built. --full-refresh builds every organisation.
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ delete_stale_units(ref('stg_raw__incident_extracts'),
        'max(submission_id)', 'max(last_seen_submission)', ['org_code']) }}"
) }}

-- One row per event (hashed key), as its latest revision says, with whether a later
-- extract deleted it (docs/incidents.md):
-- - latest revision: the highest revision, then the latest submission holding it (a local
--   export has no revisions: its latest export of the incident wins);
-- - harm: the worst across the event's patients (lowest code, psychological + 1);
-- - reported date: the earliest submission date over every revision;
-- - deleted: an extract loaded after the last one holding the event covers its
--   organisation (same layout) and event month, and does not hold it.
with records as (
    select * from {{ ref('stg_raw__incident_records') }}
    where {{ units_to_build(ref('stg_raw__incident_extracts'), ['org_code']) }}
),

latest as (
    select
        event_key,
        revision,
        submission_id
    from records
    qualify row_number() over (
        partition by event_key order by revision desc, submission_id desc
    ) = 1
),

history as (
    select
        event_key,
        min(submitted_on) as reported_on,
        max(submission_id) as last_seen_submission,
        count(distinct revision) as revisions,
        count(distinct submission_id) as extracts
    from records
    group by event_key
),

events as (
    select
        r.event_key,
        any_value(r.layout) as layout,
        any_value(r.org_code) as org_code,
        any_value(r.reporter_org_code) as reporter_org_code,
        any_value(r.event_type) as event_type,
        any_value(r.category) as category,
        any_value(r.subcategory) as subcategory,
        any_value(r.service_area) as service_area,
        any_value(r.location) as location,
        any_value(r.specialty) as specialty,
        any_value(r.agents) as agents,
        any_value(r.event_date) as event_date,
        any_value(r.taxonomy_version) as taxonomy_version,
        any_value(r.revision) as revision,
        any_value(r.submission_id) as submission_id,
        count(r.patient_no) as patients,
        min(r.physical_harm) as worst_physical_harm,
        min(r.psychological_harm) as worst_psychological_harm,
        min(r.harm_code) as harm_code
    from records as r
    inner join latest as l
        on
        r.event_key = l.event_key
        and r.revision = l.revision
        and r.submission_id = l.submission_id
    group by r.event_key
),

deleted as (
    select
        e.event_key,
        min(x.submission_id) as deleted_by_submission
    from events as e
    inner join history as h on e.event_key = h.event_key
    inner join {{ ref('stg_raw__incident_extracts') }} as x
        on
        e.layout = x.layout
        and e.org_code = x.org_code
        and e.event_date between x.covers_from and x.covers_to
        and h.last_seen_submission < x.submission_id
    group by e.event_key
)

select
    e.*,
    h.reported_on,
    h.revisions,
    h.extracts,
    h.last_seen_submission,
    d.deleted_by_submission,
    d.event_key is not null as is_deleted
from events as e
inner join history as h on e.event_key = h.event_key
left join deleted as d on e.event_key = d.event_key
