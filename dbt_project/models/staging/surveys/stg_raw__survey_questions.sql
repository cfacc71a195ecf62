select
    instrument_id,
    question_id,
    question_text,
    domain_code,
    domain_name,
    domain_order,
    is_reversed,
    question_order,
    scale_min,
    scale_max,
    positive_from
from {{ source('raw', 'survey_questions') }}
