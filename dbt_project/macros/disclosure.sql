{#
  Disclosure control for the public tier (docs/design.md §7). The public models are the only
  place these macros are used; the Python scan (pipelines/publish/disclosure.py) checks
  their output independently with the same thresholds.

  Thresholds are dbt vars passed by the pipeline from the deployment's configuration
  (pipelines/settings.py, docs/configuration.md), the values the Python scan reads too.
#}

{% macro disclosure_rule(name) -%}
    {#- public_min_count is a constant of the method (zero is a true zero, never small), the
        others the deployment's settings: all come from Settings.dbt_vars, none has a default
        here, so the models can never disagree with the Python scan. -#}
    {%- if name not in ('public_min_count', 'public_max_suppressed_count', 'public_rounding_base', 'public_min_contributors') -%}
        {{ exceptions.raise_compiler_error('unknown disclosure rule ' ~ name) }}
    {%- endif -%}
    {{- return(var(name) | int) -}}
{%- endmacro %}


{# True when a count is small enough to identify people: in [min, max]. Zero is not. #}
{% macro disclosure_is_small(count) -%}
    ({{ count }} >= {{ disclosure_rule('public_min_count') }}
     and {{ count }} <= {{ disclosure_rule('public_max_suppressed_count') }})
{%- endmacro %}


{# True when a cell is built from too few organisations to publish: one organisation's
   cell IS its figures, and with two, either can subtract its own figures from the cell and
   read the other's (docs/design.md §7). `contributors` counts organisations whose figures are in
   the cell (disclosure_counts: a non-zero numerator or denominator). Zero contributors (an
   all-zero cell) is a true zero, published like a zero count. #}
{% macro disclosure_has_few_contributors(contributors) -%}
    ({{ contributors }} >= 1
     and {{ contributors }} < {{ disclosure_rule('public_min_contributors') }})
{%- endmacro %}


{# Why a cell is suppressed on its own figures, before any secondary suppression:
   'primary' (a small numerator or denominator), else 'contributors' (too few
   organisations), else null. Small counts name first: that rule is the older and the one
   readers know. #}
{% macro disclosure_own_reason(numerator, denominator, contributors) -%}
    case
        when {{ disclosure_is_small(numerator) }} or {{ disclosure_is_small(denominator) }}
            then 'primary'
        when {{ disclosure_has_few_contributors(contributors) }}
            then 'contributors'
    end
{%- endmacro %}


{# A count rounded to the nearest multiple of the base, halves up. floor() on a double
   rather than integer division because `/` on integers differs between engines. #}
{% macro disclosure_round(count) -%}
    {%- set base = disclosure_rule('public_rounding_base') -%}
    cast(floor(({{ count }} + {{ base }} / 2.0) / {{ base }}) * {{ base }} as bigint)
{%- endmacro %}


{# Unrounded counts from the organisation-level fact, summed to `group_columns`, with the
   number of organisations whose figures are in each sum (`contributors`). Public models
   start here, never from the internal roll-ups, so their figures depend only on the
   audited fact and the rules in this file. In an incremental run only the run's months
   are read: every rule works within one month, so a month is rebuilt exactly.

   A contributor is an organisation with a non-zero numerator or denominator in the cell:
   an all-zero return adds nothing to the sum, so it protects no one (with A, B and an
   all-zero C, A still reads B's figures from the total). #}
{% macro disclosure_counts(facts, catalogue, group_columns) -%}
    select
        {%- for column in group_columns %}
        facts.{{ column }},
        {%- endfor %}
        facts.programme_code,
        cast(sum(facts.numerator) as bigint) as numerator,
        cast(sum(facts.denominator) as bigint) as denominator,
        cast(count(distinct case
            when facts.numerator <> 0 or facts.denominator <> 0 then facts.org_code
        end) as bigint) as contributors,
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
  Primary, contributors and secondary suppression of the children of one parent table.

  counts      relation/CTE: parent_keys, child_key, numerator, denominator (unrounded),
              contributors (organisations in the cell, from disclosure_counts)
  parents     relation/CTE: parent_keys and is_suppressed (the parent's final status)
  parent_keys columns shared by a child and its parent, e.g. [icb_code, measure_code, period]
  child_key   the column that tells siblings apart, e.g. sector_code

  A child is suppressed on its own figures ('primary': a small numerator or denominator;
  'contributors': built from fewer than public_min_contributors organisations). Within
  one parent, the children that are not, smallest first (numerator, then denominator,
  then child_key; all-zero children last, as suppressing them hides no one), are then
  suppressed ('secondary') until the suppressed set S of siblings is safe:
    - parent published, S not empty: S holds at least two cells (otherwise parent minus
      the published siblings is the one suppressed cell) and at least
      public_min_contributors organisations between them (parent minus the published
      siblings is the sum of S, so with two organisations in S either reads the other);
    - parent suppressed: S is not empty (otherwise the parent is the sum of its
      published children, which undoes the parent's suppression) and holds at least
      public_min_contributors organisations (the parent is still reachable through its
      own parent's total, region minus the published ICBs, and that difference, less this
      parent's published children, is the sum of S with the other suppressed parents).
  Children partition their parent's organisations (an organisation has one ICB and one
  sector), so the organisations of S are the sum of its cells' contributors. With
  public_min_contributors = 1 this is the small-count rule alone, as before.
  The join is null-safe so that organisations with no ICB still find their parent row.
#}
{% macro disclosure_suppress(counts, parents, parent_keys, child_key) -%}
    {%- set partition = parent_keys | join(', ') -%}
    {%- set min_contributors = disclosure_rule('public_min_contributors') -%}
    {%- set size_order -%}
        case when flagged.own_reason is not null then 1 else 0 end,
        case when flagged.contributors = 0 then 1 else 0 end,
        flagged.numerator,
        flagged.denominator,
        flagged.{{ child_key }}
    {%- endset %}
    select
        ranked.*,
        case
            when ranked.own_reason is not null then ranked.own_reason
            when ranked.parent_is_suppressed and (
                ranked.own_siblings + ranked.size_rank - 1 < 1
                or ranked.own_contributors + ranked.smaller_contributors < {{ min_contributors }}
            ) then 'secondary'
            when not ranked.parent_is_suppressed and ranked.own_siblings > 0 and (
                ranked.own_siblings + ranked.size_rank - 1 < 2
                or ranked.own_contributors + ranked.smaller_contributors < {{ min_contributors }}
            ) then 'secondary'
        end as suppression_reason
    from (
        select
            flagged.*,
            sum(case when flagged.own_reason is not null then 1 else 0 end)
                over (partition by {{ partition }}) as own_siblings,
            sum(case when flagged.own_reason is not null then flagged.contributors else 0 end)
                over (partition by {{ partition }}) as own_contributors,
            -- Among the children not suppressed on their own (they sort first), each
            -- one's place in size order and the organisations in the smaller ones: the
            -- smaller ones are all suppressed before this one is considered.
            row_number() over (
                partition by {{ partition }} order by {{ size_order }}
            ) as size_rank,
            coalesce(sum(flagged.contributors) over (
                partition by {{ partition }} order by {{ size_order }}
                rows between unbounded preceding and 1 preceding
            ), 0) as smaller_contributors
        from (
            select
                children.*,
                coalesce(parents.is_suppressed, false) as parent_is_suppressed,
                {{ disclosure_own_reason(
                    'children.numerator', 'children.denominator', 'children.contributors'
                ) }} as own_reason
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
