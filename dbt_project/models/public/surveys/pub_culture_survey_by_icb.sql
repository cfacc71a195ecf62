-- Public tier: ICB x domain x survey wave, all sectors together. A group with fewer than
-- survey_public_min_respondents respondents is suppressed ('primary'), and so is a group
-- whose respondents come from fewer than public_min_contributors organisations
-- ('contributors': with one or two, an organisation can read another's results by taking
-- away its own). Figures null, flag set, never zero. The sectors beneath it in
-- pub_culture_survey_by_sector carry the secondary suppression that keeps small sectors
-- from being derived from this total. Respondent counts are rounded like every public
-- count (disclosure_round); scores to one decimal.
{% set min_respondents = var('survey_public_min_respondents') %}

with cells as (
    select
        icb_code,
        wave_id,
        domain_code,
        respondents,
        pct_positive,
        mean_score,
        case
            when is_suppressed or respondents < {{ min_respondents }} then 'primary'
            when {{ disclosure_has_few_contributors('organisations') }} then 'contributors'
        end as suppression_reason
    from {{ ref('fct_culture_survey_by_icb') }}
)

select
    icb_code,
    wave_id,
    domain_code,
    case when suppression_reason is null then {{ disclosure_round('respondents') }} end
        as respondents,
    case when suppression_reason is null then round(pct_positive, 1) end as pct_positive,
    case when suppression_reason is null then round(mean_score, 1) end as mean_score,
    suppression_reason is not null as is_suppressed,
    cast(suppression_reason as {{ dbt.type_string() }}) as suppression_reason
from cells
