"""One SPC chart as a self-contained SVG string (no JavaScript needed to see it).

Drawn on the server so the page works without scripts, prints, and loads fast; the bundled
script only adds the hover/keyboard tooltip from the ``data-*`` attributes on each point.
String building rather than a template loop: it is the hot path (a GP measure has a chart per
practice), and plain f-strings are several times faster than Jinja here.

Layout follows Making Data Count: grey line of values, solid centre line, dashed process
limits (stepped, as P'/U' limits move with the denominator), red dashed target, points
coloured by point type (improvement blue, concern orange, neutral purple, else grey). Each
segment has its own centre line and limits, broken at a rebase; recorded changes are vertical
markers and the baseline months are shaded (docs/programme-impact.md §1-§3).
"""

import csv
import io
import math
from dataclasses import dataclass
from datetime import date
from typing import Any

from markupsafe import Markup, escape

from pipelines.dashboard.model import (
    LIMITS_BASIS_LABELS,
    POINT_TYPE_LABELS,
    Point,
    RecordedChange,
    Series,
    ValueFormat,
)
from pipelines.months import month_index, month_label, short_month
from pipelines.publish.disclosure import neutralise_csv_cell

WIDTH, HEIGHT = 640, 290
#: Room above the plot for the unit (row 1) and the baseline and change labels (row 2), below
#: it for month ticks and the axis name. Sized for the narrow-screen font (dashboard.css sets
#: 20 user units there, so a chart 330 px wide still shows text of about 10 px).
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 50, 52
UNIT_ROW, LABEL_ROW = 18, 42
#: At most this many month labels (every second one is hidden on narrow screens).
MAX_MONTH_TICKS = 8
#: Change markers nearer than this (user units) share one number label.
MARKER_LABEL_GAP = 30
POINT_CLASS: dict[str, str] = {
    "common_cause": "cc",
    "special_cause_improvement": "imp",
    "special_cause_concern": "con",
    "special_cause_neutral_high": "neu",
    "special_cause_neutral_low": "neu",
}


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round-number axis ticks covering [lo, hi] (1, 2, 2.5 or 5 x a power of ten)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    tick = first
    while tick <= hi + step * 1e-9:
        if tick >= lo - step * 1e-9:
            ticks.append(round(tick, 10))
        tick += step
    return ticks


def tick_labels(ticks: list[float]) -> list[str]:
    """Tick labels with the fewest decimals that still tell every tick apart exactly
    (``60 80 100``, ``0.10 0.15 0.20``), whatever the measure's own precision."""
    for decimals in range(5):
        if all(abs(round(t, decimals) - t) < 1e-9 for t in ticks):
            return [f"{t:,.{decimals}f}" for t in ticks]
    return [f"{t:,.4g}" for t in ticks]


def _y_domain(series: Series) -> tuple[float, float]:
    values = [
        v
        for p in series.points
        for v in (p.value, p.centre, p.lpl, p.upl)
        if v is not None and math.isfinite(v)
    ]
    if series.target is not None:
        values.append(series.target)
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        pad = abs(hi) * 0.1 or 1.0
        return lo - pad, hi + pad
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad
    if min(values) >= 0 > lo:
        lo = 0.0  # counts and rates are never negative: do not draw an axis below zero
    return lo, hi


def _stepped(points: list[Point], attr: str, x, y, half: float) -> str:
    """Path through each point's value of ``attr`` as flat steps; gaps where it is null.

    Called once per segment, so the lines of two segments are never joined."""
    parts: list[str] = []
    previous = None
    for point in points:
        value = getattr(point, attr)
        if value is None:
            previous = None
            continue
        px, py = x(point), y(value)
        if previous is None:
            parts.append(f"M{px - half:.1f},{py:.1f}")
        else:
            parts.append(f"V{py:.1f}")
        parts.append(f"H{px + half:.1f}")
        previous = point
    return "".join(parts)


def y_axis_label(fmt: ValueFormat) -> str:
    """The y axis's name: the measure's unit, in words when it is just ``%``."""
    unit = fmt.unit.strip()
    if not unit or unit == "%":
        return "Per cent (%)" if fmt.is_percent or unit == "%" else "Value"
    return unit[0].upper() + unit[1:]


def collapsed_segments(series: Series) -> list[list[Point]]:
    """Segments whose limits lie on their mean (lpl == upl == centre at every point with
    limits): a segment whose baseline moving ranges are all zero. NHSRplotthedots gives no
    limits there; this project draws them on the mean (docs/programme-impact.md §3)."""
    out = []
    for segment in series.segments:
        limited = [p for p in segment if p.centre is not None and p.lpl is not None]
        if limited and all(
            p.upl is not None
            and p.lpl is not None
            and p.centre is not None
            and math.isclose(p.lpl, p.centre, abs_tol=1e-12)
            and math.isclose(p.upl, p.centre, abs_tol=1e-12)
            for p in limited
        ):
            out.append(segment)
    return out


def method_notes(series: Series, fmt: ValueFormat) -> list[str]:
    """What the chart's limits rest on, where they were recalculated, and where the method
    departs from NHSRplotthedots (docs/programme-impact.md §2-§3)."""
    notes = []
    segments = series.segments
    baseline = series.baseline_span
    if baseline:
        basis = LIMITS_BASIS_LABELS.get(series.limits_basis or "", "the baseline months")
        notes.append(
            f"Shaded: the baseline, {month_label(baseline[0])} to {month_label(baseline[1])};"
            f" the limits rest on {basis} and later months are judged against them."
        )
    if len(segments) > 1:
        starts = ", ".join(month_label(s[0].period) for s in segments[1:])
        notes.append(
            f"Limits recalculated from {starts} after a recorded change: each segment has its"
            " own mean and limits, and no run of points crosses from one to the next."
        )
    for segment in collapsed_segments(series):
        centre = next(p.centre for p in segment if p.centre is not None)
        span = f"from {month_label(segment[0].period)}" if len(segments) > 1 else "on this chart"
        notes.append(
            f"Limits drawn on the mean ({fmt.value(centre)}) {span}: the months they rest on"
            " all have the same value. NHSRplotthedots gives no limits for such a series; this"
            " project puts them on the mean, so any later movement shows as a signal."
        )
    return notes


def chart_description(series: Series, months: tuple[int, int]) -> str:
    """The chart's ``<desc>``: what a screen reader hears about the drawing (the number of
    values, segments, baseline and changes). Shared with the organisation charts the
    browser draws (:func:`chart_data`), so both say the same."""
    first, last = months
    segments = series.segments
    baseline = series.baseline_span
    changes = [c for c in series.changes if first <= month_index(c.month) <= last]
    described = [f"{len(series.with_values)} monthly values."]
    if len(segments) > 1:
        described.append(
            f"{len(segments)} segments, limits recalculated from "
            + ", ".join(month_label(s[0].period) for s in segments[1:])
            + "."
        )
    if baseline:
        described.append(
            f"Baseline shaded: {month_label(baseline[0])} to {month_label(baseline[1])}."
        )
    if changes:
        described.append(f"{len(changes)} recorded change{'s' if len(changes) != 1 else ''}.")
    described.append("Use the left and right arrow keys to read each month.")
    return " ".join(described)


@dataclass(frozen=True)
class _Plot:
    """Where things go on one chart: the month slots of the shared x axis (``first``,
    ``step`` wide each) and the value range ``lo``..``hi`` drawn down the plot's height."""

    first: int
    n_months: int
    step: float
    lo: float
    hi: float

    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    bottom = TOP + plot_h

    @classmethod
    def of(cls, series: Series, months: tuple[int, int]) -> "_Plot":
        first, last = months
        n_months = max(last - first + 1, 1)
        lo, hi = _y_domain(series)
        return cls(first, n_months, (WIDTH - LEFT - RIGHT) / n_months, lo, hi)

    def x(self, point: Point) -> float:
        """The centre of a point's month slot."""
        return LEFT + (month_index(point.period) - self.first + 0.5) * self.step

    def y(self, value: float) -> float:
        return TOP + (self.hi - value) / (self.hi - self.lo) * self.plot_h

    def edge(self, period: date) -> float:
        """The left edge of a month's slot (where a change month begins)."""
        return LEFT + (month_index(period) - self.first) * self.step


def render_chart(
    series: Series,
    months: tuple[int, int],
    fmt: ValueFormat,
    chart_id: str,
) -> str:
    """The SVG for ``series`` on an x axis of the month indexes ``months`` (first, last).

    Every chart of a measure shares the x axis so that months line up down the page. Needs
    nothing but its arguments (the board report draws the same charts): the series carries
    its segments, baseline months and recorded changes (docs/programme-impact.md).
    Drawn back to front, one function per layer: the baseline band, the grid and axes,
    each segment's limits and the target, the change markers, the line of values, the
    points with their tooltip data.
    """
    plot = _Plot.of(series, months)
    first, last = months
    changes = [c for c in series.changes if first <= month_index(c.month) <= last]
    out: list[str] = [
        f'<svg class="spc-chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" tabindex="0" aria-labelledby="{chart_id}-t" '
        f'aria-describedby="{chart_id}-d"><title id="{chart_id}-t">{escape(series.title)}'
        f'</title><desc id="{chart_id}-d">{escape(chart_description(series, months))}</desc>'
    ]
    out += _baseline_band(series.baseline_span, plot)
    out += _grid(plot, fmt)
    out += _limits(series, plot)
    out += _change_markers(changes, plot)
    out += _value_line(series, plot)
    out += _points(series, plot, fmt, changes)
    out.append("</svg>")
    return Markup("".join(out))


def _baseline_band(baseline: tuple[date, date] | None, plot: _Plot) -> list[str]:
    """The baseline months shaded and labelled, so a reader sees what the limits rest on."""
    if not baseline:
        return []
    x0, x1 = plot.edge(baseline[0]), plot.edge(baseline[1]) + plot.step
    label = f"Baseline: {month_label(baseline[0])} to {month_label(baseline[1])}"
    return [
        f'<g class="baseline"><title>{escape(label)}</title>'
        f'<rect x="{x0:.1f}" y="{TOP}" width="{x1 - x0:.1f}" height="{plot.plot_h}"/>'
        f'<text x="{x0 + 3:.1f}" y="{LABEL_ROW}">Baseline</text></g>'
    ]


def _grid(plot: _Plot, fmt: ValueFormat) -> list[str]:
    """Value gridlines with round-number labels, month ticks (at most ``MAX_MONTH_TICKS``
    labelled, every second one marked to hide on narrow screens) and the axis names."""
    out = ['<g class="grid">']
    ticks = nice_ticks(plot.lo, plot.hi)
    for tick, label in zip(ticks, tick_labels(ticks), strict=True):
        ty = plot.y(tick)
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
            f'<text x="{LEFT - 6}" y="{ty + 5:.1f}" text-anchor="end">{label}</text>'
        )
    bottom = plot.bottom
    every = max(1, math.ceil(plot.n_months / MAX_MONTH_TICKS))
    for n, i in enumerate(range(0, plot.n_months, every)):
        index = plot.first + i
        label = short_month(date(index // 12, index % 12 + 1, 1))
        tx = LEFT + (i + 0.5) * plot.step
        alt = ' class="alt"' if n % 2 else ""
        out.append(
            f'<line class="tick" x1="{tx:.1f}" x2="{tx:.1f}" y1="{bottom}" y2="{bottom + 4}"/>'
            f'<text{alt} x="{tx:.1f}" y="{bottom + 21}" text-anchor="middle">{label}</text>'
        )
    out.append(
        f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{bottom}" y2="{bottom}"/>'
        f'<text class="axis-label" x="{LEFT + plot.plot_w / 2:.1f}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">Month</text>'
        f'<text class="axis-label" x="4" y="{UNIT_ROW}">{escape(y_axis_label(fmt))}</text></g>'
    )
    return out


def _limits(series: Series, plot: _Plot) -> list[str]:
    """Each segment its own centre line and limits, never joined across a rebase; then
    the target, when it falls inside the value range."""
    out = []
    for segment in series.segments:
        number = segment[0].segment
        for attr, css in (("upl", "limit"), ("lpl", "limit"), ("centre", "centre")):
            path = _stepped(segment, attr, plot.x, plot.y, plot.step / 2)
            if path:
                out.append(f'<path class="{css}" data-segment="{number}" d="{path}"/>')
    if series.target is not None and plot.lo <= series.target <= plot.hi:
        ty = plot.y(series.target)
        out.append(
            f'<line class="target" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
        )
    return out


def _change_markers(changes: list[RecordedChange], plot: _Plot) -> list[str]:
    """Recorded changes: a vertical marker where the change month begins, numbered as the
    list under the chart; the description on hover (title, and the script's tooltip).
    Markers close together share one label ("1,2"), so numbers never overlap."""
    labels: list[tuple[float, list[int]]] = []
    for number, change in enumerate(changes, start=1):
        cx = plot.edge(change.month)
        if labels and cx - labels[-1][0] < MARKER_LABEL_GAP:
            labels[-1][1].append(number)
        else:
            labels.append((cx, [number]))
    first_of = {numbers[0]: (cx, numbers) for cx, numbers in labels}
    out = []
    for number, change in enumerate(changes, start=1):
        cx = plot.edge(change.month)
        css = "change rebase" if change.rebases else "change"
        label = ""
        if number in first_of:
            lx, numbers = first_of[number]
            label = (
                f'<text x="{lx:.1f}" y="{LABEL_ROW - 2}" text-anchor="middle">'
                f"{','.join(str(n) for n in numbers)}</text>"
            )
        out.append(
            f'<g class="{css}" data-change-id="{escape(change.change_id)}" '
            f'data-desc="{escape(change.summary)}"><title>{escape(change.summary)}</title>'
            f'<line class="hit" x1="{cx:.1f}" x2="{cx:.1f}" y1="{LABEL_ROW - 14}" '
            f'y2="{plot.bottom}"/><line x1="{cx:.1f}" x2="{cx:.1f}" y1="{LABEL_ROW + 2}" '
            f'y2="{plot.bottom}"/>{label}</g>'
        )
    return out


def _value_line(series: Series, plot: _Plot) -> list[str]:
    """The line of values, broken at a missing value or a missing month (never drawn
    across a gap as if the months between were known)."""
    parts: list[str] = []
    previous: Point | None = None
    for point in series.points:
        if point.value is None:
            previous = None
            continue
        joined = (
            previous is not None and month_index(point.period) == month_index(previous.period) + 1
        )
        parts.append(f"{'L' if joined else 'M'}{plot.x(point):.1f},{plot.y(point.value):.1f}")
        previous = point
    return [f'<path class="values" d="{"".join(parts)}"/>'] if parts else []


def _points(
    series: Series, plot: _Plot, fmt: ValueFormat, changes: list[RecordedChange]
) -> list[str]:
    """Each point with a value, coloured by its point type, carrying what the tooltip
    shows in ``data-*`` attributes (the page works without the script; it only reads them).
    """
    by_month: dict[int, list[str]] = {}
    for change in changes:
        by_month.setdefault(month_index(change.month), []).append(change.summary)
    baseline = series.baseline_span
    out = ['<g class="points">']
    reporting = series.level != "organisation"
    for point in series.points:
        if point.value is None:
            continue
        css = POINT_CLASS.get(point.point_type or "", "cc")
        kind = POINT_TYPE_LABELS.get(point.point_type or "", "Too few points to judge")
        attrs = (
            f' data-m="{month_label(point.period)}" data-v="{escape(fmt.value(point.value))}"'
            f' data-n="{_count(point.numerator)}" data-d="{_count(point.denominator)}"'
            f' data-t="{kind}" data-c="{fmt.number(point.centre)}"'
            f' data-l="{fmt.number(point.lpl)}" data-u="{fmt.number(point.upl)}"'
        )
        if reporting and point.organisations_reporting is not None:
            attrs += f' data-o="{point.organisations_reporting:,}"'
        if point.in_baseline and baseline and point.segment == 0:
            attrs += ' data-b="1"'
        found = by_month.get(month_index(point.period))
        if found:
            attrs += f' data-ch="{escape("; ".join(found))}"'
        out.append(
            f'<circle class="pt {css}" cx="{plot.x(point):.1f}" cy="{plot.y(point.value):.1f}" '
            f'r="4"{attrs}/>'
        )
    out.append("</g>")
    return out


def series_months(series: Series) -> tuple[int, int]:
    """The month indexes (first, last) of the series' own points: its x axis when drawn alone."""
    if not series.points:
        return (0, 0)
    return month_index(series.points[0].period), month_index(series.points[-1].period)


def render_series_chart(
    series: Series,
    fmt: ValueFormat,
    chart_id: str = "chart",
    months: tuple[int, int] | None = None,
) -> str:
    """One chart with nothing but a series and its measure's format (the board report's
    entry point): on its own months unless ``months`` is given; empty when no value."""
    if not series.with_values:
        return Markup("")
    return render_chart(series, months or series_months(series), fmt, chart_id)


#: Significant digits a drawn figure keeps in an organisation chart data file: far more than
#: the chart (a few hundred pixels high) or the table (1 or 2 decimals) shows, and short.
DATA_DIGITS = 9
#: Point types in a data file, by number (0: none, too few points to judge): the code, the
#: tooltip's words, the point's class. The script takes them from the file, so the labels
#: have one home (model.POINT_TYPE_LABELS).
DATA_POINT_TYPES: list[tuple[str | None, str, str]] = [
    (None, "Too few points to judge", "cc"),
    *((code, label, POINT_CLASS.get(code, "cc")) for code, label in POINT_TYPE_LABELS.items()),
]
_TYPE_NUMBER = {code: n for n, (code, _, _) in enumerate(DATA_POINT_TYPES)}


def _figure(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.{DATA_DIGITS}g}")


def _limit_column(series: Series, attr: str) -> list[float | None]:
    """A centre or limit column: one value per segment where it is flat over each segment
    (an XmR chart's limits), else one per point (P and U limits move with the denominator).
    The script tells them apart by length: a list as long as the points is per point (when
    every point is its own segment, the two are the same list)."""
    segments = series.segments
    flat = []
    for segment in segments:
        values = {getattr(p, attr) for p in segment}
        if len(values) != 1:
            return [_figure(getattr(p, attr)) for p in series.points]
        flat.append(_figure(values.pop()))
    return flat


def chart_data(series: Series, months: tuple[int, int], periods: dict[int, int]) -> dict[str, Any]:
    """What the bundled script (static/dashboard.js) needs to draw ``series`` as
    :func:`render_chart` would, and its data table: columns, not records, so a chart costs
    its figures and little more. ``periods``: the data file's month indexes, each to its
    position in the file's ``periods`` list; ``i`` (positions) is written only when the
    series lacks some of them. ``v n d`` values, numerators, denominators; ``c l u``
    centre and limits (see :func:`_limit_column`); ``t`` point types (numbers into
    :data:`DATA_POINT_TYPES`); ``s`` segments, ``x`` suppressed and ``b`` baseline flags
    only when any is set."""
    points = series.points
    out: dict[str, Any] = {"title": series.title, "desc": chart_description(series, months)}
    positions = [periods[month_index(p.period)] for p in points]
    if positions != list(range(len(periods))):
        out["i"] = positions
    out["v"] = [_figure(p.value) for p in points]
    out["n"] = [p.numerator for p in points]
    out["d"] = [p.denominator for p in points]
    out["c"] = _limit_column(series, "centre")
    out["l"] = _limit_column(series, "lpl")
    out["u"] = _limit_column(series, "upl")
    out["t"] = [_TYPE_NUMBER.get(p.point_type, 0) for p in points]
    if any(p.segment for p in points):
        out["s"] = [p.segment for p in points]
    if any(p.suppressed for p in points):
        out["x"] = [int(p.suppressed) for p in points]
    baseline = series.baseline_span
    if baseline:
        out["base"] = [month_index(baseline[0]), month_index(baseline[1])]
        out["b"] = [int(p.in_baseline and p.segment == 0) for p in points]
    if series.changes:
        out["changes"] = [
            {
                "id": c.change_id,
                "m": month_index(c.month),
                "kind": c.kind_label.lower(),
                "rebases": c.rebases,
                "text": c.description,
                "summary": c.summary,
            }
            for c in series.changes
        ]
    return out


def chart_data_file(fmt: ValueFormat, target: float | None, months: tuple[int, int]) -> dict:
    """The head of an organisation chart data file: how its figures are written and the
    shared x axis (every chart of a measure has the same months, so they line up)."""
    return {
        "months": list(months),
        "decimals": fmt.decimals,
        "unit": fmt.unit,
        "percent": fmt.is_percent,
        "axis": y_axis_label(fmt),
        "target": target,
        "types": [list(t) for t in DATA_POINT_TYPES],
        # The drawing's geometry, so the script draws exactly what render_chart does.
        "layout": {
            "width": WIDTH,
            "height": HEIGHT,
            "left": LEFT,
            "right": RIGHT,
            "top": TOP,
            "bottom": BOTTOM,
            "unitRow": UNIT_ROW,
            "labelRow": LABEL_ROW,
            "maxMonthTicks": MAX_MONTH_TICKS,
            "markerLabelGap": MARKER_LABEL_GAP,
        },
    }


#: The columns of a chart's CSV download, in order (organisations_reporting only where the
#: tier publishes it).
CSV_COLUMNS = (
    "month",
    "value",
    "numerator",
    "denominator",
    "is_suppressed",
    "organisations_reporting",
    "centre",
    "lower_limit",
    "upper_limit",
    "point_type",
    "segment",
    "in_baseline",
    "recorded_change",
)


def chart_csv(series: Series, with_reporting: bool | None = None) -> str:
    """The chart's data as CSV text: every month drawn, with its limits, segment, whether it
    is a baseline month, and the recorded changes that begin in it. Full precision (the
    chart rounds for display only); a suppressed count is blank with ``is_suppressed`` true
    (as the disclosure scan expects of an export); text cells are neutralised
    against spreadsheet formulas (docs/design.md §11)."""
    if with_reporting is None:
        with_reporting = _reports_organisations([series])
    columns = [c for c in CSV_COLUMNS if with_reporting or c != "organisations_reporting"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(_csv_rows(series, columns))
    return buffer.getvalue()


def series_csv(series: list[Series]) -> str:
    """The data of several charts as one CSV text (the site's downloads: one file per
    measure for its region, ICB and sector charts, one per measure and ICB for its
    organisations' charts): :func:`chart_csv`'s columns after ``level`` and ``series_key``,
    which say whose rows they are; the series in the order given, each in month order.
    One file per page rather than per chart: at national scale (20,000 organisations) the
    per-chart files were 50,000 files of a few kilobytes each."""
    with_reporting = _reports_organisations(series)
    columns = [c for c in CSV_COLUMNS if with_reporting or c != "organisations_reporting"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["level", "series_key", *columns])
    for one in series:
        key = neutralise_csv_cell(one.series_key)
        writer.writerows([one.level, key, *row] for row in _csv_rows(one, columns))
    return buffer.getvalue()


def _reports_organisations(series: list[Series]) -> bool:
    """Whether a download has the organisations_reporting column: only where the tier
    publishes it, and never for an organisation's own chart."""
    return any(
        s.level != "organisation" and p.organisations_reporting is not None
        for s in series
        for p in s.points
    )


def _csv_rows(series: Series, columns: list[str]) -> list[list[Any]]:
    changes: dict[int, list[str]] = {}
    for change in series.changes:
        changes.setdefault(month_index(change.month), []).append(
            f"{change.change_id}: {change.description}"
        )
    rows = []
    for p in series.points:
        row = {
            "month": p.period.isoformat(),
            "value": _plain(p.value),
            "numerator": _plain(p.numerator),
            "denominator": _plain(p.denominator),
            "is_suppressed": "true" if p.suppressed else "false",
            "organisations_reporting": _plain(p.organisations_reporting),
            "centre": _plain(p.centre),
            "lower_limit": _plain(p.lpl),
            "upper_limit": _plain(p.upl),
            "point_type": p.point_type or "",
            # A suppressed month carries no figure at all, not even its segment number.
            "segment": "" if p.suppressed else p.segment,
            "in_baseline": "true" if p.in_baseline else "false",
            "recorded_change": neutralise_csv_cell(
                "; ".join(changes.get(month_index(p.period), []))
            ),
        }
        rows.append([row[c] for c in columns])
    return rows


def _plain(value: float | int | None) -> str:
    """A number as Python writes it (round-trips exactly); blank for none."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _count(value: int | None) -> str:
    return "suppressed" if value is None else f"{value:,}"
