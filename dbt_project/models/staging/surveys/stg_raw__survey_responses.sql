select
    submission_id,
    response_id,
    wave_id,
    org_code,
    staff_group,
    layout,
    submitted_at,
    superseded_by,
    superseded_by is null as is_current,
    source_file,
    source_line,
    loaded_at
from {{ source('raw', 'survey_responses') }}
