-- The validated change register, one row per change (docs/programme-impact.md section 1).
-- Blank rebase takes its default here, once: false for an intervention (recalculating at
-- the change would absorb the improvement), true for a definition or data-collection change.
-- Not period-partitioned: the register is small and read whole by fct_spc.
select
    change_id,
    change_date,
    cast(date_trunc('month', change_date) as date) as change_month,
    programme_code,
    measure_code,
    scope,
    scope_code,
    kind,
    coalesce(rebase_given, kind <> 'intervention') as rebase,
    description
from {{ ref('stg_config__change_register') }}
