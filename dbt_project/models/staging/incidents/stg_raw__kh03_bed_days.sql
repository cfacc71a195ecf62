-- Occupied bed days per provider, month and sector from KH03 (docs/incidents.md, "Occupied
-- bed days"): KH03 gives the average daily number of occupied beds over a quarter, so the
-- quarter's bed days are that average x the days in the quarter, spread to its months by
-- their days (a month's bed days = average x days in the month). The latest file for a
-- provider and quarter wins (a revised publication replaces the first).
with latest as (
    select
        submission_id,
        org_code,
        quarter_start,
        sector,
        occupied_beds,
        source_file,
        max(submission_id) over (partition by org_code, quarter_start) as latest_submission_id
    from {{ source('raw', 'kh03_beds') }}
),

month_offsets as (
    select unnest(range(3)) as month_offset
),

months as (
    select
        latest.submission_id,
        latest.org_code,
        latest.quarter_start,
        latest.sector,
        latest.occupied_beds,
        latest.source_file,
        cast(latest.quarter_start + to_months(month_offsets.month_offset) as date) as period
    from latest
    cross join month_offsets
    where latest.submission_id = latest.latest_submission_id
)

select
    org_code,
    period,
    sector,
    quarter_start,
    occupied_beds,
    occupied_beds * dayofmonth(last_day(period)) as occupied_bed_days,
    submission_id,
    source_file
from months
