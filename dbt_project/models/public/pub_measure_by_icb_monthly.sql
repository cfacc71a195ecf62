-- Public tier: ICB x measure x month. Children of pub_measure_by_region_monthly (the
-- ICBs add up to the region row), so secondary suppression is decided within each
-- (measure, month) against the region row's final status.
with counts as (
    {{ disclosure_counts(
        ref('fct_measure_monthly'), ref('measure_catalogue'), ['icb_code', 'measure_code', 'period']
    ) }}
),

parents as (
    select measure_code, period, is_suppressed
    from {{ ref('pub_measure_by_region_monthly') }}
    {%- if is_incremental() %}
    where period between {{ period_range() }}
    {%- endif %}
),

suppressed as (
    {{ disclosure_suppress('counts', 'parents', ['measure_code', 'period'], 'icb_code') }}
)

select
    suppressed.icb_code,
    suppressed.measure_code,
    suppressed.period,
    suppressed.programme_code,
    {{ disclosure_cells('suppressed') }}
from suppressed
