select
    org_code,
    nullif(trim(org_name), '') as org_name,
    nullif(sector_code, '') as sector_code,
    nullif(icb_code, '') as icb_code,
    open_date,
    close_date,
    nullif(successor_code, '') as successor_code,
    source_file
from {{ source('raw', 'local_organisations') }}
