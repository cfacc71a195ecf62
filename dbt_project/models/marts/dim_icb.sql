-- Integrated care boards: code and name, every ICB an organisation in the register is
-- filed under. A dimension of its own (not dim_organisation filtered) because the public
-- tier publishes it: ICBs are the geography public figures are reported by, and this
-- table names no provider. The name is the ICB's own register row; an ICB missing from
-- the register is named by its code.
with icbs as (
    select distinct icb_code
    from {{ ref('dim_organisation') }}
    where icb_code is not null
)

select
    icbs.icb_code,
    coalesce(boards.org_name, icbs.icb_code) as icb_name
from icbs
left join {{ ref('dim_organisation') }} as boards
    on icbs.icb_code = boards.org_code and boards.sector_code = 'icb'
