-- The culture domains the instruments measure (teamwork, communication, just culture,
-- psychological safety, diversity and inclusion, civility), in reporting order.
select
    domain_code,
    min(domain_name) as domain_name,
    cast(min(domain_order) as integer) as sort_order
from {{ ref('stg_raw__survey_questions') }}
group by domain_code
