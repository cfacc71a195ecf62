{# Schemas are named by layer (staging, intermediate, marts, reference) or tier (public),
   not prefixed by the target schema, so analysts and the publish step see stable names. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name | trim if custom_schema_name is not none else target.schema }}
{%- endmacro %}
