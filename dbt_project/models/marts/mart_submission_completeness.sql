-- Expected versus received returns: one row per organisation, measure and month that the
-- organisation should report (open that month, its sector in the measure's
-- applies_to_sectors), over the months the warehouse holds data for. A return is due
-- var('return_due_days') days after the end of its month.
with facts as (
    select * from {{ ref('stg_raw__measure_values') }}
),

submissions as (
    select submission_id, received_at from {{ ref('stg_raw__submissions') }}
),

organisations as (
    select * from {{ ref('int_organisations__resolved') }}
),

measures as (
    -- measures providers return (not those derived from incident records)
    select * from {{ ref('measure_catalogue') }}
    where source = 'returns'
),

window_months as (
    select months.period
    from {{ ref('dim_period') }} as months
    where
        months.period
        between (select min(facts.period) from facts) and (select max(facts.period) from facts)
        -- incremental: the run's months only, like the facts it is counted from; a register
        -- change reaches older months by backfill, as it does for the roll-ups
        and months.period between {{ period_range() }}
),

expected as (
    select
        organisations.org_code,
        organisations.org_name,
        organisations.sector_code,
        organisations.icb_code,
        measures.measure_code,
        measures.programme_code,
        window_months.period
    from organisations
    cross join window_months
    inner join measures
        on {{ dbt.position(
            "'|' || organisations.sector_code || '|'", "'|' || measures.applies_to_sectors || '|'"
        ) }} > 0
    where
        organisations.is_reporting_expected
        and (
            organisations.open_date is null
            or organisations.open_date <= {{ dbt.last_day('window_months.period', 'month') }}
        )
        and (organisations.close_date is null or organisations.close_date >= window_months.period)
),

received as (
    select
        facts.org_code,
        facts.measure_code,
        facts.period,
        min(submissions.received_at) as first_received_at,
        max(case when facts.is_current then facts.submission_id end) as current_submission_id
    from facts
    inner join submissions on facts.submission_id = submissions.submission_id
    group by facts.org_code, facts.measure_code, facts.period
)

select
    expected.org_code,
    expected.org_name,
    expected.sector_code,
    expected.icb_code,
    expected.measure_code,
    expected.programme_code,
    expected.period,
    cast({{ dbt.dateadd(
        'day', var('return_due_days'), dbt.last_day('expected.period', 'month')
    ) }} as date) as due_date,
    received.first_received_at is not null as is_received,
    received.first_received_at,
    received.current_submission_id,
    coalesce(
        received.first_received_at
        > cast({{ dbt.dateadd(
            'day', var('return_due_days') + 1, dbt.last_day('expected.period', 'month')
        ) }} as timestamp),
        false
    ) as is_late,
    case
        when received.first_received_at is null then 'missing'
        when
            received.first_received_at
            > cast({{ dbt.dateadd(
                'day', var('return_due_days') + 1, dbt.last_day('expected.period', 'month')
            ) }} as timestamp)
            then 'late'
        else 'received'
    end as status
from expected
left join received
    on expected.org_code = received.org_code
    and expected.measure_code = received.measure_code
    and expected.period = received.period
