-- Roll-ups of fct_incident_monthly by sector (within its ICB), ICB and region: level x
-- group x month x event type x category x harm level (internal tier; the public tier gets
-- incident measures through the measure facts and their disclosure control).
with monthly as (
    select m.*, o.sector_code, o.icb_code
    from {{ ref('fct_incident_monthly') }} as m
    inner join {{ ref('dim_organisation') }} as o using (org_code)
),

levels as (
    select 'sector' as level, icb_code || ':' || sector_code as group_code, icb_code,
        sector_code, * exclude (icb_code, sector_code)
    from monthly
    union all
    select 'icb', icb_code, icb_code, null, * exclude (icb_code, sector_code) from monthly
    union all
    select 'region', 'region', null, null, * exclude (icb_code, sector_code) from monthly
)

select
    level,
    group_code,
    icb_code,
    sector_code,
    period,
    event_type,
    category,
    harm_level,
    cast(count(distinct org_code) as bigint) as organisations,
    cast(sum(incidents) as bigint) as incidents
from levels
group by all
