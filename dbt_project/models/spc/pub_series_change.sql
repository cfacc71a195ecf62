-- The changes that apply to the public series (source spc.spc_series_changes holds both tiers).
select
    level,
    tier,
    series_key,
    measure_code,
    change_id,
    change_month,
    kind,
    rebases
from {{ source('spc', 'spc_series_changes') }}
where tier = 'public'
