{#
  Disclosure control for the public tier (DESIGN §7). The public models are the only
  place these macros are used; the Python scan (pipelines/publish/disclosure.py) checks
  their output independently with the same thresholds.

  Thresholds are dbt vars passed by the pipeline from the deployment's configuration
  (pipelines/settings.py, docs/configuration.md), the values the Python scan reads too.
#}

{% macro disclosure_rule(name) -%}
    {#- Zero is a true zero, never small: the lower bound of suppression is a constant. -#}
    {%- if name == 'public_min_count' -%}{{ return(1) }}{%- endif -%}
    {%- if name not in ('public_max_suppressed_count', 'public_rounding_base', 'public_min_contributors') -%}
        {{ exceptions.raise_compiler_error('unknown disclosure rule ' ~ name) }}
    {%- endif -%}
    {{- return(var(name) | int) -}}
{%- endmacro %}


{# True when a count is small enough to identify people: in [min, max]. Zero is not. #}
{% macro disclosure_is_small(count) -%}
    ({{ count }} >= {{ disclosure_rule('public_min_count') }}
     and {{ count }} <= {{ disclosure_rule('public_max_suppressed_count') }})
{%- endmacro %}


{# A count rounded to the nearest multiple of the base, halves up. floor() on a double
   rather than integer division because `/` on integers differs between engines. #}
{% macro disclosure_round(count) -%}
    {%- set base = disclosure_rule('public_rounding_base') -%}
    cast(floor(({{ count }} + {{ base }} / 2.0) / {{ base }}) * {{ base }} as bigint)
{%- endmacro %}


{# Unrounded counts from the organisation-level fact, summed to `group_columns`. Public
   models start here, never from the internal roll-ups, so their figures depend only on
   the audited fact and the rules in this file. In an incremental run only the run's
   months are read: every rule works within one month, so a month is rebuilt exactly. #}
{% macro disclosure_counts(facts, catalogue, group_columns) -%}
    select
        {%- for column in group_columns %}
        facts.{{ column }},
        {%- endfor %}
        facts.programme_code,
        cast(sum(facts.numerator) as bigint) as numerator,
        cast(sum(facts.denominator) as bigint) as denominator,
        max(measures.multiplier) as multiplier
    from {{ facts }} as facts
    inner join {{ catalogue }} as measures on facts.measure_code = measures.measure_code
    {%- if is_incremental() %}
    where facts.period between {{ period_range() }}
    {%- endif %}
    group by
        {%- for column in group_columns %}
        facts.{{ column }},
        {%- endfor %}
        facts.programme_code
{%- endmacro %}


{#
  Primary and secondary suppression of the children of one parent table.

  counts      relation/CTE: parent_keys, child_key, numerator, denominator (unrounded)
  parents     relation/CTE: parent_keys and is_suppressed (the parent's final status)
  parent_keys columns shared by a child and its parent, e.g. [icb_code, measure_code, period]
  child_key   the column that tells siblings apart, e.g. sector_code

  A child is primary-suppressed when its numerator or denominator is small. Within one
  parent, the smallest unsuppressed child (numerator, then denominator, then child_key) is
  secondary-suppressed when
    - the parent is published and exactly one sibling is primary-suppressed (otherwise
      parent minus the published siblings gives the suppressed one), or
    - the parent is suppressed but no sibling is (otherwise the parent is the sum of its
      published children, which undoes the parent's suppression).
  The join is null-safe so that organisations with no ICB still find their parent row.
#}
{% macro disclosure_suppress(counts, parents, parent_keys, child_key) -%}
    {%- set partition = parent_keys | join(', ') -%}
    select
        ranked.*,
        case
            when ranked.is_primary then 'primary'
            when ranked.size_rank = 1 and (
                (not ranked.parent_is_suppressed and ranked.primary_siblings = 1)
                or (ranked.parent_is_suppressed and ranked.primary_siblings = 0)
            ) then 'secondary'
        end as suppression_reason
    from (
        select
            flagged.*,
            sum(case when flagged.is_primary then 1 else 0 end)
                over (partition by {{ partition }}) as primary_siblings,
            row_number() over (
                partition by {{ partition }}
                order by
                    case when flagged.is_primary then 1 else 0 end,
                    flagged.numerator,
                    flagged.denominator,
                    flagged.{{ child_key }}
            ) as size_rank
        from (
            select
                children.*,
                coalesce(parents.is_suppressed, false) as parent_is_suppressed,
                ({{ disclosure_is_small('children.numerator') }}
                 or {{ disclosure_is_small('children.denominator') }}) as is_primary
            from {{ counts }} as children
            left join {{ parents }} as parents
                on
                {%- for key in parent_keys %}
                {% if not loop.first %}and {% endif -%}
                (children.{{ key }} = parents.{{ key }}
                 or (children.{{ key }} is null and parents.{{ key }} is null))
                {%- endfor %}
        ) as flagged
    ) as ranked
{%- endmacro %}


{# The published cells of a row carrying numerator, denominator, multiplier and
   suppression_reason: rounded counts, the rate from the ROUNDED counts, and the flag.
   A suppressed cell is null with is_suppressed = true, never zero. #}
{% macro disclosure_cells(relation_alias) -%}
    case when {{ relation_alias }}.suppression_reason is null
        then {{ disclosure_round(relation_alias ~ '.numerator') }} end as numerator,
    case when {{ relation_alias }}.suppression_reason is null
        then {{ disclosure_round(relation_alias ~ '.denominator') }} end as denominator,
    case when {{ relation_alias }}.suppression_reason is null
        then {{ rate(
            disclosure_round(relation_alias ~ '.numerator'),
            disclosure_round(relation_alias ~ '.denominator'),
            relation_alias ~ '.multiplier'
        ) }} end as value,
    {{ relation_alias }}.suppression_reason is not null as is_suppressed,
    cast({{ relation_alias }}.suppression_reason as {{ dbt.type_string() }}) as suppression_reason
{%- endmacro %}
