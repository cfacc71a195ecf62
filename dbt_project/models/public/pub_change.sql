-- The change register for the public tier: changes scoped to one organisation are never
-- published, since their description may name it (docs/programme-impact.md section 1).
select *
from {{ ref('dim_change') }}
where scope <> 'organisation'
