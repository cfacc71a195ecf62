-- Department view (internal dashboards): organisation x month x service area x location x
-- specialty x harm level, with the LFPSE labels of the codes.
with counts as (
    select
        org_code,
        event_month as period,
        coalesce(service_area, 'not_recorded') as service_area,
        coalesce(location, 'not_recorded') as location,
        coalesce(specialty, 'not_recorded') as specialty,
        harm_level,
        count(*) as incidents
    from {{ ref('fct_incident') }}
    group by all
)

select
    c.org_code,
    c.period,
    c.service_area,
    coalesce(sa.display, 'Not recorded') as service_area_name,
    c.location,
    coalesce(lo.display, 'Not recorded') as location_name,
    c.specialty,
    coalesce(sp.display, 'Not recorded') as specialty_name,
    c.harm_level,
    cast(c.incidents as bigint) as incidents
from counts as c
left join {{ ref('lfpse_service_type') }} as sa on c.service_area = cast(sa.code as varchar)
left join {{ ref('lfpse_incident_location') }} as lo on c.location = cast(lo.code as varchar)
left join {{ ref('lfpse_specialty') }} as sp on c.specialty = cast(sp.code as varchar)
