{{ config(materialized='table') }}
-- One row per level, group and event month of fct_incident_reporting_lag: a fingerprint of
-- everything that unit's figures are computed from, the rule int_incident__reporting_lag
-- is kept by (docs/incidents.md, "Median reporting lag, incremental by group and month").
-- A unit's figures depend on its member organisations' incidents of that month (key and
-- lag) and on which organisations are its members (the register's sector and ICB), and on
-- nothing else: each organisation-month enters as its count and a sum of row hashes, with
-- the organisation's sector and ICB, and a unit sums those of its members (order-free).
-- So a new extract changes the units of the months its events moved in, for its
-- organisation, sector, ICB and the region; a register move changes the organisation's
-- units and those of the groups it left and joined, not the region's (nor the ICB's, for
-- a move of sector within it). One scan of fct_incident.
with organisation_months as (
    select
        org_code,
        event_month as period,
        count(*) as incidents,
        sum(hash(event_key, reporting_lag_days)) as events_hash
    from {{ ref('fct_incident') }}
    where event_type = 'incident'
    group by org_code, event_month
),

members as (
    select
        organisation_months.*,
        o.sector_code,
        o.icb_code
    from organisation_months
    inner join {{ ref('dim_organisation') }} as o on organisation_months.org_code = o.org_code
)

select
    g.level,
    g.group_code,
    members.period,
    -- the member's ICB and sector as this level shows them (the organisation's own row
    -- shows both; an ICB's figures do not move when a member changes sector within it)
    sum(hash(
        members.org_code, g.group_icb_code, g.group_sector_code, members.incidents,
        members.events_hash
    )) as inputs_hash
from members
{{ geography_levels('members', organisation=true) }}
group by g.level, g.group_code, members.period
