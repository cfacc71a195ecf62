-- Each loaded extract, per organisation it covers: its range, its events, and how many
-- events it deleted (held by an earlier extract, within its range, and not in it).
with deletions as (
    select
        deleted_by_submission as submission_id,
        org_code,
        layout,
        count(*) as n
    from {{ ref('int_incident__events') }}
    where is_deleted
    group by all
)

select
    x.submission_id,
    log.file_name,
    x.layout,
    x.org_code,
    x.covers_from,
    x.covers_to,
    cast(x.events as bigint) as events,
    cast(coalesce(d.n, 0) as bigint) as events_deleted,
    x.loaded_at
from {{ ref('stg_raw__incident_extracts') }} as x
inner join {{ source('raw', 'submission_log') }} as log
    on x.submission_id = log.submission_id
left join deletions as d
    on x.submission_id = d.submission_id and x.org_code = d.org_code and x.layout = d.layout
