{#
  Generic tests for the public tier. They live beside the disclosure macros (dbt accepts
  generic tests in macro-paths) so the rules and their checks change together. Tagged
  `blocking` in _public.yml: a failure stops publication. The Python scan
  (pipelines/publish/disclosure.py) repeats these checks on the tables and on every
  exported file; these run inside `dbt build`, before anything downstream reads the model.
#}

{#
  Every row is either suppressed (all of numerator, denominator and value null, a reason
  given) or published (counts not null, none in the small range, each a multiple of the
  rounding base, value = rounded numerator x multiplier / rounded denominator).
#}
{% test disclosure_cells_consistent(model, catalogue) %}
{%- set small_min = disclosure_rule('public_min_count') -%}
{%- set small_max = disclosure_rule('public_max_suppressed_count') -%}
{%- set base = disclosure_rule('public_rounding_base') -%}
select cells.*
from {{ model }} as cells
left join {{ catalogue }} as measures on cells.measure_code = measures.measure_code
where cells.is_suppressed is null
    or (
        cells.is_suppressed
        and (
            cells.numerator is not null
            or cells.denominator is not null
            or cells.value is not null
            or cells.suppression_reason is null
        )
    )
    or (
        not cells.is_suppressed
        and (
            cells.numerator is null
            or cells.denominator is null
            or cells.suppression_reason is not null
            or cells.numerator between {{ small_min }} and {{ small_max }}
            or cells.denominator between {{ small_min }} and {{ small_max }}
            or mod(cells.numerator, {{ base }}) <> 0
            or mod(cells.denominator, {{ base }}) <> 0
            or (cells.denominator = 0 and cells.value is not null)
            or (
                cells.denominator > 0
                and (
                    cells.value is null
                    or abs(
                        cells.value
                        - {{ rate('cells.numerator', 'cells.denominator', 'measures.multiplier') }}
                    ) > 1e-9 * (1 + abs(cells.value))
                )
            )
        )
    )
{% endtest %}


{#
  No suppressed child can be worked out from its parent (`parent`, joined on
  `parent_keys`): a published parent never has exactly one suppressed child, and a
  suppressed parent never has all its children published.
#}
{% test disclosure_not_derivable(model, parent, parent_keys) %}
{%- set keys = parent_keys | join(', ') -%}
with children as (
    select
        {{ keys }},
        sum(case when is_suppressed then 1 else 0 end) as suppressed_children
    from {{ model }}
    group by {{ keys }}
)

select
    {%- for key in parent_keys %}
    parents.{{ key }},
    {%- endfor %}
    parents.is_suppressed as parent_is_suppressed,
    children.suppressed_children
from {{ parent }} as parents
inner join children
    on
    {%- for key in parent_keys %}
    {% if not loop.first %}and {% endif -%}
    (parents.{{ key }} = children.{{ key }}
     or (parents.{{ key }} is null and children.{{ key }} is null))
    {%- endfor %}
where (not parents.is_suppressed and children.suppressed_children = 1)
    or (parents.is_suppressed and children.suppressed_children = 0)
{% endtest %}
