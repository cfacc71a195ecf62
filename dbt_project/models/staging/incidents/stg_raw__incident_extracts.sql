select
    submission_id,
    layout,
    org_code,
    covers_from,
    covers_to,
    events,
    loaded_at
from {{ source('raw', 'incident_extracts') }}
