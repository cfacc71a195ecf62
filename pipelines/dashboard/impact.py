"""The programme impact page: baseline against now, per programme, measure and area.

Read from ``fct_programme_impact`` (public site: ``pub_programme_impact``) by
:func:`pipelines.dashboard.sources.read_impact`; the figures and their method are
docs/programme-impact.md §4. This module only words and formats them: every change is said
in words (better, worse), never by colour alone.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from pipelines.dashboard.icon_svg import (
    ASSURANCE_SHORT,
    VARIATION_SHORT,
    assurance_icon_svg,
    variation_icon_svg,
)
from pipelines.dashboard.model import Series, ValueFormat
from pipelines.months import financial_year, month_text
from pipelines.spc.constants import COUNT_CHARTS, direction_sign

if TYPE_CHECKING:
    from pipelines.dashboard.build import SiteData, SiteMeasure


def verdict(change: float | None, sign: int, decimals: int | None = None) -> str:
    """The word a reader needs: better, worse, no change (nothing at the precision shown,
    ``decimals``), or why neither applies."""
    if change is None:
        return "Not known"
    if sign == 0:
        return "No better direction"
    better = change * sign
    if abs(better) < 1e-12 or (decimals is not None and round(abs(better), decimals) == 0):
        return "No change"
    return "Better" if better > 0 else "Worse"


def _span(start: Any, end: Any, months: Any = None) -> str:
    if start is None and end is None:
        return ""
    text = f"{month_text(start)} to {month_text(end)}"
    if months is not None:
        text += f" ({months} month{'s' if months != 1 else ''})"
    return text


def _signed(value: float, fmt: ValueFormat) -> str:
    shown = round(value, fmt.decimals)
    sign = "+" if shown > 0 else "−" if shown < 0 else ""
    return f"{sign}{fmt.value(abs(value))}"


def _count(value: Any) -> str:
    return "–" if value is None else f"{float(value):,.0f}"


def impact_row(
    row: dict[str, Any], measure: SiteMeasure, series: Series | None, names: dict[str, str]
) -> dict[str, Any]:
    """One area's line of the impact table, worded."""
    fmt = measure.fmt
    sign = direction_sign(row.get("improvement_direction") or measure.improvement_direction)
    baseline_mean = row.get("baseline_mean")
    last_12 = row.get("last_12_value")
    change = last_12 - baseline_mean if last_12 is not None and baseline_mean is not None else None
    change_text = ""
    if change is not None:
        change_text = _signed(change, fmt)
        relative = row.get("improvement_rel")
        if relative is not None and baseline_mean:
            change_text += f" ({abs(change) / abs(baseline_mean) * 100:.1f}%"
            change_text += f" {'higher' if change > 0 else 'lower'})" if change else ")"
    signal = row.get("signal")
    if signal in ("improvement", "concern", "neutral"):
        word = {"improvement": "Improvement", "concern": "Concern", "neutral": "Shift"}[signal]
        signal_text = f"{word} since {month_text(row.get('signal_start'))}"
        if row.get("attributed_change_id"):
            follows = (
                f"Follows {row['attributed_change_id']}: "
                f"{row.get('attributed_change_description') or ''}".rstrip(": ")
            )
        else:
            follows = "No recorded change in the months before it."
    else:
        signal_text, follows = "No sustained shift", ""
    fy_change = row.get("fy_change_abs")
    events: dict[str, Any] | None = None
    if row.get("expected_events") is not None and (row.get("chart") or measure.chart) in (
        COUNT_CHARTS
    ):
        excess = row.get("excess_events")
        better = row.get("events_better")
        events = {
            "observed": _count(row.get("observed_events")),
            "expected": _count(row.get("expected_events")),
            "difference": (
                "–"
                if excess is None
                else f"{abs(excess):,.0f} {'more' if excess > 0 else 'fewer'} than expected"
                if round(excess)
                else "as expected"
            ),
            "verdict": verdict(better, 1, 0) if sign else "No better direction",
        }
    level = row.get("level")
    area = (
        "Whole region"
        if level == "region"
        else names.get(row.get("icb_code") or row.get("series_key") or "", row.get("series_key"))
    )
    target = fmt.target(series.target) if series else None
    return {
        "level": level,
        "area": area,
        "baseline": fmt.value(baseline_mean) if baseline_mean is not None else "–",
        "baseline_span": _span(
            row.get("baseline_from"), row.get("baseline_to"), row.get("baseline_points")
        ),
        "baseline_limits": (
            f"limits {fmt.number(row.get('baseline_lpl'))} to {fmt.number(row.get('baseline_upl'))}"
            if row.get("baseline_lpl") is not None
            else ""
        ),
        "last_12": fmt.value(last_12) if last_12 is not None else "–",
        "last_12_span": _span(row.get("last_12_from"), row.get("last_12_to")),
        "current": (
            f"Mean since {month_text(row['current_segment_start'])}: "
            f"{fmt.value(row.get('current_mean'))}"
            if row.get("current_segment_start") is not None
            and row.get("current_segment_start") != row.get("baseline_from")
            and row.get("current_mean") is not None
            else ""
        ),
        "change": change_text or "–",
        "verdict": verdict(change, sign, fmt.decimals),
        "signal": signal_text,
        "signal_kind": signal or "none",
        "follows": follows,
        "unexplained": signal in ("improvement", "concern") and not row.get("attributed_change_id"),
        "fy": {
            "previous": financial_year(row.get("fy_previous")),
            "previous_months": row.get("fy_previous_months"),
            "previous_value": fmt.value(row.get("fy_previous_value"))
            if row.get("fy_previous_value") is not None
            else "–",
            "current": financial_year(row.get("fy_current")),
            "current_months": row.get("fy_current_months"),
            "current_value": fmt.value(row.get("fy_current_value"))
            if row.get("fy_current_value") is not None
            else "–",
            "change": _signed(fy_change, fmt) if fy_change is not None else "–",
            "verdict": verdict(fy_change, sign, fmt.decimals),
        }
        if row.get("fy_current") is not None
        else None,
        "events": events,
        "variation_svg": variation_icon_svg(series.variation_icon, 28) if series else "",
        "variation_short": VARIATION_SHORT.get(series.variation_icon or "", "–") if series else "",
        "assurance_svg": assurance_icon_svg(series.assurance_type, target, 28) if series else "",
        "assurance_short": ASSURANCE_SHORT.get(series.assurance_type or "", "") if series else "",
    }


def impact_programmes(
    rows: list[dict[str, Any]],
    site: SiteData,
    shown: dict[tuple[str, str, str], Series],
) -> list[dict[str, Any]]:
    """Programmes -> measures -> areas (region first, then ICBs by name) for the page.

    ``shown``: the charted series by (measure, level, series_key), for their icons."""
    from pipelines.dashboard.build import _measure_context

    by_measure: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        measure = site.measures.get(row.get("measure_code", ""))
        if measure is None:
            continue
        series = shown.get((measure.code, row.get("level", ""), row.get("series_key", "")))
        by_measure[measure.code].append(impact_row(row, measure, series, site.names))
    programmes = []
    for programme in site.programmes:
        measures = []
        for measure in site.measures.values():
            if measure.programme_code != programme["programme_code"]:
                continue
            areas = sorted(
                by_measure.get(measure.code, []),
                key=lambda a: (a["level"] != "region", a["area"] or ""),
            )
            if areas:
                measures.append(
                    {
                        **_measure_context(measure),
                        "areas": areas,
                        "counts": measure.chart in COUNT_CHARTS,
                    }
                )
        if measures:
            programmes.append({**programme, "measures": measures})
    return programmes
