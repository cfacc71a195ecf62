"""One chart on its own (no warehouse): segments, recorded changes, baseline shading, limits in
the tooltip data, axis labels and ticks, the CSV download and the method note
(docs/programme-impact.md §1-§3)."""

from __future__ import annotations

import csv
import io
import itertools
import re
from datetime import date

from pipelines.dashboard.charts import (
    HEIGHT,
    MAX_MONTH_TICKS,
    chart_csv,
    collapsed_segments,
    render_chart,
)
from pipelines.dashboard.model import (
    Point,
    RecordedChange,
    Series,
    ValueFormat,
)
from pipelines.months import month_index

FMT = ValueFormat.for_measure("per 1000 occupied bed days", 1000)
MONTHS = [date(2023 + (3 + i) // 12, (3 + i) % 12 + 1, 1) for i in range(24)]
REBASE = RecordedChange(
    "CHG-9", date(2024, 4, 1), "definition_change", True, "Counting moved to the new system"
)
NUDGE = RecordedChange("CHG-8", date(2023, 12, 1), "intervention", False, "Huddles <daily> & co")


def _series(
    constant: bool = False, basis: str | None = "baseline_window", with_changes: bool = True
) -> Series:
    points = []
    for i, month in enumerate(MONTHS):
        segment = 1 if month >= REBASE.month else 0
        centre = 4.0 if segment == 0 else 2.5
        value = 4.0 if constant else centre + (0.3 if i % 2 else -0.3)
        width = 0.0 if constant else 1.2
        points.append(
            Point(
                month,
                value,
                12 + i,
                3000,
                centre,
                centre - width,
                centre + width,
                "common_cause",
                False,
                organisations_reporting=3,
                segment=0 if constant else segment,
                in_baseline=(0 if constant else segment) == 0 and i < 12,
            )
        )
    return Series(
        "icb",
        "QZZ",
        "Zedshire",
        points,
        "common_cause",
        None,
        None,
        "decrease",
        anchor="icb-QZZ",
        changes=[NUDGE, REBASE] if with_changes else [],
        limits_basis=basis,
    )


def _months() -> tuple[int, int]:
    return month_index(MONTHS[0]), month_index(MONTHS[-1])


def _x_range(d: str) -> tuple[float, float]:
    xs = [float(x) for x in re.findall(r"[MH](-?[\d.]+)", d)]
    return min(xs), max(xs)


def test_each_segment_has_its_own_centre_and_limits_never_joined():
    svg = render_chart(_series(), _months(), FMT, "c1")
    paths = re.findall(r'<path class="(centre|limit)" data-segment="(\d)" d="([^"]+)"', svg)
    assert sorted({(css, seg) for css, seg, _ in paths}) == [
        ("centre", "0"),
        ("centre", "1"),
        ("limit", "0"),
        ("limit", "1"),
    ]
    assert len(paths) == 6  # centre, lower and upper limit, per segment
    # Segment 0's lines end where segment 1's begin: the change month's left edge.
    change_x = float(re.search(r'data-change-id="CHG-9".*?<line x1="([\d.]+)"', svg).group(1))
    for css, seg, d in paths:
        lo, hi = _x_range(d)
        if seg == "0":
            assert hi <= change_x + 0.05, (css, d)
        else:
            assert lo >= change_x - 0.05, (css, d)
    # Each path is one unbroken run of steps: one move, no jump across the cut.
    assert all(d.count("M") == 1 for _, _, d in paths)


def test_recorded_changes_are_numbered_markers_with_their_description():
    svg = render_chart(_series(), _months(), FMT, "c1")
    markers = re.findall(r'<g class="(change[^"]*)" data-change-id="([^"]+)" data-desc="([^"]*)">'
                         r"<title>([^<]*)</title>", svg)  # fmt: skip
    assert [(css, cid) for css, cid, _, _ in markers] == [
        ("change", "CHG-8"),
        ("change rebase", "CHG-9"),
    ]
    for _, _, desc, title in markers:
        assert desc == title
    assert "Huddles &lt;daily&gt; &amp; co" in markers[0][3]  # escaped, never markup
    assert "Counting moved to the new system" in markers[1][3]
    assert "limits recalculated" in markers[1][3]
    # Numbered as the list under the chart.
    assert re.search(r'data-change-id="CHG-8".*?text-anchor="middle">1</text>', svg)
    assert re.search(r'data-change-id="CHG-9".*?text-anchor="middle">2</text>', svg)
    # The point of the change month carries the description for the keyboard tooltip.
    assert re.search(r'data-m="Apr 2024"[^>]*data-ch="CHG-9 \(Apr 2024', svg)
    # No register: no markers.
    assert 'class="change' not in render_chart(_series(with_changes=False), _months(), FMT, "c")


def test_baseline_months_are_shaded_and_points_carry_their_limits():
    svg = render_chart(_series(), _months(), FMT, "c1")
    shaded = re.search(
        r'<g class="baseline"><title>Baseline: Apr 2023 to Mar 2024</title>'
        r'<rect x="([\d.]+)" y="[\d.]+" width="([\d.]+)"',
        svg,
    )
    assert shaded
    x0, width = float(shaded.group(1)), float(shaded.group(2))
    points = re.findall(r'<circle class="pt [^"]*" cx="([\d.]+)"[^>]*data-m="([^"]+)"', svg)
    inside = [m for cx, m in points if x0 < float(cx) < x0 + width]
    assert inside == [f"{m} 2023" for m in ("Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                      "Nov", "Dec")] + ["Jan 2024", "Feb 2024", "Mar 2024"]  # fmt: skip
    # Limits resting on every point are no named baseline: nothing shaded.
    assert 'class="baseline"' not in render_chart(_series(basis="all_points"), _months(), FMT, "c2")
    # Every point: mean and limits for the tooltip, formatted as the data table does.
    first = re.search(r"<circle [^>]*data-m=\"Apr 2023\"[^>]*>", svg).group(0)
    assert 'data-c="4.00"' in first and 'data-l="2.80"' in first and 'data-u="5.20"' in first
    assert 'data-b="1"' in first
    late = re.search(r"<circle [^>]*data-m=\"Jun 2024\"[^>]*>", svg).group(0)
    assert 'data-c="2.50"' in late and "data-b" not in late


def test_axes_are_labelled_and_month_ticks_do_not_crowd():
    svg = render_chart(_series(), _months(), FMT, "c1")
    assert '<text class="axis-label"' in svg
    assert ">Month</text>" in svg
    assert ">Per 1000 occupied bed days</text>" in svg
    assert ">Per cent (%)</text>" in render_chart(
        _series(), _months(), ValueFormat.for_measure("%", 100), "c2"
    )
    month_ticks = re.findall(
        rf'<text( class="alt")? x="([\d.]+)" y="{HEIGHT - 52 + 21}" text-anchor="middle">', svg
    )
    assert 2 <= len(month_ticks) <= MAX_MONTH_TICKS
    xs = [float(x) for _, x in month_ticks]
    # 12 user units per character is generous for "Apr 23" at the desktop size (12 units).
    assert min(b - a for a, b in itertools.pairwise(xs)) >= 6 * 12 * 0.6
    # On a narrow screen every second label is hidden (dashboard.css): still apart at 20 units.
    shown = [float(x) for alt, x in month_ticks if not alt]
    assert min(b - a for a, b in itertools.pairwise(shown)) >= 6 * 20 * 0.6


def test_limits_on_the_mean_are_said_beside_the_chart():
    from pipelines.dashboard.charts import method_notes

    constant = _series(constant=True)
    assert len(collapsed_segments(constant)) == 1
    notes = " ".join(method_notes(constant, FMT))
    assert "Limits drawn on the mean (4.00 per 1000 occupied bed days)" in notes
    assert "NHSRplotthedots gives no limits" in notes
    assert collapsed_segments(_series()) == []
    notes = " ".join(method_notes(_series(), FMT))
    assert "NHSRplotthedots" not in notes
    assert "Limits recalculated from Apr 2024" in notes
    assert "Shaded: the baseline, Apr 2023 to Mar 2024" in notes


def test_csv_holds_every_month_of_the_chart():
    series = _series()
    rows = list(csv.DictReader(io.StringIO(chart_csv(series))))
    assert len(rows) == len(series.points)
    for row, point in zip(rows, series.points, strict=True):
        assert row["month"] == point.period.isoformat()
        assert float(row["value"]) == point.value
        assert int(row["numerator"]) == point.numerator
        assert int(row["denominator"]) == point.denominator
        assert int(row["organisations_reporting"]) == point.organisations_reporting
        assert float(row["centre"]) == point.centre
        assert float(row["lower_limit"]) == point.lpl
        assert float(row["upper_limit"]) == point.upl
        assert int(row["segment"]) == point.segment
        assert row["in_baseline"] == ("true" if point.in_baseline else "false")
        assert row["is_suppressed"] == "false"
    by_month = {r["month"]: r["recorded_change"] for r in rows}
    assert by_month["2024-04-01"] == "CHG-9: Counting moved to the new system"
    assert by_month["2023-12-01"] == "CHG-8: Huddles <daily> & co"
    assert sum(1 for v in by_month.values() if v) == 2
    # A suppressed month: blank figures, flagged (the disclosure scan's rule for exports).
    series.points[3] = Point(MONTHS[3], None, None, None, None, None, None, None, False,
                             suppressed=True, segment=0)  # fmt: skip
    row = list(csv.DictReader(io.StringIO(chart_csv(series, with_reporting=False))))[3]
    assert "organisations_reporting" not in row
    assert row["is_suppressed"] == "true"
    assert row["numerator"] == row["value"] == row["centre"] == row["segment"] == ""


def test_markers_close_together_share_one_label():
    series = _series()
    series.changes = [
        RecordedChange("A", date(2024, 4, 1), "intervention", False, "first"),
        RecordedChange("B", date(2024, 4, 1), "intervention", False, "same month"),
        RecordedChange("C", date(2024, 5, 1), "intervention", False, "next month"),
        RecordedChange("D", date(2025, 1, 1), "intervention", False, "much later"),
    ]
    svg = render_chart(series, _months(), FMT, "c1")
    labels = re.findall(r'text-anchor="middle">([\d,]+)</text></g>', svg)
    assert labels == ["1,2,3", "4"]
    assert svg.count('<g class="change"') == 4  # every change still has its own marker


def test_a_chart_drawn_alone_needs_only_the_series_and_format():
    from pipelines.dashboard.charts import render_series_chart

    series = _series()
    assert render_series_chart(series, FMT) == render_chart(series, _months(), FMT, "chart")
    series.points = []
    assert render_series_chart(series, FMT) == ""
