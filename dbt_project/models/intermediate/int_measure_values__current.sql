-- The latest accepted submission per (organisation, period, measure): ingest marks every
-- older row superseded_by the submission that replaced it.
select *
from {{ ref('stg_raw__measure_values') }}
where is_current
