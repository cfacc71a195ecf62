{#
  The SPC step's rows of one tier (docs/architecture.md sections 3 and 4): the one place
  that decides what each tier's SPC tables hold. fct_spc / fct_series_change are the
  internal tier's rows; pub_spc / pub_series_change the public tier's, pub_spc without the
  columns that belong to the internal tier (tier, org_code, organisations_reporting,
  target) and with every per-month statistic of a suppressed month null (the disclosure
  scan's rule): its centre, limits and segment number too; segment_start still says which
  segment the gap falls in, and the series-level icons are kept. write_pub_spc and
  write_series_change (pipelines/defs/spc.py) render these same macros for hand-made
  snapshots in tests.
#}

{% macro spc_tier_points(tier) -%}
    {%- set internal_only = ['tier', 'org_code', 'organisations_reporting', 'target'] -%}
    {%- set nulled_when_suppressed = ['centre', 'lpl', 'upl', 'near_lpl', 'near_upl', 'segment'] -%}
    {%- set columns = [
        'level', 'tier', 'series_key', 'org_code', 'sector_code', 'icb_code', 'programme_code',
        'measure_code', 'period', 'organisations_reporting', 'numerator', 'denominator', 'value',
        'is_suppressed', 'chart', 'improvement_direction', 'target', 'centre', 'lpl', 'upl',
        'near_lpl', 'near_upl', 'segment', 'segment_start', 'in_baseline', 'limits_basis',
        'trial_limits', 'special_cause_flag', 'special_cause_type', 'special_cause_label',
        'point_type', 'variation_icon', 'assurance_type'
    ] -%}
select
{%- for column in columns if tier == 'internal' or column not in internal_only %}
    {% if tier == 'public' and column in nulled_when_suppressed -%}
        case when not is_suppressed then {{ column }} end as {{ column }}
    {%- else -%}
        {{ column }}
    {%- endif -%}
    {{- ',' if not loop.last }}
{%- endfor %}
from {{ source('spc', 'spc_points') }}
where tier = '{{ tier }}'
{%- endmacro %}


{% macro spc_tier_series_changes(tier) -%}
select
    level,
    tier,
    series_key,
    measure_code,
    change_id,
    change_month,
    kind,
    rebases
from {{ source('spc', 'spc_series_changes') }}
where tier = '{{ tier }}'
{%- endmacro %}
