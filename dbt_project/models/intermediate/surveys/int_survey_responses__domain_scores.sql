-- One row per response and domain it scored at least one answer in: how many of the
-- domain's questions it scored, how many positively (agree / strongly agree after reverse
-- scoring), and the respondent's domain score on 0-100 (mean of the scored answers, 1 -> 0,
-- 5 -> 100). Every mart adds these rows up for its own grouping, so organisation, sector
-- and ICB figures are all computed from respondents, never by averaging percentages.
select
    response_id,
    wave_id,
    org_code,
    domain_code,
    count(*) as answers_scored,
    sum(case when is_positive then 1 else 0 end) as answers_positive,
    round(avg(score_0_100), 9) as score_0_100
from {{ ref('int_survey_answers__current') }}
group by response_id, wave_id, org_code, domain_code
