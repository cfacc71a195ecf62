"""What a chart needs to know about one series, and the wording people read beside it.

Kept apart from the HTML so the plain-English readings (the part most people actually read)
can be tested on their own.
"""

from dataclasses import dataclass, field
from datetime import date

from pipelines.dashboard.icon_svg import ASSURANCE_LABELS, VARIATION_LABELS
from pipelines.months import month_label

POINT_TYPE_LABELS: dict[str, str] = {
    "common_cause": "Common cause",
    "special_cause_improvement": "Special cause: improvement",
    "special_cause_concern": "Special cause: concern",
    "special_cause_neutral_high": "Special cause: unusually high",
    "special_cause_neutral_low": "Special cause: unusually low",
}
CHART_LABELS: dict[str, str] = {
    "xmr": "XmR chart (individual values and moving ranges)",
    "p": "P chart (proportion)",
    "u": "U chart (rate)",
    "p_prime": "Laney P′ chart (proportion, limits allow for extra variation between months)",
    "u_prime": "Laney U′ chart (rate, limits allow for extra variation between months)",
}
CHANGE_KIND_LABELS: dict[str, str] = {
    "intervention": "Intervention",
    "definition_change": "Definition change",
    "data_collection_change": "Data collection change",
}
LIMITS_BASIS_LABELS: dict[str, str] = {
    "baseline_window": "the baseline window",
    "first_n_points": "the first months of each segment",
    "all_points": "all months of each segment",
}
DIRECTION_LABELS: dict[str, str] = {
    "increase": "Higher is better",
    "decrease": "Lower is better",
    "neutral": "Neither higher nor lower is better",
}


@dataclass(frozen=True)
class ValueFormat:
    """How a measure's values are written: percentages to 1 dp, rates to 2 dp."""

    unit: str
    decimals: int

    @classmethod
    def for_measure(cls, unit: str | None, multiplier: float | None) -> "ValueFormat":
        unit = unit or ""
        percent = unit.startswith("%") or (multiplier == 100 and "per" not in unit)
        return cls(unit=unit, decimals=1 if percent else 2)

    @property
    def is_percent(self) -> bool:
        return self.unit.startswith("%")

    def number(self, value: float | None) -> str:
        if value is None:
            return "–"
        return f"{value:,.{self.decimals}f}"

    def value(self, value: float | None) -> str:
        """A value with its unit, as a sentence would say it: ``91.2%``, ``3.45 per 1000 …``."""
        if value is None:
            return "no value"
        if self.is_percent:
            return f"{self.number(value)}{self.unit}"
        return f"{self.number(value)} {self.unit}".strip()

    def target(self, target: float | None) -> str | None:
        if target is None:
            return None
        text = f"{target:,.{self.decimals}f}".rstrip("0").rstrip(".")
        return f"{text}%" if self.is_percent else f"{text} {self.unit}".strip()


@dataclass(frozen=True, slots=True)
class Point:
    """One month of one chart (slots: an internal national site holds millions at once)."""

    period: date
    value: float | None
    numerator: int | None
    denominator: int | None
    centre: float | None
    lpl: float | None
    upl: float | None
    point_type: str | None
    trial_limits: bool
    organisations_reporting: int | None = None
    suppressed: bool = False
    #: 0-based segment (limits recalculated at each rebasing change, docs/programme-impact.md §3)
    segment: int = 0
    #: One of the points the segment's limits rest on (its baseline).
    in_baseline: bool = False


@dataclass(frozen=True)
class RecordedChange:
    """A change from the change register that applies to a series (docs/programme-impact.md §1)."""

    change_id: str
    month: date
    kind: str
    rebases: bool
    description: str

    @property
    def kind_label(self) -> str:
        return CHANGE_KIND_LABELS.get(self.kind, self.kind.replace("_", " ").capitalize())

    @property
    def summary(self) -> str:
        """``CHG-002 (Oct 2024, definition change; limits recalculated): …``"""
        rebase = "; limits recalculated from here" if self.rebases else ""
        return (
            f"{self.change_id} ({month_label(self.month)}, {self.kind_label.lower()}{rebase}):"
            f" {self.description}"
        )


@dataclass
class Series:
    """One chart: a series of one measure at one level."""

    level: str
    series_key: str
    title: str
    points: list[Point]
    variation_icon: str | None
    assurance_type: str | None
    target: float | None
    improvement_direction: str
    org_code: str | None = None
    sector_code: str | None = None
    icb_code: str | None = None
    subtitle: str = ""
    anchor: str = ""
    notes: list[str] = field(default_factory=list)
    #: Recorded changes on this series, by month (empty before the register exists).
    changes: list[RecordedChange] = field(default_factory=list)
    #: What segment 0's limits rest on: baseline_window, first_n_points, all_points (None:
    #: unknown).
    limits_basis: str | None = None

    @property
    def segments(self) -> list[list[Point]]:
        """The points of each segment, in order (one segment when nothing rebased)."""
        out: list[list[Point]] = []
        for point in self.points:
            if not out or out[-1][-1].segment != point.segment:
                out.append([])
            out[-1].append(point)
        return out

    @property
    def baseline_span(self) -> tuple[date, date] | None:
        """First and last month of segment 0's baseline, when it is a named baseline (a
        window or the first n points; limits resting on all points are no baseline)."""
        if self.limits_basis == "all_points":
            return None
        months = [p.period for p in self.points if p.segment == 0 and p.in_baseline]
        return (min(months), max(months)) if months else None

    @property
    def with_values(self) -> list[Point]:
        return [p for p in self.points if p.value is not None]

    @property
    def last(self) -> Point | None:
        values = self.with_values
        return values[-1] if values else None


def _signal_start(series: Series) -> date | None:
    """First month of the run of points, ending at the latest, that share its point type.

    "Special cause improvement since Oct 2024" must name when the signal began, not just
    that the last point is flagged; a gap (missing value) ends the run.
    """
    last = series.last
    if last is None:
        return None
    start = last.period
    for point in reversed(series.points):
        if point.period > last.period:
            continue
        if point.value is None or point.point_type != last.point_type:
            break
        start = point.period
    return start


def variation_reading(series: Series) -> str:
    """Plain-English reading of the variation icon, e.g. 'Special cause improvement since …'."""
    points = series.with_values
    if not points:
        if any(p.suppressed for p in series.points):
            return (
                "Every month suppressed: the numbers are too small, or come from too few"
                " organisations, to publish"
            )
        return "No data to chart yet"
    if len(points) < 2:
        return f"Only one month of data ({month_label(points[0].period)}): too few to judge"
    icon = series.variation_icon
    if icon is None:
        return "Too few points to judge variation"
    if icon == "common_cause":
        return "Common cause variation: no significant change"
    since = _signal_start(series)
    since_text = f" since {month_label(since)}" if since else ""
    kind, side = icon.split("_")
    if kind == "improvement":
        return f"Special cause improvement{since_text}"
    if kind == "concern":
        return f"Special cause concern{since_text}"
    return f"Special cause variation: unusually {side}{since_text}"


def assurance_reading(series: Series, fmt: ValueFormat) -> str | None:
    """Plain-English reading of the assurance icon, or of why there is none."""
    target = fmt.target(series.target)
    if target is None:
        return None
    if series.assurance_type == "consistent_pass":
        return f"Consistently passing the {target} target"
    if series.assurance_type == "consistent_fail":
        return f"Consistently failing the {target} target: it lies outside the process limits"
    if series.assurance_type == "inconsistent":
        return f"Hit and miss against the {target} target: it lies within the process limits"
    if series.improvement_direction == "neutral":
        return f"Target {target} (no assurance: the measure has no better direction)"
    return f"Target {target}: too few points to judge whether it will be met"


def reading(series: Series, fmt: ValueFormat) -> str:
    """The one line shown under each chart title: variation, then assurance."""
    parts = [variation_reading(series)]
    assurance = assurance_reading(series, fmt)
    if assurance:
        parts.append(assurance)
    return ". ".join(parts) + "."


def icon_label(series: Series) -> str:
    parts = []
    if series.variation_icon:
        parts.append(VARIATION_LABELS[series.variation_icon])
    if series.assurance_type:
        parts.append(ASSURANCE_LABELS[series.assurance_type])
    return "; ".join(parts)
