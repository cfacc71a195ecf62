-- Public tier: ICB x sector x domain x survey wave. A group is suppressed on its own when
-- it has fewer than survey_public_min_respondents respondents ('primary') or its
-- respondents come from fewer than public_min_contributors organisations ('contributors':
-- one organisation's group is its own result, and with two either can take away its own
-- and read the other's). Figures null, flag set, never zero.
--
-- Secondary suppression, within each ICB x domain x wave: the published ICB total
-- (pub_culture_survey_by_icb) minus the published sectors gives the suppressed sectors
-- together, so if any sector is suppressed on its own, further sectors are suppressed,
-- smallest first, until the suppressed sectors together number at least two, hold at
-- least survey_public_min_respondents respondents and come from at least
-- public_min_contributors organisations. Sectors suppressed on their own sort first, so
-- the suppressed set is a prefix of that order. Respondent counts are rounded like every
-- public count (disclosure_round: nearest public_rounding_base, halves up); scores to one
-- decimal place. Reasons use the public tier's words: primary, contributors, secondary.
{% set min_respondents = var('survey_public_min_respondents') %}
{% set min_contributors = disclosure_rule('public_min_contributors') %}

with cells as (
    select
        icb_code,
        sector_code,
        wave_id,
        domain_code,
        respondents,
        organisations,
        pct_positive,
        mean_score,
        case
            when is_suppressed or respondents < {{ min_respondents }} then 'primary'
            when {{ disclosure_has_few_contributors('organisations') }} then 'contributors'
        end as own_reason
    from {{ ref('fct_culture_survey_by_sector') }}
),

ranked as (
    select
        *,
        sum(case when own_reason is not null then 1 else 0 end) over (
            partition by icb_code, wave_id, domain_code
        ) as own_cells,
        row_number() over (
            partition by icb_code, wave_id, domain_code
            order by case when own_reason is not null then 0 else 1 end, respondents, sector_code
        ) - 1 as cells_before,
        coalesce(sum(respondents) over (
            partition by icb_code, wave_id, domain_code
            order by case when own_reason is not null then 0 else 1 end, respondents, sector_code
            rows between unbounded preceding and 1 preceding
        ), 0) as respondents_before,
        coalesce(sum(organisations) over (
            partition by icb_code, wave_id, domain_code
            order by case when own_reason is not null then 0 else 1 end, respondents, sector_code
            rows between unbounded preceding and 1 preceding
        ), 0) as organisations_before
    from cells
),

-- A cell not suppressed on its own is suppressed when the cells before it (all
-- suppressed) are fewer than two, or hold too few respondents or organisations.
flagged as (
    select
        *,
        case
            when own_reason is not null then own_reason
            when
                own_cells > 0
                and (
                    cells_before < 2
                    or respondents_before < {{ min_respondents }}
                    or organisations_before < {{ min_contributors }}
                )
                then 'secondary'
        end as suppression_reason
    from ranked
)

select
    icb_code,
    sector_code,
    wave_id,
    domain_code,
    case when suppression_reason is null then {{ disclosure_round('respondents') }} end
        as respondents,
    case when suppression_reason is null then round(pct_positive, 1) end as pct_positive,
    case when suppression_reason is null then round(mean_score, 1) end as mean_score,
    suppression_reason is not null as is_suppressed,
    cast(suppression_reason as {{ dbt.type_string() }}) as suppression_reason
from flagged
