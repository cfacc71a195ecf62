{# The reporting months this run rebuilds, as "<first> and <last>" for a BETWEEN.
   Dagster passes them in the environment (SAFETY_OBS_PERIOD_START / _END, set by
   pipelines/defs/dbt.py), not as vars: dbt re-parses the whole project whenever its vars
   change, and the window changes with every run. Vars of the same names still win (dbt by
   hand: --vars '{"period_start": ...}'); without either the whole history is rebuilt. #}
{% macro period_range() -%}
    cast('{{ var("period_start", env_var("SAFETY_OBS_PERIOD_START", "1900-01-01")) }}' as date)
    and cast('{{ var("period_end", env_var("SAFETY_OBS_PERIOD_END", "2999-12-01")) }}' as date)
{%- endmacro %}

{# The period models' pre-hook (dbt_project.yml): on an incremental build, delete the run's
   months first, so they are inserted again whole. #}
{% macro delete_run_months() -%}
    {% if is_incremental() %}
        delete from {{ this }} where period between {{ period_range() }}
    {% endif %}
{%- endmacro %}
