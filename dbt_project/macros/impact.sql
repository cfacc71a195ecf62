{#
  Programme impact (docs/programme-impact.md section 4): the method in one place, used by
  marts.fct_programme_impact, public.pub_programme_impact and marts.mart_unexplained_shifts.
#}

{# The change in the better direction as a number: +1 higher is better, -1 lower is
   better, 0 neutral (fct_spc's improvement_direction: increase / decrease / neutral). #}
{% macro direction_sign(improvement_direction) -%}
    case {{ improvement_direction }} when 'increase' then 1 when 'decrease' then -1 else 0 end
{%- endmacro %}


{# Charts whose points are counts over a denominator (P, U, P', U'): the only ones with
   events avoided or added. #}
{% macro is_count_chart(chart) -%}
    ({{ chart }} in ('p', 'u', 'p_prime', 'u_prime'))
{%- endmacro %}


{# The financial year (April to March) a month falls in, as its first calendar year. #}
{% macro financial_year_start(period) -%}
    (year({{ period }}) - case when month({{ period }}) < 4 then 1 else 0 end)
{%- endmacro %}


{# A financial year's label from its first calendar year, e.g. 2024 -> '2024/25'
   (dim_period.financial_year's format). #}
{% macro financial_year_label(start_year) -%}
    (cast({{ start_year }} as varchar) || '/'
     || lpad(cast(({{ start_year }} + 1) % 100 as varchar), 2, '0'))
{%- endmacro %}


{#
  Sustained runs (the shift rule, docs/programme-impact.md section 4): every run of at least
  `min_points` consecutive monthly points on the same side of their segment's mean,
  within one segment (no run crosses a cut).

  points        relation/CTE with the `partition_by` columns, segment, period (first day
                of a month), value and centre (the point's segment mean)
  partition_by  the columns naming one series, e.g. [level, series_key, measure_code]

  Gaps and islands: each point is on side +1 (above its mean), -1 (below) or 0 (on it, or
  no value); points of side 0 are dropped, so they end a run, and so does a month with no
  row at all. Within one side, a month's index minus its rank is the same number for
  consecutive months and changes at any gap: that number names the island.
  Returns: partition_by columns, segment, side, run_start, run_end, points.
#}
{% macro sustained_runs(points, partition_by, min_points=7) -%}
    {%- set keys = partition_by | join(', ') -%}
    select
        {{ keys }},
        segment,
        side,
        min(period) as run_start,
        max(period) as run_end,
        cast(count(*) as bigint) as points
    from (
        select
            {{ keys }},
            segment,
            side,
            period,
            (year(period) * 12 + month(period))
            - row_number() over (partition by {{ keys }}, segment, side order by period) as island
        from (
            select
                {{ keys }},
                segment,
                period,
                case
                    when value > centre then 1
                    when value < centre then -1
                    else 0
                end as side
            from {{ points }}
            where value is not null and centre is not null
        ) as sided
        where side <> 0
    ) as islands
    group by {{ keys }}, segment, side, island
    having count(*) >= {{ min_points }}
{%- endmacro %}


{# The fct_spc columns the impact method reads of a point (the `spc` CTE of impact_ctes),
   in one list: the internal series model selects them and its inputs fingerprint hashes
   exactly them, so no column the method reads can change unseen. #}
{% macro impact_point_columns() -%}
    {{ return(['level', 'series_key', 'org_code', 'sector_code', 'icb_code', 'programme_code',
        'measure_code', 'period', 'numerator', 'denominator', 'value', 'chart',
        'improvement_direction', 'centre', 'lpl', 'upl', 'segment', 'segment_start',
        'in_baseline']) }}
{%- endmacro %}


{#
  The CTEs every impact model shares, after the model's own:
    spc            one tier's SPC points (fct_spc columns, docs/programme-impact.md section 3:
                   level, series_key, org_code, sector_code, icb_code, programme_code,
                   measure_code, period, numerator, denominator, value, chart,
                   improvement_direction, centre, lpl, upl, segment, segment_start,
                   in_baseline)
    series_change  the changes that apply to those series (level, series_key,
                   measure_code, change_id, change_month)
    changes        the register (change_id, description)
  Emits, each starting with a comma: points, series, baseline, current_segment, last_12,
  runs, attributed_runs, latest_signal, fiscal, impact (one row per series, every column
  of fct_programme_impact; events unrounded).
#}
{% macro impact_ctes() -%}
, points as (
    select
        spc.*,
        measures.multiplier,
        {{ direction_sign('spc.improvement_direction') }} as direction,
        {{ is_count_chart('spc.chart') }} as is_count_chart,
        {{ financial_year_start('spc.period') }} as fy_start,
        spc.numerator is not null and spc.denominator is not null as has_counts
    from spc
    inner join {{ ref('dim_measure') }} as measures on spc.measure_code = measures.measure_code
),

series as (
    select
        level,
        series_key,
        measure_code,
        max(org_code) as org_code,
        max(sector_code) as sector_code,
        max(icb_code) as icb_code,
        max(programme_code) as programme_code,
        max(chart) as chart,
        max(improvement_direction) as improvement_direction,
        max(direction) as direction,
        max(multiplier) as multiplier,
        bool_or(is_count_chart) as is_count_chart,
        max(period) as last_period,
        max(segment) as last_segment
    from points
    group by level, series_key, measure_code
),

-- Segment 0 on the months its limits rest on. P, U, P' and U' limits move with each
-- month's denominator: the baseline limits are their average over those months.
baseline as (
    select
        level,
        series_key,
        measure_code,
        min(period) as baseline_from,
        max(period) as baseline_to,
        cast(count(value) as bigint) as baseline_points,
        max(centre) as baseline_mean,
        -- Ordered: a float average summed in scan order can differ in its last bit between
        -- two runs on the same data, and a republication must reproduce every figure.
        avg(lpl order by period) as baseline_lpl,
        avg(upl order by period) as baseline_upl,
        sum(numerator) filter (where has_counts) as baseline_numerator,
        sum(denominator) filter (where has_counts) as baseline_denominator
    from points
    where segment = 0 and in_baseline
    group by level, series_key, measure_code
),

-- The last segment: its mean, and the limits its latest charted point is judged against.
current_segment as (
    select
        points.level,
        points.series_key,
        points.measure_code,
        max(points.segment_start) as current_segment_start,
        max(points.centre) as current_mean,
        arg_max(points.lpl, points.period) filter (where points.lpl is not null) as current_lpl,
        arg_max(points.upl, points.period) filter (where points.upl is not null) as current_upl
    from points
    inner join series
        on points.level = series.level
        and points.series_key = series.series_key
        and points.measure_code = series.measure_code
        and points.segment = series.last_segment
    group by points.level, points.series_key, points.measure_code
),

-- The 12 months ending with the series' last month, pooled (numerators over denominators;
-- the mean of values for XmR).
last_12 as (
    select
        points.level,
        points.series_key,
        points.measure_code,
        sum(points.numerator) filter (where points.has_counts) as numerator,
        sum(points.denominator) filter (where points.has_counts) as denominator,
        avg(points.value order by points.period) as mean_value
    from points
    inner join series
        on points.level = series.level
        and points.series_key = series.series_key
        and points.measure_code = series.measure_code
    where points.period > series.last_period - interval 12 month
    group by points.level, points.series_key, points.measure_code
),

runs as (
    {{ sustained_runs('points', ['level', 'series_key', 'measure_code']) }}
),

-- Each run with the latest applicable change at most attribution_window_months before
-- its first month; failing that, the first one up to 3 months after it (ties on the month:
-- the highest change_id).
-- Why after: the months just before a change sit on the new side of the old mean by chance
-- half the time, so the run a change produces often starts a month or two early (the
-- sample's NEWS2 run starts in March for an April intervention). Three is under half of a
-- 7-point run, so the run is still mostly after the change. docs/programme-impact.md §4.
attributed_runs as (
    select *
    from (
        select
            runs.*,
            series_change.change_id,
            row_number() over (
                partition by runs.level, runs.series_key, runs.measure_code, runs.run_start
                order by (series_change.change_month <= runs.run_start) desc nulls last,
                    case when series_change.change_month <= runs.run_start
                        then series_change.change_month end desc nulls last,
                    series_change.change_month asc nulls last,
                    series_change.change_id desc nulls last
            ) as change_rank
        from runs
        left join series_change
            on runs.level = series_change.level
            and runs.series_key = series_change.series_key
            and runs.measure_code = series_change.measure_code
            and series_change.change_month <= runs.run_start + interval 3 month
            and series_change.change_month
                >= runs.run_start - interval {{ var('attribution_window_months') | int }} month
    ) as ranked
    where change_rank = 1
),

-- The latest sustained run of the last segment.
latest_signal as (
    select *
    from (
        select
            attributed_runs.*,
            row_number() over (
                partition by attributed_runs.level, attributed_runs.series_key,
                    attributed_runs.measure_code
                order by attributed_runs.run_start desc
            ) as recency
        from attributed_runs
        inner join series
            on attributed_runs.level = series.level
            and attributed_runs.series_key = series.series_key
            and attributed_runs.measure_code = series.measure_code
            and attributed_runs.segment = series.last_segment
    ) as ranked
    where recency = 1
),

-- Financial years with counts; the latest of them and the one before.
fiscal as (
    select
        level,
        series_key,
        measure_code,
        fy_start,
        cast(count(distinct period) as bigint) as months,
        sum(numerator) as numerator,
        sum(denominator) as denominator,
        max(multiplier) as multiplier,
        row_number() over (
            partition by level, series_key, measure_code order by fy_start desc
        ) as recency
    from points
    where has_counts
    group by level, series_key, measure_code, fy_start
),

impact as (
    select
        series.level,
        series.series_key,
        series.org_code,
        series.sector_code,
        series.icb_code,
        series.programme_code,
        series.measure_code,
        series.chart,
        series.improvement_direction,
        baseline.baseline_from,
        baseline.baseline_to,
        coalesce(baseline.baseline_points, 0) as baseline_points,
        baseline.baseline_mean,
        baseline.baseline_lpl,
        baseline.baseline_upl,
        current_segment.current_segment_start,
        current_segment.current_mean,
        current_segment.current_lpl,
        current_segment.current_upl,
        cast(series.last_period - interval 11 month as date) as last_12_from,
        series.last_period as last_12_to,
        case
            when series.is_count_chart
                then {{ rate('last_12.numerator', 'last_12.denominator', 'series.multiplier') }}
            else last_12.mean_value
        end as last_12_value,
        latest_signal.side * series.direction as signal_sign,
        latest_signal.run_start as signal_start,
        latest_signal.change_id as attributed_change_id,
        changes.description as attributed_change_description,
        fy_now.fy_start as fy_current_start,
        fy_now.months as fy_current_months,
        {{ rate('fy_now.numerator', 'fy_now.denominator', 'fy_now.multiplier') }}
            as fy_current_value,
        fy_before.fy_start as fy_previous_start,
        fy_before.months as fy_previous_months,
        {{ rate('fy_before.numerator', 'fy_before.denominator', 'fy_before.multiplier') }}
            as fy_previous_value,
        series.direction,
        series.is_count_chart,
        case when series.is_count_chart and baseline.baseline_denominator > 0
            then cast(last_12.denominator as double) * baseline.baseline_numerator
                / baseline.baseline_denominator
        end as expected_events,
        case when series.is_count_chart and baseline.baseline_denominator > 0
            then cast(last_12.numerator as bigint)
        end as observed_events
    from series
    left join baseline
        on series.level = baseline.level
        and series.series_key = baseline.series_key
        and series.measure_code = baseline.measure_code
    left join current_segment
        on series.level = current_segment.level
        and series.series_key = current_segment.series_key
        and series.measure_code = current_segment.measure_code
    left join last_12
        on series.level = last_12.level
        and series.series_key = last_12.series_key
        and series.measure_code = last_12.measure_code
    left join latest_signal
        on series.level = latest_signal.level
        and series.series_key = latest_signal.series_key
        and series.measure_code = latest_signal.measure_code
    left join changes on latest_signal.change_id = changes.change_id
    left join fiscal as fy_now
        on series.level = fy_now.level
        and series.series_key = fy_now.series_key
        and series.measure_code = fy_now.measure_code
        and fy_now.recency = 1
    left join fiscal as fy_before
        on series.level = fy_before.level
        and series.series_key = fy_before.series_key
        and series.measure_code = fy_before.measure_code
        and fy_before.fy_start = fy_now.fy_start - 1
)
{%- endmacro %}


{# A run's or signal's reading: the side of the mean times the direction. #}
{% macro signal_label(sign) -%}
    case
        when {{ sign }} > 0 then 'improvement'
        when {{ sign }} < 0 then 'concern'
        when {{ sign }} = 0 then 'neutral'
    end
{%- endmacro %}


{#
  The columns fct_programme_impact and pub_programme_impact share, cast to their contract
  types, from level to fy_change_abs (each model adds its own event columns: the public
  tier rounds and withholds them). One list, so the two tiers can never drift apart.
#}
{% macro impact_columns(with_org_code) -%}
    cast(level as varchar) as level,
    cast(series_key as varchar) as series_key,
    {%- if with_org_code %}
    cast(org_code as varchar) as org_code,
    {%- endif %}
    cast(sector_code as varchar) as sector_code,
    cast(icb_code as varchar) as icb_code,
    cast(programme_code as varchar) as programme_code,
    cast(measure_code as varchar) as measure_code,
    cast(chart as varchar) as chart,
    cast(improvement_direction as varchar) as improvement_direction,
    cast(baseline_from as date) as baseline_from,
    cast(baseline_to as date) as baseline_to,
    cast(baseline_points as bigint) as baseline_points,
    cast(baseline_mean as double) as baseline_mean,
    cast(baseline_lpl as double) as baseline_lpl,
    cast(baseline_upl as double) as baseline_upl,
    cast(current_segment_start as date) as current_segment_start,
    cast(current_mean as double) as current_mean,
    cast(current_lpl as double) as current_lpl,
    cast(current_upl as double) as current_upl,
    cast(last_12_from as date) as last_12_from,
    cast(last_12_to as date) as last_12_to,
    cast(last_12_value as double) as last_12_value,
    cast((last_12_value - baseline_mean) * direction as double) as improvement_abs,
    cast((last_12_value - baseline_mean) * direction / nullif(baseline_mean, 0) as double)
        as improvement_rel,
    cast({{ signal_label('signal_sign') }} as varchar) as signal,
    cast(signal_start as date) as signal_start,
    cast(attributed_change_id as varchar) as attributed_change_id,
    cast(attributed_change_description as varchar) as attributed_change_description,
    cast({{ financial_year_label('fy_current_start') }} as varchar) as fy_current,
    cast(fy_current_months as bigint) as fy_current_months,
    cast(fy_current_value as double) as fy_current_value,
    cast({{ financial_year_label('fy_previous_start') }} as varchar) as fy_previous,
    cast(fy_previous_months as bigint) as fy_previous_months,
    cast(fy_previous_value as double) as fy_previous_value,
    cast((fy_current_value - fy_previous_value) * direction as double) as fy_change_abs
{%- endmacro %}
