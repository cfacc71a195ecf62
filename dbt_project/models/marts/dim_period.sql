-- Reporting months from the catalogue start to the current month. Financial years run
-- April to March ("2024/25"), quarters within them (Q1 = April to June).
with digits as (
    select digit.d
    from (values (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) as digit (d)
),

month_offsets as (
    select hundreds.d * 100 + tens.d * 10 + units.d as month_offset
    from digits as hundreds
    cross join digits as tens
    cross join digits as units
),

months as (
    select
        cast({{ dbt.dateadd(
            'month', 'month_offset', "cast('" ~ var('catalogue_start') ~ "' as date)"
        ) }} as date)
            as period
    from month_offsets
),

calendar as (
    select
        period,
        cast(extract(year from period) as integer) as calendar_year,
        cast(extract(month from period) as integer) as calendar_month
    from months
    where period <= current_date
)

select
    period,
    calendar_year,
    calendar_month,
    case when calendar_month >= 4 then calendar_year else calendar_year - 1 end
        as financial_year_start,
    {{ dbt.concat([
        "cast(case when calendar_month >= 4 then calendar_year else calendar_year - 1 end as varchar)",
        "'/'",
        "right(cast(case when calendar_month >= 4 then calendar_year + 1 else calendar_year end as varchar), 2)"
    ]) }} as financial_year,
    {{ dbt.concat([
        "'Q'", "cast(cast(floor(((calendar_month + 8) % 12) / 3.0) as integer) + 1 as varchar)"
    ]) }}
        as financial_quarter,
    cast(floor((calendar_month - 1) / 3.0) as integer) + 1 as calendar_quarter
from calendar
