select
    org_code,
    org_name,
    sector_code,
    icb_code,
    postcode,
    open_date,
    close_date,
    close_date is null or close_date >= current_date as is_open,
    successor_code,
    reporting_org_code,
    register_source
from {{ ref('int_organisations__resolved') }}
