-- Public tier, top level: measure x month over every organisation in the warehouse.
-- Only suppression on the cell's own figures applies here (small counts, too few
-- contributing organisations; nothing above it to subtract from); the ICB model reads this
-- model's is_suppressed to decide its own secondary suppression.
with counts as (
    {{ disclosure_counts(
        ref('fct_measure_monthly'), ref('measure_catalogue'), ['measure_code', 'period']
    ) }}
),

flagged as (
    select
        counts.*,
        {{ disclosure_own_reason('counts.numerator', 'counts.denominator', 'counts.contributors') }}
            as suppression_reason
    from counts
)

select
    flagged.measure_code,
    flagged.period,
    flagged.programme_code,
    {{ disclosure_cells('flagged') }}
from flagged
