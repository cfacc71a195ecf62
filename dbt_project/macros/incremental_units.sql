{# Models built incrementally by unit: a unit is the set of rows one key names (an
   organisation for the incident models, docs/incidents.md "Incremental by organisation";
   an SPC series for the impact models, docs/programme-impact.md "Incremental by series")
   whose rows follow from that unit's own inputs alone, so it can be rebuilt on its own.

   Which units a build recomputes is read from the tables themselves, not from a run's
   bookkeeping: a unit is stale when `seen` (an aggregate naming what its rows were built
   from, such as max(submission_id) or a fingerprint of its inputs) differs between the
   upstream relation and this model, or only one of them holds it. So a run that failed
   half-way, or a model built by another run than its upstream, catches up by itself at
   the next build.

   The pre-hook (delete_stale_units) deletes the stale units' rows; the model's select then
   builds every unit this model no longer holds (units_to_build), inserted with the append
   strategy. A run whose inputs changed nowhere deletes and inserts nothing.
   `keys` names a unit (columns present, never null, in both relations). #}
{% macro delete_stale_units(upstream, seen_upstream, seen_here, keys, upstream_where='true') -%}
    {% if is_incremental() %}
        {%- set key_list = keys | join(', ') %}
        delete from {{ this }}
        where ({{ key_list }}) in (
            select
            {%- for key in keys %}
                coalesce(u.{{ key }}, h.{{ key }}){{ ',' if not loop.last }}
            {%- endfor %}
            from (
                select {{ key_list }}, {{ seen_upstream }} as seen
                from {{ upstream }}
                where {{ upstream_where }}
                group by {{ key_list }}
            ) as u
            full outer join (
                select {{ key_list }}, {{ seen_here }} as seen
                from {{ this }}
                group by {{ key_list }}
            ) as h on {{ keys_equal('u', 'h', keys) }}
            where u.seen is distinct from h.seen
        )
    {% endif %}
{%- endmacro %}

{# The condition on `keys` that keeps, in an incremental build, the units of `upstream`
   this model does not hold (the stale ones, just deleted, and new ones); true otherwise.
   A semi join on the few units to build, not an anti join on the many built: with none
   to build, the scan of the upstream rows finds nothing to read. #}
{% macro units_to_build(upstream, keys) -%}
    {% if is_incremental() -%}
        {%- set key_list = keys | join(', ') -%}
        ({{ key_list }}) in (
            select {{ key_list }} from {{ upstream }}
            except
            select {{ key_list }} from {{ this }}
        )
    {%- else -%}
        true
    {%- endif %}
{%- endmacro %}

{# The same for a model kept by fingerprints: `inputs` holds one row per unit (its `keys`
   and inputs_hash, a fingerprint of everything the unit's rows are computed from) and the
   model's rows carry the inputs_hash they were built from. #}
{% macro delete_stale_fingerprints(inputs, keys) -%}
    {{ delete_stale_units(inputs, 'max(inputs_hash)', 'max(inputs_hash)', keys) }}
{%- endmacro %}

{# The units such a model builds, with the fingerprint to store beside their rows. #}
{% macro fingerprints_to_build(inputs, keys) -%}
    select {{ keys | join(', ') }}, inputs_hash
    from {{ inputs }}
    where {{ units_to_build(inputs, keys) }}
{%- endmacro %}

{# `left` and `right` name the same unit: their `keys` are equal. #}
{% macro keys_equal(left, right, keys) -%}
    {%- for key in keys -%}
        {{ left }}.{{ key }} = {{ right }}.{{ key }}{{ ' and ' if not loop.last }}
    {%- endfor -%}
{%- endmacro %}
