-- score is already reverse-scored at ingest: higher always means a healthier culture.
select
    submission_id,
    response_id,
    org_code,
    staff_group,
    wave_id,
    question_id,
    score
from {{ source('raw', 'survey_answers') }}
