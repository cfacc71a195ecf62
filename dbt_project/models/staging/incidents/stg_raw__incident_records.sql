-- Incident records as loaded (one row per patient of an event revision), with the event's
-- harm on one scale: psychological harm codes run one lower than physical (4 no harm ...
-- 1 severe against 5 no harm ... 1 fatal), so a psychological code + 1 is the physical
-- code of the same severity (docs/incidents.md).
select
    submission_id,
    layout,
    event_key,
    revision,
    taxonomy_version,
    submitted_on,
    event_date,
    org_code,
    reporter_org_code,
    event_type,
    category,
    subcategory,
    service_area,
    location,
    specialty,
    agents,
    patient_no,
    physical_harm,
    psychological_harm,
    least(physical_harm, psychological_harm + 1) as harm_code,
    age_band,
    source_file,
    source_line,
    loaded_at
from {{ source('raw', 'incident_records') }}
