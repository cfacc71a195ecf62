"""Build the static dashboard site from a published snapshot.

Input is the published, read-only DuckDB file (never the working file): the site shows exactly
what analysts can query, and building it can never block or be blocked by a pipeline run.
Output is a folder of plain HTML with one CSS and one JS file beside it, relative links only,
so it works opened from disk (``file://``) or served by any web server, with no network.

Pages::

    index.html                        programmes -> measures, region icons and readings
    measures/<MEASURE>.html           region, ICB and sector charts; links to organisations
    measures/<MEASURE>/<ICB>.html     internal tier only: every organisation's chart in an ICB

Organisation charts live on per-ICB pages rather than on the measure page because a GP
measure has a chart per practice (hundreds per ICB, thousands nationally).

Tiers (docs/design.md §7): ``internal`` is built from the internal snapshot's ``fct_spc`` (rows with
``tier = 'internal'``) and shows every level. ``public`` is built from the public tier's own
file (``public/warehouse.duckdb``) alone: ``pub_spc`` (SPC on the disclosure-controlled
counts), ``dim_icb`` for ICB names and the public dimensions. There is no fallback to
internal rows: a public build given a file without ``pub_spc``, or one that holds
organisation-level tables (``dim_organisation``, ``fct_measure_monthly``, ``fct_spc``), is
refused, so a public site can only ever show what the public file publishes. The disclosure
scan (:func:`pipelines.publish.disclosure.scan_site`) then checks the pages themselves.
"""

import json
import re
import shutil
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from pipelines.dashboard.carry import (
    PageCarry,
    context_digest,
    measure_digest,
    organisation_page_digests,
    render_digest,
)
from pipelines.dashboard.charts import (
    chart_data,
    chart_data_file,
    method_notes,
    render_chart,
    series_csv,
)
from pipelines.dashboard.icon_svg import (
    ASSURANCE_LABELS,
    ASSURANCE_SHORT,
    VARIATION_LABELS,
    VARIATION_SHORT,
    assurance_icon_svg,
    icon_key,
    sprite,
    variation_icon_svg,
)
from pipelines.dashboard.impact import impact_programmes
from pipelines.dashboard.incidents import has_incident_pages, incident_pages
from pipelines.dashboard.model import (
    CHART_LABELS,
    DIRECTION_LABELS,
    POINT_TYPE_LABELS,
    Point,
    RecordedChange,
    Series,
    ValueFormat,
    assurance_reading,
    reading,
    variation_reading,
)
from pipelines.dashboard.sources import (
    DEFAULT_SEGMENT_SELECT,
    read_impact,
    read_series_changes,
    segment_select,
)
from pipelines.months import month_index, month_label
from pipelines.publish.disclosure import DisclosureRules, rules_from_settings
from pipelines.spc.constants import catalogue_direction
from pipelines.warehouse import open_duckdb

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
TIERS = ("internal", "public")
AGGREGATE_LEVELS = ("region", "icb", "sector")
#: What each tier's charts are read from: the same columns, whichever file.
SERIES_SOURCES: dict[str, str] = {
    "internal": "(select * from fct_spc where tier = 'internal')",
    "public": (
        "(select *, cast(null as varchar) as org_code,"
        " cast(null as bigint) as organisations_reporting from pub_spc)"
    ),
}
#: Where each tier's names come from (organisations internally; the public tier names ICBs
#: only, from its own dim_icb): code and name.
NAMES_SOURCES: dict[str, str] = {
    "internal": "(select org_code as code, org_name as name from dim_organisation)",
    "public": "(select icb_code as code, icb_name as name from dim_icb)",
}
#: Tables a public build needs, and tables that mark a file as internal (never read).
PUBLIC_REQUIRED = ("pub_spc", "dim_icb", "dim_measure", "dim_programme", "dim_sector")
INTERNAL_ONLY = ("dim_organisation", "fct_measure_monthly", "fct_spc")
#: A file in every built site; a non-empty folder without it is never replaced.
MARKER = ".safety-observatory-site"

_ACRONYMS = {"NHS", "ICB", "GP", "CIC", "LLP", "UK", "PCN", "CCG", "LTD", "PLC", "CIO", "HC"}
_SMALL = {"AND", "OF", "THE", "FOR", "IN", "AT", "ON"}


def display_name(name: str | None, code: str) -> str:
    """ODS names are upper case; title-case them for reading, keeping NHS-style acronyms."""
    if not name:
        return code
    if name != name.upper():
        return name
    words = []
    for i, word in enumerate(name.split()):
        bare = word.strip("(),.&'")
        if bare in _ACRONYMS:
            words.append(word if bare != "LTD" else word.replace("LTD", "Ltd"))
        elif bare in _SMALL and i > 0:
            words.append(word.lower())
        else:
            words.append("-".join(part.capitalize() for part in word.split("-")))
    return " ".join(words)


def slug(text: str) -> str:
    """A file- and id-safe form of a code (codes are already tame; this keeps it so)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"


@dataclass
class SiteMeasure:
    """A measure as the site and the board reports show it: its wording, number format and
    SPC series per level, read from ``dim_measure`` and the SPC tables of one tier. Not the
    catalogue's :class:`pipelines.catalogue.Measure` (ingest bounds and baselines)."""

    code: str
    name: str
    programme_code: str
    numerator_definition: str
    denominator_definition: str
    unit: str
    improvement_direction: str
    chart: str
    target: float | None
    fmt: ValueFormat
    series: dict[str, list[Series]] = field(default_factory=lambda: defaultdict(list))

    @property
    def region(self) -> Series | None:
        found = self.series.get("region") or []
        return found[0] if found else None

    #: First and last month of the measure's points at the site's levels (:func:`load_site`,
    #: from SQL): every chart of the measure shares this x axis, whichever of its charts are
    #: loaded at the time (the organisations are loaded one ICB at a time).
    span: tuple[date, date] | None = None

    @property
    def months(self) -> tuple[int, int] | None:
        """First and last month index over all the measure's charts (a shared x axis)."""
        span = self.span
        return (month_index(span[0]), month_index(span[1])) if span else None

    @property
    def last_period(self) -> date | None:
        return self.span[1] if self.span else None


@dataclass
class SiteData:
    """The dimensions and settings of one site; series are read per measure while rendering."""

    tier: str
    levels: tuple[str, ...]
    programmes: list[dict[str, Any]]
    measures: dict[str, SiteMeasure]
    sector_names: dict[str, str]
    sector_order: dict[str, int]
    names: dict[str, str]
    last_period: date | None
    #: The segment columns' select-list (defaults where the SPC rows predate them).
    segment_columns: str = DEFAULT_SEGMENT_SELECT
    _changes: dict[str, dict[tuple[str, str], list[RecordedChange]]] = field(
        default_factory=dict, repr=False
    )

    @property
    def series_source(self) -> str:
        """The relation this site's charts are read from (its tier's own SPC rows)."""
        return SERIES_SOURCES[self.tier]

    def series_changes(
        self, con: duckdb.DuckDBPyConnection, measure_code: str
    ) -> dict[tuple[str, str], list[RecordedChange]]:
        """The recorded changes of ``measure_code``'s charts by (level, series key), read
        once per measure (its organisations are loaded one ICB at a time);
        :meth:`forget_changes` lets them go once the measure is written."""
        if measure_code not in self._changes:
            self._changes[measure_code] = read_series_changes(con, self.tier, measure_code)
        return self._changes[measure_code]

    def forget_changes(self, measure_code: str) -> None:
        self._changes.pop(measure_code, None)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def tier_problems(con: duckdb.DuckDBPyConnection, tier: str) -> list[str]:
    """Why the warehouse open on ``con`` cannot feed a site of ``tier`` (empty: it can).

    A public site needs the public tier's file and nothing else: that file has
    ``pub_spc`` and no organisation-level table. Checked before anything is read, so an
    internal file handed to a public build fails loudly instead of leaking."""
    tables = {
        name
        for (name,) in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
    }
    if tier == "internal":
        return [] if "fct_spc" in tables else ["no fct_spc table: not a published internal tier"]
    problems = [
        f"no {name} table: not the public tier's warehouse (public/warehouse.duckdb)"
        for name in PUBLIC_REQUIRED
        if name not in tables
    ]
    problems += [
        f"{name} is organisation-level data: a public site is built from the public tier's"
        " warehouse alone"
        for name in INTERNAL_ONLY
        if name in tables
    ]
    return problems


def load_site(con: duckdb.DuckDBPyConnection, tier: str) -> SiteData:
    """Read the dimensions and settings; series come later, one measure at a time."""
    levels = ("region", "icb", "sector", "organisation") if tier == "internal" else AGGREGATE_LEVELS
    programmes = _rows(
        con,
        "select programme_code, programme_name from dim_programme "
        "order by sort_order, programme_code",
    )
    sectors = _rows(con, "select sector_code, sector_name, sort_order from dim_sector")
    measures: dict[str, SiteMeasure] = {}
    for row in _rows(con, "select * from dim_measure order by measure_name, measure_code"):
        measures[row["measure_code"]] = SiteMeasure(
            code=row["measure_code"],
            name=row["measure_name"],
            programme_code=row["programme_code"],
            numerator_definition=row["numerator_definition"] or "",
            denominator_definition=row["denominator_definition"] or "",
            unit=row["unit"] or "",
            improvement_direction=catalogue_direction(
                row["improvement_direction"], row["measure_code"]
            ),
            chart=row["spc_chart"],
            target=row["target"],
            fmt=ValueFormat.for_measure(row["unit"], row["multiplier"]),
        )
    # Organisation names only where organisation pages are built (the internal tier);
    # the public tier names ICBs only, from its own dim_icb.
    names = {
        r["code"]: display_name(r["name"], r["code"])
        for r in _rows(con, f"select code, name from {NAMES_SOURCES[tier]}")
    }
    # Each measure's months at the site's levels: the shared x axis of its charts, known
    # before any chart is loaded (organisations are loaded one ICB at a time).
    spans = con.execute(
        f"""select measure_code, min(period), max(period) from {SERIES_SOURCES[tier]}
            where list_contains(?, level) group by measure_code""",
        [list(levels)],
    ).fetchall()
    for code, first, last in spans:
        if code in measures:
            measures[code].span = (first, last)
    last_period = max((last for _, _, last in spans), default=None)
    return SiteData(
        tier=tier,
        levels=levels,
        programmes=programmes,
        measures=measures,
        sector_names={r["sector_code"]: r["sector_name"] for r in sectors},
        sector_order={r["sector_code"]: r["sort_order"] for r in sectors},
        names=names,
        last_period=last_period,
        segment_columns=segment_select(con, SERIES_SOURCES[tier]),
    )


#: The columns of a chart's points, in the order :func:`_read_series` unpacks them.
_SERIES_COLUMNS = """spc.measure_code, spc.level, spc.series_key, spc.org_code, spc.sector_code,
    spc.icb_code, spc.period, spc.value, spc.numerator, spc.denominator, spc.centre, spc.lpl,
    spc.upl, spc.point_type, spc.trial_limits, spc.organisations_reporting, spc.variation_icon,
    spc.assurance_type, spc.improvement_direction, spc.is_suppressed"""
#: A chart's rows together, by period, in the order the charts of a level are read.
_BY_SERIES = "spc.level, spc.series_key, spc.period"
#: A query of :func:`_read_series`: the condition on ``spc`` (the site's SPC rows), a join
#: and the parameters of both (the join's first).
Query = tuple[str, str, list]


def _read_series(
    con: duckdb.DuckDBPyConnection, site: SiteData, query: Query, order: str
) -> Iterator[tuple[SiteMeasure, Series, bool]]:
    """Each chart (with its measure) of ``site``'s SPC rows at its levels that ``query``
    selects, complete, as the rows of the next one begin; ``order`` keeps a chart's rows
    together, by period. Rows are fetched in batches, so what this holds is the chart
    being read and one batch, however many rows the query covers. The flag says whether
    the next chart has another ICB (or there is none), before that chart is made: rows in
    ICB order can then be let go ICB by ICB (:func:`organisations_by_icb`)."""
    where, join, params = query
    # A cursor of its own: the caller may query ``con`` while the charts stream.
    cursor = con.cursor()
    cursor.execute(
        f"""
        select {_SERIES_COLUMNS}, {site.segment_columns}
        from {site.series_source} as spc {join}
        where {where} and list_contains(?, spc.level)
        order by {order}
        """,
        [*params, list(site.levels)],
    )
    try:
        names, sector_names = site.names, site.sector_names
        current: Series | None = None
        measure: SiteMeasure | None = None
        current_id: tuple[str, str, str] | None = None
        previous_start = None
        while rows := cursor.fetchmany(50_000):
            for row in rows:
                (code, level, key, org, sector, icb, period, value, num, den, centre, lpl, upl,
                 point_type, trial, reporting, icon, assurance, direction,
                 suppressed, segment, segment_start, in_baseline, basis) = row  # fmt: skip
                if (code, level, key) != current_id:
                    if current is not None and measure is not None:
                        yield measure, current, icb != current.icb_code
                    current_id = (code, level, key)
                    measure = site.measures[code]
                    current = Series(
                        level=level,
                        series_key=key,
                        title=_series_title(level, org, sector, icb, names, sector_names),
                        points=[],
                        variation_icon=icon,
                        assurance_type=assurance,
                        # The catalogue's (dim_measure, in both tiers' files), as SPC used it.
                        target=measure.target,
                        improvement_direction=direction,
                        org_code=org,
                        sector_code=sector,
                        icb_code=icb,
                        anchor=f"{level}-{slug(key)}",
                        changes=site.series_changes(con, code).get((level, key), []),
                    )
                    if level == "organisation":
                        current.subtitle = f"{org} · {sector_names.get(sector or '', sector or '')}"
                assert current is not None
                if segment is None:
                    # A month with no segment (withheld in the public tier): the one before,
                    # or the next one when its segment_start says a segment begins with it.
                    before = current.points[-1].segment if current.points else 0
                    opens = current.points and segment_start == period != previous_start
                    segment = before + 1 if opens else before
                previous_start = segment_start
                current.points.append(
                    Point(
                        period,
                        value,
                        num,
                        den,
                        centre,
                        lpl,
                        upl,
                        point_type,
                        bool(trial),
                        reporting,
                        bool(suppressed),
                        int(segment),
                        bool(in_baseline),
                    )
                )
                if basis is not None and not segment:
                    current.limits_basis = basis  # segment 0's: the one with the named baseline
        if current is not None and measure is not None:
            yield measure, current, True
    finally:
        cursor.close()


def _organisations_of(
    site: SiteData,
    icb: str | None,
    measure: SiteMeasure | None,
    owners_in: Sequence[str | None] | None = None,
) -> Query:
    """The query of the organisation charts of ``icb`` (None: every ICB; or those of
    ``owners_in``, None in it meaning no ICB) of ``measure`` (None: every measure). A
    chart's ICB (``owners.owner``) is that of its first month, as :func:`_read_series`
    takes a chart's ``icb_code`` from its first row: an organisation that moved ICB keeps
    one chart, on one ICB's page."""
    source = site.series_source
    which: list[str] = ["level = 'organisation'"]
    params: list[Any] = []
    if measure is not None:
        which.append("measure_code = ?")
        params.append(measure.code)
    if icb is not None:
        # Only a chart with a row in the ICB can be the ICB's: the first month is looked
        # for among those alone (a fifth of the time of every chart's, at SCALE=1).
        which.append(
            f"series_key in (select series_key from {source}"
            " where level = 'organisation' and icb_code = ?)"
        )
        params.append(icb)
    join = f"""join (select measure_code, series_key,
               arg_min_null(icb_code, period) as owner
        from {source} where {" and ".join(which)} group by all
        ) as owners on owners.measure_code = spc.measure_code
                   and owners.series_key = spc.series_key"""
    where = "spc.level = 'organisation'"
    if measure is not None:
        where += " and spc.measure_code = ?"
        params.append(measure.code)
    if icb is not None:
        where += " and owners.owner = ?"
        params.append(icb)
    if owners_in is not None:
        where += " and (list_contains(?, owners.owner) or (owners.owner is null and ?))"
        params += [[c for c in owners_in if c is not None], None in owners_in]
    return where, join, params


def organisation_order(site: SiteData, series: Series) -> tuple[int, str, str]:
    """Where an organisation's chart comes among its measure's: by sector, then name."""
    return (site.sector_order.get(series.sector_code or "", 99), series.title, series.series_key)


def _add(
    site: SiteData,
    measures: Iterable[SiteMeasure],
    charts: Iterable[tuple[SiteMeasure, Series, bool]],
) -> None:
    """Put ``charts`` in their measures' ``series``, then each level's list of each of
    ``measures`` in the order the pages and reports show it."""
    for measure, series, _ in charts:
        measure.series[series.level].append(series)
    names, order = site.names, site.sector_order
    for measure in measures:
        measure.series["icb"].sort(key=lambda s: (s.title, s.series_key))
        measure.series["sector"].sort(
            key=lambda s: (
                names.get(s.icb_code or "", ""),
                order.get(s.sector_code or "", 99),
                s.title,
            )
        )
        measure.series["organisation"].sort(key=lambda s: organisation_order(site, s))


def load_series(
    con: duckdb.DuckDBPyConnection,
    site: SiteData,
    measure: SiteMeasure,
    *,
    levels: Sequence[str] | None = None,
    icb: str | None = None,
) -> None:
    """Add ``measure``'s charts at ``levels`` (default: all the site's) to
    ``measure.series``, each level's in the order the pages show them; given ``icb``, the
    organisation charts of that ICB only (an organisation that moved ICB is its first
    month's ICB's).

    One measure at a time bounds memory by the largest measure, not the warehouse (a
    national internal site has ~20M points), but a measure's organisations grow with the
    nation (a care-home measure at SCALE=5: ~60,000 charts). The site and the board
    reports therefore load the aggregate levels here (``levels``, 42 ICBs' worth) and the
    organisations one ICB at a time (:func:`organisations_by_icb`,
    :func:`load_icb_organisations`): their memory follows the largest ICB, not the nation.
    """
    if icb is None:
        wanted = list(site.levels if levels is None else levels)
        query: Query = ("spc.measure_code = ? and list_contains(?, spc.level)", "",
                        [measure.code, wanted])  # fmt: skip
    else:
        query = _organisations_of(site, icb, measure)
    _add(site, [measure], _read_series(con, site, query, _BY_SERIES))


def load_icb_organisations(con: duckdb.DuckDBPyConnection, site: SiteData, icb: str) -> None:
    """Add every measure's organisation charts of ``icb`` to the measures' ``series``, in
    one query: what an internal ICB board report shows besides the aggregate levels.
    The caller clears them once the report is written (memory: one ICB's charts)."""
    query = _organisations_of(site, icb, None)
    order = f"spc.measure_code, {_BY_SERIES}"
    _add(site, site.measures.values(), _read_series(con, site, query, order))


def organisations_by_icb(
    con: duckdb.DuckDBPyConnection,
    site: SiteData,
    measure: SiteMeasure,
    icbs: Sequence[str | None] | None = None,
) -> Iterator[tuple[str | None, list[Series]]]:
    """``measure``'s organisation charts one ICB at a time (those of ``icbs`` only, if
    given): the ICB's code (None: no ICB) and its charts in the order the pages show them.
    One query ordered by ICB, so the measure is read once and only one ICB's charts are
    held at a time; ICBs come in code order (no ICB last), not the pages' order."""
    group: list[Series] = []
    order = f"owners.owner nulls last, {_BY_SERIES}"
    query = _organisations_of(site, None, measure, icbs)
    for _, series, ends_icb in _read_series(con, site, query, order):
        group.append(series)
        if ends_icb:
            group.sort(key=lambda s: organisation_order(site, s))
            icb, members, group = series.icb_code, group, []
            yield icb, members
            del members  # held by the caller only, until it lets them go


def _series_title(
    level: str,
    org: str | None,
    sector: str | None,
    icb: str | None,
    names: dict[str, str],
    sector_names: dict[str, str],
) -> str:
    if level == "region":
        return "Whole region: all organisations"
    icb_name = names.get(icb or "", icb or "no ICB")
    if level == "icb":
        return icb_name
    if level == "sector":
        return f"{sector_names.get(sector or '', sector or 'no sector')}: {icb_name}"
    return names.get(org or "", org or "")


# ---------------------------------------------------------------------------------------------
# What the templates get for each chart.


def _completeness(series: Series, last_period: date | None) -> str:
    """Organisations reporting in the last month against the month before (aggregates), or
    whether this organisation's return for the last month has arrived."""
    if not series.points or last_period is None:
        return ""
    if series.level == "organisation":
        latest = series.points[-1].period
        if latest >= last_period:
            return f"Return received for {month_label(last_period)}."
        return f"No return for {month_label(last_period)} yet (last: {month_label(latest)})."
    by_period = {p.period: p.organisations_reporting for p in series.points}
    if not any(n is not None for n in by_period.values()):
        return ""  # the public tier does not publish counts of organisations
    now = by_period.get(last_period)
    previous_period = date(
        last_period.year - (last_period.month == 1), (last_period.month - 2) % 12 + 1, 1
    )
    before = by_period.get(previous_period)
    if now is None:
        return f"No organisation reported for {month_label(last_period)}."
    text = (
        f"{now:,} organisation{'s' if now != 1 else ''} reported for {month_label(last_period)}"
        f" ({month_label(previous_period)}: {before if before is not None else 0:,})"
    )
    if before and now < before:
        text += "; the latest month may still be incomplete"
    return text + "."


def _gaps(series: Series) -> str:
    """Months drawn as gaps, and why: suppressed (public tier: a small count, or too few
    contributing organisations) or no value (zero denominator)."""
    suppressed = [month_label(p.period) for p in series.points if p.suppressed]
    empty = [month_label(p.period) for p in series.points if p.value is None and not p.suppressed]
    parts = []
    if suppressed:
        parts.append(
            f"Suppressed (small numbers or too few organisations): {', '.join(suppressed)}."
        )
    if empty:
        parts.append(f"No value (zero denominator): {', '.join(empty)}.")
    return " ".join(parts)


def card_text(series: Series, measure: SiteMeasure) -> dict[str, Any]:
    """What a chart card says around the drawing, formatted: icons' labels, reading,
    latest value, completeness, gaps, trial limits, recorded changes, method notes. The
    same words whether the server draws the chart (:func:`chart_context`) or the browser
    does (an organisation chart, :func:`organisation_chart`)."""
    fmt = measure.fmt
    last = series.last
    target_text = fmt.target(series.target)
    return {
        "variation_label": VARIATION_LABELS.get(series.variation_icon or "", ""),
        "assurance_label": (
            ASSURANCE_LABELS[series.assurance_type].replace(
                "the target", f"the {target_text} target"
            )
            if series.assurance_type
            else ""
        ),
        "reading": reading(series, fmt),
        "completeness": _completeness(series, measure.last_period),
        "gaps": _gaps(series),
        "trial": bool(last and last.trial_limits and len(series.with_values) >= 2),
        "latest": (f"{fmt.value(last.value)} in {month_label(last.period)}" if last else ""),
        "n_points": len(series.with_values),
        "changes": [
            {"number": n, "change": c, "month": month_label(c.month)}
            for n, c in enumerate(
                (
                    c
                    for c in series.changes
                    if measure.months is None
                    or (measure.months[0] <= month_index(c.month) <= measure.months[1])
                ),
                start=1,
            )
        ],
        "notes": method_notes(series, fmt),
    }


def chart_context(
    series: Series, measure: SiteMeasure, index: int, csv_href: str | None = None
) -> dict[str, Any]:
    """Everything one chart card shows, formatted. ``csv_href``: the link to the chart's CSV
    file (relative to the page), written beside the page by the site builder."""
    fmt = measure.fmt
    changes_by_month: dict[date, list[str]] = defaultdict(list)
    for change in series.changes:
        changes_by_month[change.month].append(f"{change.change_id}: {change.description}")
    baseline = series.baseline_span
    months = measure.months or (0, 0)
    chart_id = f"chart-{index}"
    target_text = fmt.target(series.target)
    return {
        **card_text(series, measure),
        "series": series,
        "id": series.anchor,
        # No values at all (every month suppressed): no empty axes, the reading says why.
        "svg": render_chart(series, months, fmt, chart_id) if series.with_values else "",
        "variation_svg": variation_icon_svg(series.variation_icon),
        "assurance_svg": assurance_icon_svg(series.assurance_type, target_text),
        "csv_href": csv_href,
        "show_baseline": baseline is not None,
        # The public tier publishes no count of organisations: no empty column for one.
        "show_reporting": series.level != "organisation"
        and any(p.organisations_reporting is not None for p in series.points),
        "rows": [
            {
                "month": month_label(p.period),
                "value": fmt.number(p.value),
                "numerator": "suppressed" if p.numerator is None else f"{p.numerator:,}",
                "denominator": "suppressed" if p.denominator is None else f"{p.denominator:,}",
                "reporting": "" if p.organisations_reporting is None else p.organisations_reporting,
                "centre": fmt.number(p.centre),
                "lpl": fmt.number(p.lpl),
                "upl": fmt.number(p.upl),
                "point": POINT_TYPE_LABELS.get(p.point_type or "", "–"),
                "baseline": "Yes" if baseline and p.segment == 0 and p.in_baseline else "",
                "change": "; ".join(changes_by_month.get(p.period, [])),
            }
            for p in series.points
        ],
    }


def organisation_chart(
    series: Series, measure: SiteMeasure, periods: dict[int, int], csv_href: str
) -> dict[str, Any]:
    """One organisation's entry in its ICB's chart data file: the card's words
    (:func:`card_text`) and the chart's columns (:func:`chart_data`), from which the
    bundled script draws the same card :func:`chart_context` gives the template."""
    text = card_text(series, measure)
    entry: dict[str, Any] = {
        "key": series.series_key,
        "anchor": series.anchor,
        "subtitle": series.subtitle,
        "csv": csv_href,
        "vi": series.variation_icon,
        "vl": text["variation_label"],
        "ai": series.assurance_type,
        "al": text["assurance_label"],
        "reading": text["reading"],
        "latest": text["latest"],
        "completeness": text["completeness"],
        "gaps": text["gaps"],
        "trial": text["trial"],
        "notes": text["notes"],
    }
    if series.points:
        entry.update(chart_data(series, measure.months or (0, 0), periods))
    return entry


#: An organisation chart data file is JSON handed to the bundled script by this call: a
#: script file, not a bare .json one, because a page opened from disk (file://) may load a
#: script beside it but may not fetch a file (docs/dashboard.md).
DATA_FILE_SUFFIX = ".data.js"
#: The CSV of a measure page's region, ICB and sector charts, in the measure's folder (an
#: ICB's organisation charts have theirs beside the ICB's data file: ``<icb>.csv``).
CHARTS_CSV = "charts.csv"
_DATA_CALL = "SafetyObservatory.organisations("


def organisation_data_text(data: dict[str, Any]) -> str:
    """The text of a chart data file: compact JSON inside the loader call."""
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return f"{_DATA_CALL}{body});\n"


def read_organisation_data(path: Path) -> dict[str, Any]:
    """The JSON of a chart data file written by :func:`organisation_data_text`."""
    text = Path(path).read_text(encoding="utf-8").strip()
    if not (text.startswith(_DATA_CALL) and text.endswith(");")):
        raise ValueError(f"{path} is not an organisation chart data file")
    return json.loads(text[len(_DATA_CALL) : -2])


def summary_context(series: Series | None, measure: SiteMeasure) -> dict[str, Any]:
    """A row of a summary table: latest value, icons, reading."""
    if series is None or series.last is None:
        return {"has_data": False, "reading": "No data yet."}
    fmt = measure.fmt
    last = series.last
    return {
        "has_data": True,
        "series": series,
        "latest_value": fmt.value(last.value),
        "latest_month": month_label(last.period),
        "variation_svg": variation_icon_svg(series.variation_icon, size=28),
        "assurance_svg": assurance_icon_svg(series.assurance_type, fmt.target(series.target), 28),
        "variation_short": VARIATION_SHORT.get(series.variation_icon or "", "–"),
        "assurance_short": ASSURANCE_SHORT.get(series.assurance_type or "", ""),
        "variation_reading": variation_reading(series),
        "assurance_reading": assurance_reading(series, fmt) or "",
        "reading": reading(series, fmt),
    }


def _measure_context(measure: SiteMeasure) -> dict[str, Any]:
    return {
        "measure": measure,
        "direction": DIRECTION_LABELS[measure.improvement_direction],
        "chart_label": CHART_LABELS.get(measure.chart, measure.chart),
        "target": measure.fmt.target(measure.target),
        "page": f"measures/{slug(measure.code)}.html",
    }


def _icon_counts(series: list[Series]) -> list[tuple[str, int]]:
    counts: dict[str, int] = defaultdict(int)
    for s in series:
        if s.variation_icon:
            counts[VARIATION_SHORT[s.variation_icon]] += 1
    order = ["Improvement", "Concern", "Unusually high", "Unusually low", "Common cause"]
    return [(label, counts[label]) for label in order if counts.get(label)]


# ---------------------------------------------------------------------------------------------
# Writing the site.


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.globals["sprite"] = sprite()
    env.globals["icon_key"] = icon_key
    return env


def _write(path: Path, text: str) -> None:
    """Write ``text`` to a new file at ``path``: a file already there may be a carried
    page's hard link to a published snapshot's file, which must never be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.write_text(text, encoding="utf-8")


def organisation_files(measure_code: str, icb: str) -> tuple[str, list[str]]:
    """The organisation page of ``measure_code`` in ``icb`` and its other files (its
    charts' CSV and data file), relative to the site."""
    folder = f"measures/{slug(measure_code)}"
    return f"{folder}/{slug(icb)}.html", [
        f"{folder}/{slug(icb)}.csv",
        f"{folder}/{slug(icb)}{DATA_FILE_SUFFIX}",
    ]


def _organisation_page(
    env: Environment,
    common: dict[str, Any],
    site: SiteData,
    measure: SiteMeasure,
    icb: str,
    members: list[Series],
    out_dir: Path,
) -> tuple[dict[str, Any], Path]:
    """Write the organisation page of ``measure`` in ``icb`` from its charts ``members``,
    with its chart data file and CSV; returns the measure page's entry for it and its path."""
    href = f"{slug(measure.code)}/{slug(icb)}.html"
    icb_name = site.names.get(icb, icb)
    entry = {"href": href, "name": icb_name, "count": len(members), "icons": _icon_counts(members)}
    org_page = out_dir / "measures" / href
    csv_dir = out_dir / "measures" / slug(measure.code)
    data_name = f"{slug(icb)}{DATA_FILE_SUFFIX}"
    # The charts are drawn by the browser from the data file (docs/dashboard.md): the page
    # carries the summary table and an empty place for each sector's charts, so its size
    # follows the organisations, not their months.
    members_periods = sorted({month_index(p.period) for s in members for p in s.points})
    periods = {m: n for n, m in enumerate(members_periods)}
    months = measure.months or (0, 0)
    entries = []
    by_sector: dict[str, list[dict]] = defaultdict(list)
    # One CSV of every organisation chart of the page (charts.series_csv).
    csv_name = f"{slug(icb)}.csv"
    _write(csv_dir / csv_name, series_csv(members))
    for s in members:
        chart = organisation_chart(s, measure, periods, csv_name)
        chart["sector"] = s.sector_code or "-"
        entries.append(chart)
        by_sector[s.sector_code or "-"].append(
            {
                "summary": summary_context(s, measure),
                "series": s,
                "csv_href": csv_name,
                "show_baseline": s.baseline_span is not None,
                "has_changes": any(
                    months[0] <= month_index(c.month) <= months[1] for c in s.changes
                ),
            }
        )
    data = {
        "version": 1,
        "measure": measure.code,
        "icb": icb,
        **chart_data_file(measure.fmt, measure.target, months),
        "periods": members_periods,
        "series": entries,
    }
    _write(csv_dir / data_name, organisation_data_text(data))
    sectors = sorted(by_sector.items(), key=lambda kv: site.sector_order.get(kv[0], 99))
    _write(
        org_page,
        env.get_template("organisations.html.j2").render(
            **common,
            **_measure_context(measure),
            root="../../",
            measure_href=f"../{slug(measure.code)}.html",
            icb_name=icb_name,
            data_href=data_name,
            sectors=[
                {"code": code, "name": site.sector_names.get(code, code), "items": items}
                for code, items in sectors
            ],
            page_title=f"{measure.name}: organisations in {icb_name}",
        ),
    )
    return entry, org_page


def _organisation_pages(
    con: duckdb.DuckDBPyConnection,
    site: SiteData,
    measure: SiteMeasure,
    out_dir: Path,
    carrying: tuple[PageCarry, dict[str | None, str]] | None,
    write: Callable[[str, list[Series]], tuple[dict[str, Any], Path]],
) -> list[tuple[dict[str, Any], Path]]:
    """``measure``'s organisation pages, one per ICB (``write(icb, charts)`` renders one:
    :func:`_organisation_page`): the measure page's entry for each and its path. With
    ``carrying`` (the :class:`PageCarry` and each page's fingerprint by ICB),
    a page the previous snapshot recorded with the same fingerprint is linked from it, and
    only the other ICBs' organisations are read and rendered (still one ICB at a time)."""
    pages: list[tuple[dict[str, Any], Path]] = []
    carry, fingerprints = carrying if carrying is not None else (None, {})
    render: list[str | None] | None = None
    if carry is not None:
        render = []
        for icb, fingerprint in sorted(fingerprints.items(), key=lambda kv: kv[0] or ""):
            page, files = organisation_files(measure.code, icb or "-")
            entry = carry.take(page, files, fingerprint, out_dir)
            if entry is None:
                render.append(icb)
            else:
                carry.record(page, fingerprint, entry)
                pages.append((entry, out_dir / page))
        if not render:
            return pages
    for icb, members in organisations_by_icb(con, site, measure, render):
        entry, path = write(icb or "-", members)
        del members  # let the ICB's charts go before the next ICB's are read
        pages.append((entry, path))
        if carry is not None and icb in fingerprints:
            carry.record(organisation_files(measure.code, icb or "-")[0], fingerprints[icb], entry)
    return pages


def _render_measure(
    con: duckdb.DuckDBPyConnection,
    env: Environment,
    common: dict[str, Any],
    site: SiteData,
    measure: SiteMeasure,
    out_dir: Path,
    carrying: tuple[PageCarry, dict[str | None, str]] | None = None,
) -> list[Path]:
    """The measure page and (internal tier) its per-ICB organisation pages.

    ``measure.series`` holds the aggregate levels; the organisations are read one ICB at a
    time (:func:`organisations_by_icb`), each ICB's page written from them and let go, so
    memory follows the largest ICB, not the nation. The measure page's list of ICB pages
    is gathered on the way and put in name order. ``carrying``: the site's
    :class:`PageCarry` and the fingerprint of each of the measure's organisation pages by
    ICB (:func:`_organisation_pages`)."""
    pages: list[Path] = []
    context = _measure_context(measure)
    counter = iter(range(1_000_000))
    csv_dir = out_dir / "measures" / slug(measure.code)

    def card(series: Series, prefix: str) -> dict[str, Any]:
        """A chart's context, linking the CSV of the page's charts (works without scripts)."""
        return chart_context(series, measure, next(counter), csv_href=prefix + CHARTS_CSV)

    region = measure.region
    icb_series = measure.series.get("icb", [])
    sector_series = measure.series.get("sector", [])
    org_pages: list[tuple[dict[str, Any], Path]] = []
    if site.tier == "internal":
        org_pages = _organisation_pages(
            con,
            site,
            measure,
            out_dir,
            carrying,
            lambda icb, members: _organisation_page(
                env, common, site, measure, icb, members, out_dir
            ),
        )
    org_pages.sort(key=lambda page: page[0]["name"])
    pages += [path for _, path in org_pages]
    page = out_dir / "measures" / f"{slug(measure.code)}.html"
    drawn = ([region] if region else []) + icb_series + sector_series
    if drawn:
        _write(csv_dir / CHARTS_CSV, series_csv(drawn))
    _write(
        page,
        env.get_template("measure.html.j2").render(
            **common,
            **context,
            root="../",
            region=card(region, f"{slug(measure.code)}/") if region else None,
            completeness=_completeness(region, measure.last_period) if region else "",
            icbs=[card(s, f"{slug(measure.code)}/") for s in icb_series],
            sectors=[card(s, f"{slug(measure.code)}/") for s in sector_series],
            org_pages=[entry for entry, _ in org_pages],
            page_title=measure.name,
        ),
    )
    pages.append(page)
    return pages


def organisation_data_digests(
    con: duckdb.DuckDBPyConnection, site: SiteData, extra: dict[str, str] | None = None
) -> dict[tuple[str, str | None], str]:
    """The data digest of every organisation chart set of ``site`` by (measure code, ICB):
    :func:`~pipelines.dashboard.carry.organisation_page_digests` over the rows the charts
    are read from (:func:`_read_series`'s select-list), with ``extra`` relations (the
    board reports' impact and change rows)."""
    return organisation_page_digests(
        con,
        site.series_source,
        f"{_SERIES_COLUMNS}, {site.segment_columns}",
        NAMES_SOURCES[site.tier],
        site.tier,
        extra,
    )


def _organisation_page_digests(
    con: duckdb.DuckDBPyConnection, site: SiteData, common: dict[str, Any]
) -> Callable[[SiteMeasure], dict[str | None, str]]:
    """A function giving a measure's organisation page fingerprints by ICB: the render
    digest, the site-wide context (``common``, sectors, levels), the measure's own
    (:func:`~pipelines.dashboard.carry.measure_digest`), the ICB's name and the data digest
    of the page's rows, read for every page at once before anything is rendered."""
    site_wide = context_digest(
        render_digest(TEMPLATES, STATIC),
        common,
        site.sector_names,
        site.sector_order,
        site.levels,
    )
    data = organisation_data_digests(con, site)
    by_measure: dict[str, dict[str | None, str]] = defaultdict(dict)
    for (code, icb), digest in data.items():
        by_measure[code][icb] = digest

    def fingerprints(measure: SiteMeasure) -> dict[str | None, str]:
        own = measure_digest(measure)
        return {
            icb: context_digest(site_wide, own, site.names.get(icb or "-", icb or "-"), digest)
            for icb, digest in by_measure.get(measure.code, {}).items()
        }

    return fingerprints


def render_site(
    con: duckdb.DuckDBPyConnection,
    site: SiteData,
    out_dir: Path,
    rules: DisclosureRules | None = None,
    carry: PageCarry | None = None,
) -> list[Path]:
    """Write every page of ``site`` under ``out_dir``; returns the pages written.

    Measure by measure (read, render, let go), keeping only each region series for the
    home page, which is written last; a measure's organisations one ICB at a time
    (:func:`_render_measure`). ``rules`` are the disclosure thresholds the public
    pages describe (default: this deployment's, the ones its public tier was built with).
    With ``carry`` (internal tier), every organisation page gets a fingerprint of its
    inputs (``pipelines/dashboard/carry.py``), recorded in ``carry.recorded``, and one the
    previous snapshot recorded alike is linked from it rather than rendered.
    """
    rules = rules or rules_from_settings()
    env = _environment()
    impact_rows = read_impact(con, site.tier)
    common = {
        "tier": site.tier,
        "rules": rules,
        "last_period": month_label(site.last_period) if site.last_period else None,
        "has_impact": impact_rows is not None,
        # The completeness page: incident reconciliation and department level (internal).
        "has_completeness": has_incident_pages(con, site.tier),
        # The board reports (pipelines/report), when built beside the site (a publication
        # builds them first into <tier folder>/reports).
        "reports_href": "../reports/index.html"
        if (out_dir.parent / "reports" / "index.html").is_file()
        else None,
        # dbt's docs site (the data dictionary), when published beside the site.
        "dbt_docs_href": "../dbt_docs/index.html"
        if (out_dir.parent / "dbt_docs" / "index.html").is_file()
        else None,
    }
    pages: list[Path] = []
    page_digests = (
        _organisation_page_digests(con, site, common)
        if carry is not None and site.tier == "internal"
        else None
    )
    # The icons the impact page repeats, for its levels only (region and ICB).
    shown: dict[tuple[str, str, str], Series] = {}
    for measure in site.measures.values():
        carrying = None
        if carry is not None and page_digests is not None:
            carrying = (carry, page_digests(measure))
        # The aggregate levels; the organisations are read ICB by ICB while rendering.
        load_series(con, site, measure, levels=AGGREGATE_LEVELS)
        pages.extend(_render_measure(con, env, common, site, measure, out_dir, carrying))
        for level in ("region", "icb"):
            for s in measure.series.get(level, []):
                shown[(measure.code, level, s.series_key)] = s
        region = measure.region
        measure.series.clear()
        site.forget_changes(measure.code)
        if region is not None:
            measure.series["region"].append(region)

    by_programme: dict[str, list[SiteMeasure]] = defaultdict(list)
    for measure in site.measures.values():
        by_programme[measure.programme_code].append(measure)
    programmes = [
        {
            **programme,
            "measures": [
                {**_measure_context(m), "summary": summary_context(m.region, m)}
                for m in by_programme.get(programme["programme_code"], [])
            ],
        }
        for programme in site.programmes
    ]
    index = out_dir / "index.html"
    _write(
        index,
        env.get_template("index.html.j2").render(
            **common, root="", programmes=programmes, page_title="Patient safety measures"
        ),
    )
    pages.append(index)
    if impact_rows is not None:
        impact = out_dir / "impact.html"
        _write(
            impact,
            env.get_template("impact.html.j2").render(
                **common,
                root="",
                programmes=impact_programmes(impact_rows, site, shown),
                page_title="Programme impact",
            ),
        )
        pages.append(impact)

    pages += incident_pages(
        con,
        env,
        common,
        tier=site.tier,
        names=site.names,
        out_dir=out_dir,
        write=_write,
    )

    static = out_dir / "static"
    static.mkdir(parents=True, exist_ok=True)
    for asset in sorted(STATIC.iterdir()):
        if asset.is_file() and not asset.name.startswith("."):
            shutil.copyfile(asset, static / asset.name)
    (out_dir / MARKER).write_text(f"tier={site.tier}\n")
    return pages


def build_site(
    warehouse: Path, out_dir: Path, tier: str = "internal", carry: PageCarry | None = None
) -> Path:
    """Build the dashboard for ``tier`` from the published ``warehouse`` into ``out_dir``.

    ``warehouse`` is the tier's own published file: ``warehouse.duckdb`` of a snapshot for
    the internal site, ``public/warehouse.duckdb`` for the public one (any other file is
    refused, see :func:`tier_problems`). The site is written beside ``out_dir`` and
    swapped in whole, so a reader never sees a half-built site and stale pages from an
    earlier build never linger. An existing non-empty ``out_dir`` that is not a site built
    here is refused rather than deleted. Returns the path of ``index.html``. ``carry``:
    organisation pages carried from a previous snapshot, and their fingerprints recorded
    (:func:`render_site`).
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}; got {tier!r}")
    warehouse, out_dir = Path(warehouse), Path(out_dir)
    with (
        built_beside(out_dir, MARKER, "a dashboard site") as building,
        tier_warehouse(warehouse, tier, "site") as con,
    ):
        render_site(con, load_site(con, tier), building, carry=carry)
    return out_dir / "index.html"


@contextmanager
def built_beside(out_dir: Path, marker: str, what: str) -> Iterator[Path]:
    """A fresh folder beside ``out_dir`` to build into, swapped in whole (:func:`swap_in`)
    when the block ends, removed if it fails (``out_dir`` untouched). A non-empty
    ``out_dir`` without ``marker`` (not ``what`` built here) is refused, never deleted: the
    dashboard sites and the board reports are replaced by this one rule."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / marker).exists():
        raise FileExistsError(f"{out_dir} is not empty and is not {what}; not replacing")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = out_dir.with_name(f".{out_dir.name}.building")
    if building.exists():
        shutil.rmtree(building)
    building.mkdir()
    try:
        yield building
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    swap_in(building, out_dir)


@contextmanager
def tier_warehouse(warehouse: Path, tier: str, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """``warehouse`` opened read-only, once :func:`tier_problems` finds it fit to build the
    ``tier``'s ``what`` (site, reports) from; otherwise a ValueError naming the problems."""
    with open_duckdb(warehouse, read_only=True) as con:
        problems = tier_problems(con, tier)
        if problems:
            raise ValueError(
                f"cannot build the {tier} {what} from {warehouse}: " + "; ".join(problems)
            )
        yield con


def swap_in(building: Path, out_dir: Path) -> None:
    """Put the finished folder ``building`` in place of ``out_dir`` with renames only, so a
    reader sees the old folder or the new one, never half of each (the board reports use
    this too)."""
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old")
        if old.exists():
            shutil.rmtree(old)
        out_dir.rename(old)
        building.rename(out_dir)
        shutil.rmtree(old)
    else:
        building.rename(out_dir)
