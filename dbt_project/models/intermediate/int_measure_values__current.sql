-- The latest accepted submission per (organisation, period, measure): ingest marks every
-- older row superseded_by the submission that replaced it.
select *
from {{ ref('stg_raw__measure_values') }}
where is_current

union all by name

-- Measures derived centrally from incident records (catalogue source = incidents): the
-- same fact, so the same SPC, dashboards, baselines and public-tier disclosure control.
select
    derived.submission_id,
    derived.org_code,
    derived.period,
    derived.measure_code,
    derived.numerator,
    derived.denominator,
    cast(null as bigint) as superseded_by,
    true as is_current,
    'incident records' as source_file,
    cast(null as varchar) as sha256,
    cast(null as bigint) as source_line,
    submissions.received_at as loaded_at
from {{ ref('int_incident__measure_values') }} as derived
inner join {{ ref('stg_raw__submissions') }} as submissions
    on derived.submission_id = submissions.submission_id
