-- The warehouse holds the configured region's organisations only: var('region_icbs'), or
-- ['ENGLAND'] for all. The register is filtered where it is loaded
-- (pipelines/ingest/organisations.py, split_by_region); this test guards that promise, so
-- a working file built for another region, or a register loaded without the filter,
-- cannot be published. Rows returned are organisations outside the region.
{{ config(tags=['blocking'], meta={'affects': ['dim_organisation', 'mart_submission_completeness']}) }}
{%- set region = var('region_icbs') | list %}
select org_code, icb_code
from {{ ref('dim_organisation') }}
{% if region == ['ENGLAND'] -%}
where false
{%- else -%}
where icb_code is null
   or icb_code not in ({% for icb in region %}'{{ icb }}'{% if not loop.last %}, {% endif %}{% endfor %})
{%- endif %}
