select sector_code, sector_name, sector_group, sort_order
from {{ ref('sectors') }}
