-- One row per organisation: ODS first, the local register filling gaps and overriding
-- sector, ICB, dates and successor. reporting_org_code follows successors (up to three
-- mergers deep) so a merged trust's history rolls up to the organisation that exists now.
with ods as (
    select * from {{ ref('stg_ods__organisations') }}
),

local_register as (
    select * from {{ ref('stg_local__organisations') }}
),

combined as (
    select
        coalesce(ods.org_code, local_register.org_code) as org_code,
        coalesce(local_register.org_name, ods.org_name) as org_name,
        coalesce(local_register.sector_code, ods.sector_code) as sector_code,
        coalesce(local_register.icb_code, ods.icb_code) as icb_code,
        ods.postcode,
        coalesce(local_register.open_date, ods.open_date) as open_date,
        coalesce(local_register.close_date, ods.close_date) as close_date,
        local_register.successor_code,
        ods.status_code,
        -- ODS marks dormant (D) and proposed (P) practices: they are not expected to report.
        coalesce(ods.status_code, 'A') in ('A', 'C') as is_reporting_expected,
        case
            when ods.org_code is not null and local_register.org_code is not null
                then 'ods+local'
            when ods.org_code is not null then 'ods'
            else 'local'
        end as register_source
    from ods
    full outer join local_register on ods.org_code = local_register.org_code
)

select
    combined.*,
    coalesce(s3.successor_code, s2.successor_code, combined.successor_code, combined.org_code)
        as reporting_org_code
from combined
left join combined as s2 on combined.successor_code = s2.org_code
left join combined as s3 on s2.successor_code = s3.org_code
