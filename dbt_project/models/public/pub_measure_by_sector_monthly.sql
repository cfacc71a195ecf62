-- Public tier: ICB x sector x measure x month. Children of pub_measure_by_icb_monthly
-- (the sectors of an ICB add up to the ICB row), so secondary suppression is decided
-- within each (ICB, measure, month) against the ICB row's final status, which already
-- includes the ICB's own secondary suppression. Period-partitioned like the marts' roll-ups:
-- every rule works within one month, so rebuilding only the run's months is exact.
with counts as (
    {{ disclosure_counts(
        ref('fct_measure_monthly'),
        ref('measure_catalogue'),
        ['icb_code', 'sector_code', 'measure_code', 'period']
    ) }}
),

parents as (
    select icb_code, measure_code, period, is_suppressed
    from {{ ref('pub_measure_by_icb_monthly') }}
    {%- if is_incremental() %}
    where period between {{ period_range() }}
    {%- endif %}
),

suppressed as (
    {{ disclosure_suppress(
        'counts', 'parents', ['icb_code', 'measure_code', 'period'], 'sector_code'
    ) }}
)

select
    suppressed.icb_code,
    suppressed.sector_code,
    suppressed.measure_code,
    suppressed.period,
    suppressed.programme_code,
    {{ disclosure_cells('suppressed') }}
from suppressed
