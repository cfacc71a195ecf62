{# The incident models built incrementally by organisation (docs/incidents.md,
   "Incremental by organisation"): int_incident__events and fct_incident.

   An event's key hashes its organisation, and the extracts that delete an event are its
   organisation's, so an organisation's rows follow from its own records and extracts
   alone and can be rebuilt on their own. Which organisations a build recomputes is read
   from the tables themselves, not from a run's bookkeeping: an organisation is stale when
   `seen` (an aggregate naming the latest extract behind its rows, such as
   max(submission_id)) differs between the upstream relation and this model, or only one
   of them holds it. So a run that failed half-way, or a model built by another run than
   its upstream, catches up by itself at the next build.

   The pre-hook deletes the stale organisations' rows; the model's select then builds
   every organisation this model no longer holds (organisations_to_build), inserted with
   the append strategy. A run that stored no incident extract deletes and inserts
   nothing. #}
{% macro delete_stale_organisations(upstream, seen_upstream, seen_here, upstream_where='true') -%}
    {% if is_incremental() %}
        delete from {{ this }}
        where org_code in (
            select coalesce(u.org_code, h.org_code)
            from (
                select org_code, {{ seen_upstream }} as seen
                from {{ upstream }}
                where {{ upstream_where }}
                group by org_code
            ) as u
            full outer join (
                select org_code, {{ seen_here }} as seen
                from {{ this }}
                group by org_code
            ) as h on u.org_code = h.org_code
            where u.seen is distinct from h.seen
        )
    {% endif %}
{%- endmacro %}

{# The condition on org_code that keeps, in an incremental build, the organisations of
   `upstream` this model does not hold (the stale ones, just deleted, and new ones); true
   otherwise. A semi join on the few organisations to build, not an anti join on the many
   built: with none to build, the scan of the upstream rows finds nothing to read. #}
{% macro organisations_to_build(upstream) -%}
    {% if is_incremental() -%}
        org_code in (
            select org_code from {{ upstream }}
            except
            select org_code from {{ this }}
        )
    {%- else -%}
        true
    {%- endif %}
{%- endmacro %}
