-- Scored answers of the current export of each response (a re-export of the same response
-- supersedes the earlier one), with the domain each question measures in the instrument
-- of the response's wave. Missing answers (skipped, don't know, not applicable) are left
-- out: they count towards nothing.
with responses as (
    select * from {{ ref('stg_raw__survey_responses') }}
    where is_current
),

answers as (
    select * from {{ ref('stg_raw__survey_answers') }}
    where score is not null
),

waves as (
    select * from {{ ref('stg_raw__survey_waves') }}
),

questions as (
    select * from {{ ref('stg_raw__survey_questions') }}
)

select
    responses.response_id,
    responses.wave_id,
    responses.org_code,
    responses.staff_group,
    answers.question_id,
    questions.domain_code,
    answers.score,
    answers.score >= questions.positive_from as is_positive,
    cast(answers.score - questions.scale_min as double) * 100
    / (questions.scale_max - questions.scale_min) as score_0_100
from responses
inner join answers
    on responses.submission_id = answers.submission_id
    and responses.response_id = answers.response_id
inner join waves on responses.wave_id = waves.wave_id
inner join questions
    on waves.instrument_id = questions.instrument_id
    and answers.question_id = questions.question_id
