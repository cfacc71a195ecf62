-- Grain: organisation x domain x survey wave (internal tier). Computed from respondents:
-- pct_positive = positive answers / scored answers; mean_score = mean of respondents'
-- domain scores (0-100). Groups with fewer than survey_internal_min_respondents
-- respondents keep their count but every figure is null and is_suppressed is true.
-- The change is against the organisation's previous wave with a row for the domain (null
-- if either wave is suppressed).
{% set min_respondents = var('survey_internal_min_respondents') %}

with by_organisation as (
    select
        scores.org_code,
        scores.wave_id,
        scores.domain_code,
        count(*) as respondents,
        sum(scores.answers_scored) as answers_scored,
        sum(scores.answers_positive) as answers_positive,
        -- rounded: a parallel sum of doubles differs in the last bits from run to run
        round(avg(scores.score_0_100), 6) as mean_score
    from {{ ref('int_survey_responses__domain_scores') }} as scores
    group by scores.org_code, scores.wave_id, scores.domain_code
),

measured as (
    select
        by_organisation.*,
        waves.opens_on,
        by_organisation.respondents < {{ min_respondents }} as is_suppressed,
        cast(by_organisation.answers_positive as double) * 100
        / by_organisation.answers_scored as pct_positive
    from by_organisation
    inner join {{ ref('dim_survey_wave') }} as waves
        on by_organisation.wave_id = waves.wave_id
),

shown as (
    select
        measured.*,
        case when not measured.is_suppressed then measured.pct_positive end as shown_pct,
        case when not measured.is_suppressed then measured.mean_score end as shown_mean
    from measured
),

with_previous as (
    select
        shown.*,
        lag(shown.wave_id) over (
            partition by shown.org_code, shown.domain_code order by shown.opens_on, shown.wave_id
        ) as previous_wave_id,
        lag(shown.shown_pct) over (
            partition by shown.org_code, shown.domain_code order by shown.opens_on, shown.wave_id
        ) as previous_pct,
        lag(shown.shown_mean) over (
            partition by shown.org_code, shown.domain_code order by shown.opens_on, shown.wave_id
        ) as previous_mean
    from shown
)

select
    with_previous.org_code,
    with_previous.wave_id,
    with_previous.domain_code,
    organisations.sector_code,
    organisations.icb_code,
    cast(with_previous.respondents as bigint) as respondents,
    with_previous.shown_pct as pct_positive,
    with_previous.shown_mean as mean_score,
    with_previous.previous_wave_id,
    with_previous.shown_pct - with_previous.previous_pct as pct_positive_change,
    with_previous.shown_mean - with_previous.previous_mean as mean_score_change,
    with_previous.is_suppressed
from with_previous
left join {{ ref('dim_organisation') }} as organisations
    on with_previous.org_code = organisations.org_code
