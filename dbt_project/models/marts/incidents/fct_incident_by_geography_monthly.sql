-- Roll-ups of fct_incident_monthly by sector (within its ICB), ICB and region: level x
-- group x month x event type x category x harm level (internal tier; the public tier gets
-- incident measures through the measure facts and their disclosure control).
with monthly as (
    select
        m.*,
        o.sector_code,
        o.icb_code
    from {{ ref('fct_incident_monthly') }} as m
    inner join {{ ref('dim_organisation') }} as o on m.org_code = o.org_code
),

levels as (
    select
        monthly.*,
        g.level,
        g.group_code,
        g.group_icb_code,
        g.group_sector_code
    from monthly
    {{ geography_levels('monthly') }}
)

select
    {{ geography_group_columns() }},
    period,
    event_type,
    category,
    harm_level,
    cast(count(distinct org_code) as bigint) as organisations,
    cast(sum(incidents) as bigint) as incidents
from levels
group by all
