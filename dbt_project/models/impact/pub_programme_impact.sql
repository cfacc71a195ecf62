{{ config(schema='public', materialized='table', tags=['after_spc']) }}
-- Public tier: fct_programme_impact's method (docs/programme-impact.md section 4) on the
-- public SPC series (sector, ICB and region) of public.pub_spc, so every figure comes from
-- the disclosure-controlled, rounded counts. No organisation series and no organisation
-- code. Events are rounded to the public rounding base; the four event figures are
-- withheld together (null) when any of them, rounded, is a count in the small range
-- (macros/disclosure.sql), since each is the difference of two others.
with spc as (
    select
        level, series_key, cast(null as varchar) as org_code, sector_code, icb_code,
        programme_code, measure_code, period, numerator, denominator, value, chart,
        improvement_direction, centre, lpl, upl, segment, segment_start, in_baseline
    from {{ ref('pub_spc') }}
),

series_change as (
    select level, series_key, measure_code, change_id, change_month
    from {{ ref('pub_series_change') }}
),

changes as (
    select change_id, description from {{ ref('pub_change') }}
)

{{ impact_ctes() }},

rounded as (
    select
        impact.*,
        {{ disclosure_round('impact.expected_events') }} as expected_rounded,
        {{ disclosure_round('impact.observed_events') }} as observed_rounded
    from impact
),

events as (
    select
        rounded.*,
        rounded.observed_rounded - rounded.expected_rounded as excess_rounded,
        {{ disclosure_is_small('abs(rounded.expected_rounded)') }}
        or {{ disclosure_is_small('abs(rounded.observed_rounded)') }}
        or {{ disclosure_is_small('abs(rounded.observed_rounded - rounded.expected_rounded)') }}
            as events_withheld
    from rounded
)

select
    {{ impact_columns(with_org_code=false) }},
    cast(case when not coalesce(events_withheld, false) then expected_rounded end as bigint)
        as expected_events,
    cast(case when not coalesce(events_withheld, false) then observed_rounded end as bigint)
        as observed_events,
    cast(case when not coalesce(events_withheld, false) then excess_rounded end as bigint)
        as excess_events,
    cast(
        case when not coalesce(events_withheld, false) then excess_rounded * direction end
        as bigint
    ) as events_better
from events
where level in ('sector', 'icb', 'region')
