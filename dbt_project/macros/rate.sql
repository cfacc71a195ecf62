{# A measure value from counts: numerator x multiplier / denominator, null when the
   denominator is zero. Roll-ups call this on summed counts: never average rates. #}
{% macro rate(numerator, denominator, multiplier) -%}
    case when {{ denominator }} > 0
         then cast({{ numerator }} as double) * {{ multiplier }} / {{ denominator }}
    end
{%- endmacro %}
