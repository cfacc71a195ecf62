-- Public tier: ICB x domain x survey wave, all sectors together. A group with fewer than
-- survey_public_min_respondents respondents is suppressed (figures null, flag set, never
-- zero). The sectors beneath it in pub_culture_survey_by_sector carry the secondary
-- suppression that keeps small sectors from being derived from this total. Respondent
-- counts are rounded like every public count (disclosure_round); scores to one decimal.
{% set min_respondents = var('survey_public_min_respondents') %}

with cells as (
    select
        icb_code,
        wave_id,
        domain_code,
        respondents,
        pct_positive,
        mean_score,
        is_suppressed or respondents < {{ min_respondents }} as is_small
    from {{ ref('fct_culture_survey_by_icb') }}
)

select
    icb_code,
    wave_id,
    domain_code,
    case when not is_small then {{ disclosure_round('respondents') }} end as respondents,
    case when not is_small then round(pct_positive, 1) end as pct_positive,
    case when not is_small then round(mean_score, 1) end as mean_score,
    is_small as is_suppressed,
    cast(case when is_small then 'primary' end as {{ dbt.type_string() }}) as suppression_reason
from cells
