{# One row per geography level a row of `rows` counts in: its sector (within its ICB), its
   ICB and the region, and with organisation=true the organisation itself. A lateral join,
   so a level's figure is computed from the rows themselves (a median, a count of distinct
   organisations) rather than added up from the level below. `rows` must carry org_code,
   sector_code and icb_code; the join adds level, group_code, group_icb_code and
   group_sector_code. Used by the incident roll-ups (docs/incidents.md). #}
{% macro geography_levels(rows, organisation=false) -%}
cross join lateral (
    values
    {%- if organisation %}
    ('organisation', {{ rows }}.org_code, {{ rows }}.icb_code, {{ rows }}.sector_code),
    {%- endif %}
    (
        'sector', {{ rows }}.icb_code || ':' || {{ rows }}.sector_code, {{ rows }}.icb_code,
        {{ rows }}.sector_code
    ),
    ('icb', {{ rows }}.icb_code, {{ rows }}.icb_code, null),
    ('region', 'region', null, null)
) as g (level, group_code, group_icb_code, group_sector_code)
{%- endmacro %}

{# The columns naming a roll-up's group, from what geography_levels adds: level, group_code,
   icb_code and sector_code (the group's ICB and sector, null above them). #}
{% macro geography_group_columns() -%}
    level,
    group_code,
    group_icb_code as icb_code,
    group_sector_code as sector_code
{%- endmacro %}
