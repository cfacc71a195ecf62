-- Public tier: ICB x sector x domain x survey wave. A group with fewer than
-- survey_public_min_respondents respondents is suppressed (figures null, flag set, never
-- zero). Secondary suppression, within each ICB x domain x wave: if any sector is
-- suppressed, further sectors are suppressed, smallest first, until the suppressed sectors
-- together number at least two and hold at least survey_public_min_respondents
-- respondents, so no small group can be worked out by subtracting the published sectors
-- from the published ICB total (pub_culture_survey_by_icb). Respondent counts are rounded
-- like every public count (disclosure_round: nearest public_rounding_base, halves up);
-- scores to one decimal place. Reasons use the public tier's words: primary, secondary.
{% set min_respondents = var('survey_public_min_respondents') %}

with cells as (
    select
        icb_code,
        sector_code,
        wave_id,
        domain_code,
        respondents,
        pct_positive,
        mean_score,
        is_suppressed or respondents < {{ min_respondents }} as is_small
    from {{ ref('fct_culture_survey_by_sector') }}
),

ranked as (
    select
        cells.*,
        sum(case when is_small then 1 else 0 end) over (
            partition by icb_code, wave_id, domain_code
        ) as small_cells,
        row_number() over (
            partition by icb_code, wave_id, domain_code order by respondents, sector_code
        ) as size_rank,
        sum(respondents) over (
            partition by icb_code, wave_id, domain_code
            order by respondents, sector_code
            rows between unbounded preceding and current row
        ) - respondents as smaller_respondents
    from cells
),

-- Small cells are the smallest ones, so the suppressed set is a prefix in size order:
-- a cell is suppressed if it is small, or if the smaller cells before it (all suppressed)
-- are fewer than two or hold fewer than the threshold between them.
flagged as (
    select
        ranked.*,
        case
            when is_small then 'primary'
            when
                small_cells > 0
                and (size_rank - 1 < 2 or smaller_respondents < {{ min_respondents }})
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
