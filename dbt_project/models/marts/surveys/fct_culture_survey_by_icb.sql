-- Roll-up: ICB x domain x survey wave, all sectors together (internal tier), recomputed
-- from respondents (summed, then divided; never an average of percentages). Groups below
-- survey_internal_min_respondents are suppressed (figures null, is_suppressed true).
{% set min_respondents = var('survey_internal_min_respondents') %}

with grouped as (
    select
        organisations.icb_code,
        scores.wave_id,
        scores.domain_code,
        count(distinct scores.org_code) as organisations,
        count(*) as respondents,
        cast(sum(scores.answers_positive) as double) * 100
        / sum(scores.answers_scored) as pct_positive,
        -- rounded: a parallel sum of doubles differs in the last bits from run to run
        round(avg(scores.score_0_100), 6) as mean_score
    from {{ ref('int_survey_responses__domain_scores') }} as scores
    inner join {{ ref('dim_organisation') }} as organisations
        on scores.org_code = organisations.org_code
    group by organisations.icb_code, scores.wave_id, scores.domain_code
)

select
    icb_code,
    wave_id,
    domain_code,
    cast(organisations as bigint) as organisations,
    cast(respondents as bigint) as respondents,
    case when respondents >= {{ min_respondents }} then pct_positive end as pct_positive,
    case when respondents >= {{ min_respondents }} then mean_score end as mean_score,
    respondents < {{ min_respondents }} as is_suppressed
from grouped
