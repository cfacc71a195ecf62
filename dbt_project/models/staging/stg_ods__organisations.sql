-- ODS carries no trust type in etr.csv: ambulance trusts are named as such, other trusts
-- default to acute and the local register overrides (mental health, community).
select
    org_code,
    org_name,
    icb_code,
    postcode,
    open_date,
    close_date,
    record_type,
    case
        when record_type = 'trust' and upper(org_name) like '%AMBULANCE%' then 'ambulance_trust'
        when record_type = 'trust' then 'acute_trust'
        when prescribing_setting = '4' then 'gp_practice'
        else 'other_prescribing_setting'
    end as sector_code,
    status_code,
    sub_icb_code,
    source_file
from {{ source('raw', 'ods_organisations') }}
