"""Board reports: a printable report per ICB and one for the region, in HTML and PDF.

Each report walks the programmes and their measures: the SPC chart of the report's own series
(region or ICB) with its variation and assurance icons and the plain-English reading the
dashboard shows, then the programme-impact figures of docs/programme-impact.md §4 (baseline
against the last 12 months, change in the better direction, the sustained signal and the
recorded change it follows, financial year on financial year, events avoided or added), for
that series and the series one level down (ICBs in the region report, sectors in an ICB's).
The internal ICB report adds a summary row per organisation and measure of the ICB; each
organisation's own charts are in a companion HTML file (``icb-<code>-organisations.html``,
printable from a browser) rather than in the PDF: a real ICB has hundreds of organisations,
and a chart page each made the PDF run to hundreds of pages and take most of a minute to
render in every publication.

Inputs are the tier's own published file, as for the dashboard (``pipelines/dashboard``):
charts come from :func:`pipelines.dashboard.build.load_series` and are drawn by the
dashboard's chart code, so a report shows exactly what the site shows; the impact and change
tables are read by :mod:`pipelines.report.reads`. The public report reads the public file
alone (``pub_*`` tables), shows no organisation and prints no count from 1 to the
suppression threshold: the published counts are already disclosure-controlled, and a derived
event count in that range is printed as "suppressed" (docs/design.md §7).

Everything a report needs is inside its HTML file (CSS, SVG charts and icons; no fonts or
URLs from anywhere), so the PDF renders offline with WeasyPrint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup, escape

from pipelines.dashboard import icon_svg
from pipelines.dashboard.build import (
    AGGREGATE_LEVELS,
    SiteData,
    SiteMeasure,
    built_beside,
    card_text,
    chart_context,
    load_icb_organisations,
    load_series,
    load_site,
    slug,
    tier_warehouse,
)
from pipelines.dashboard.build import (
    STATIC as DASHBOARD_STATIC,
)
from pipelines.dashboard.model import (
    CHART_LABELS,
    DIRECTION_LABELS,
    Series,
    ValueFormat,
)
from pipelines.months import financial_year, month_text, short_month
from pipelines.publish.disclosure import DisclosureRules, rules_from_settings
from pipelines.report.carry import (
    ReportCarry,
    context_fingerprint,
    organisation_digests,
    pdf_renderer,
    read_previous,
    shared_digest,
)
from pipelines.report.reads import ProgrammeData, read_organisation_impact, read_programme_data
from pipelines.spc.constants import COUNT_CHARTS, direction_sign

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
TIERS = ("internal", "public")
#: A file in every built reports folder; a non-empty folder without it is never replaced.
MARKER = ".safety-observatory-reports"
#: Each report's fingerprints by report stem: of its rendered HTML
#: (:func:`report_fingerprint`) and of its inputs (``pipelines/report/carry.py``), with its
#: file names. Published with the reports, read by the next publication to carry the
#: reports whose inputs are unchanged.
INPUTS_FILE = "report-inputs.json"


@dataclass
class ReportSpec:
    """One report: the region's or an ICB's."""

    scope: str  # region | icb
    code: str | None
    name: str

    @property
    def stem(self) -> str:
        return "region" if self.scope == "region" else f"icb-{slug(self.code or '')}"


@dataclass
class BuiltReport:
    spec: ReportSpec
    html: Path
    pdf: Path | None
    pages: int | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Formatting.


def _span(first: Any, last: Any) -> str:
    if first is None and last is None:
        return "–"
    return f"{month_text(first)} to {month_text(last)}"


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _signed(fmt: ValueFormat, value: float) -> str:
    """A difference in the measure's unit: ``+1.2 percentage points``, ``-0.35 per 1000 …``."""
    sign = "+" if value > 0 else "-" if value < 0 else ""
    number = fmt.number(abs(value))
    if fmt.is_percent:
        return f"{sign}{number} percentage points"
    return f"{sign}{number} {fmt.unit}".strip()


@dataclass(frozen=True)
class CountPolicy:
    """How event counts are printed: the public tier prints none from 1 to the suppression
    threshold (docs/design.md §7)."""

    tier: str
    rules: DisclosureRules

    def text(self, value: Any) -> str:
        number = _finite(value)
        if number is None:
            return "–"
        whole = round(number)
        if self.tier == "public" and self.rules.min_count <= abs(whole) <= (
            self.rules.max_suppressed_count
        ):
            return "suppressed"
        return f"{whole:,}"


def impact_context(
    row: dict[str, Any] | None,
    measure: SiteMeasure,
    counts: CountPolicy,
    changes: dict[str, dict[str, Any]],
    first_period: date | None = None,
) -> dict[str, Any] | None:
    """The impact figures of one series, formatted (None: no row for it). ``first_period``
    is the series' first month: a last segment starting later means the limits were
    recalculated (docs/programme-impact.md §3)."""
    if row is None:
        return None
    fmt = measure.fmt
    direction = row.get("improvement_direction") or measure.improvement_direction
    baseline = _finite(row.get("baseline_mean"))
    last_12 = _finite(row.get("last_12_value"))
    improvement = _finite(row.get("improvement_abs"))
    if improvement is None and baseline is not None and last_12 is not None:
        improvement = (last_12 - baseline) * direction_sign(direction)
    if improvement is not None and fmt.number(abs(improvement)) == fmt.number(0):
        improvement = 0.0  # no change at the precision the figures are shown
    relative = _finite(row.get("improvement_rel"))
    if direction == "neutral" or improvement is None:
        change = "No better direction: change not judged" if direction == "neutral" else "–"
        change_short = "–"
    else:
        word = "better" if improvement > 0 else "worse" if improvement < 0 else "no change"
        amount = _signed(fmt, abs(improvement)).lstrip("+")
        rel = f" ({abs(relative) * 100:.1f}%)" if relative is not None else ""
        change = (
            f"{amount}{rel} {word} than the baseline"
            if improvement
            else "No change from the baseline"
        )
        sign = "+" if improvement > 0 else "-" if improvement < 0 else ""
        change_short = f"{sign}{fmt.number(abs(improvement))}" + (
            f" ({sign}{abs(relative) * 100:.1f}%)" if relative is not None and improvement else ""
        )
    signal = (row.get("signal") or "").lower() or None
    if signal in ("improvement", "concern"):
        since = month_text(row.get("signal_start"))
        change_id = row.get("attributed_change_id")
        if change_id:
            description = row.get("attributed_change_description") or (
                changes.get(change_id, {}).get("description") or ""
            )
            recorded = changes.get(change_id, {}).get("change_date")
            when = f", {month_text(recorded)}" if recorded else ""
            follows = f"Follows {change_id}{when}: {description}".rstrip(": ")
        else:
            follows = "No recorded change in the months before it"
        signal_text = f"Sustained {signal} since {since}"
        signal_short = f"{signal.capitalize()} since {since}"
    else:
        signal_text = "No sustained shift in the latest segment"
        signal_short = "None"
        follows = ""
    fy_current = _finite(row.get("fy_current_value"))
    fy_previous = _finite(row.get("fy_previous_value"))
    fy_change = _finite(row.get("fy_change_abs"))
    if fy_change is None and fy_current is not None and fy_previous is not None:
        fy_change = fy_current - fy_previous
    if fy_change is not None and fmt.number(abs(fy_change)) == fmt.number(0):
        fy_change = 0.0
    part_year = (row.get("fy_current_months") or 12) < 12
    fy = None
    if row.get("fy_current") is not None:
        fy = {
            "current": f"FY {financial_year(row.get('fy_current'))}"
            + (" (part year)" if part_year else ""),
            "current_value": fmt.value(fy_current),
            "previous": f"FY {financial_year(row.get('fy_previous'))}"
            if row.get("fy_previous") is not None
            else "",
            "previous_value": fmt.value(fy_previous) if row.get("fy_previous") else "",
            "change": (
                ("up " if fy_change > 0 else "down " if fy_change < 0 else "")
                + (_signed(fmt, abs(fy_change)).lstrip("+") if fy_change else "no change")
            )
            if fy_change is not None
            else "–",
        }
    events = None
    chart = row.get("chart") or measure.chart
    if chart in COUNT_CHARTS and _finite(row.get("expected_events")) is not None:
        better = _finite(row.get("events_better"))
        better_text = counts.text(better)
        if better is None or better_text in ("–", "suppressed"):
            summary = "Too few events to say" if better_text == "suppressed" else "–"
        elif round(better) == 0:
            summary = "As many as the baseline rate predicts"
        elif direction == "decrease":
            summary = (
                f"{counts.text(abs(better))} fewer than the baseline rate predicts"
                if better > 0
                else f"{counts.text(abs(better))} more than the baseline rate predicts"
            )
        else:
            summary = (
                f"{counts.text(abs(better))} more than the baseline rate predicts"
                if better > 0
                else f"{counts.text(abs(better))} fewer than the baseline rate predicts"
            )
        events = {
            "expected": counts.text(row.get("expected_events")),
            "observed": counts.text(row.get("observed_events")),
            "excess": counts.text(row.get("excess_events")),
            "better": better_text,
            "summary": summary,
        }
    return {
        "baseline_span": _span(row.get("baseline_from"), row.get("baseline_to")),
        "baseline_mean": fmt.value(baseline),
        "baseline_number": fmt.number(baseline),
        "last_12_number": fmt.number(last_12),
        "signal_short": signal_short,
        "baseline_limits": (
            f"{fmt.number(_finite(row.get('baseline_lpl')))} to "
            f"{fmt.number(_finite(row.get('baseline_upl')))}"
        ),
        "current_start": month_text(row.get("current_segment_start")),
        "current_mean": fmt.value(_finite(row.get("current_mean"))),
        "rebased": row.get("current_segment_start") is not None
        and first_period is not None
        and str(row.get("current_segment_start"))[:10] > first_period.isoformat(),
        "last_12_span": _span(row.get("last_12_from"), row.get("last_12_to")),
        "last_12_value": fmt.value(last_12),
        "change": change,
        "change_short": change_short,
        "signal": signal_text,
        "signal_kind": signal or "none",
        "follows": follows,
        "fy": fy,
        "events": events,
    }


# ---------------------------------------------------------------------------------------------
# Charts and icons for print.


def inline_icon(kind: str, name: str | None, label: str, size: int = 34) -> Markup:
    """A Making Data Count icon drawn in place (the dashboard's ``<use>`` of a page sprite
    does not render in a PDF)."""
    if not name:
        return Markup("")
    body = (
        icon_svg._variation_symbol(name)
        if kind == "variation"
        else icon_svg._assurance_symbol(name)
    )
    return Markup(
        f'<svg class="mdc-icon" width="{size}" height="{size}" viewBox="0 0 40 40" role="img"'
        f' aria-label="{escape(label)}"><title>{escape(label)}</title>{body}</svg>'
    )


_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_VARIABLE = re.compile(r"var\(\s*(--[\w-]+)\s*(?:,[^)]*)?\)")
_CLASS = re.compile(r"\.([A-Za-z_][\w-]*)")


def chart_css(svgs: list[str]) -> str:
    """The dashboard stylesheet's rules for the classes its charts use, with CSS variables
    written out: a PDF renderer styles SVG from a ``<style>`` inside the ``<svg>`` and does
    not resolve ``var()`` there. Read from the dashboard's own CSS, so a chart element the
    dashboard adds is styled here too."""
    css = re.sub(r"/\*.*?\*/", "", (DASHBOARD_STATIC / "dashboard.css").read_text(), flags=re.S)
    variables = dict(re.findall(r"(--[\w-]+)\s*:\s*([^;]+);", css))
    used = {
        c for svg in svgs for found in re.findall(r'class="([^"]*)"', svg) for c in found.split()
    }
    # Top-level rules only: drop @media blocks (screen layouts, focus rings).
    flat: list[str | None] = []
    depth, start = 0, 0
    for i, ch in enumerate(css):
        if ch == "{":
            if depth == 0 and css[start:i].strip().startswith("@"):
                flat.append(None)
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                flat.append(css[start : i + 1])
                start = i + 1
    rules = []
    for chunk in flat:
        if not chunk or chunk.lstrip().startswith("@"):
            continue
        match = _RULE.search(chunk)
        if not match:
            continue
        selector, body = match.group(1).strip(), match.group(2).strip()
        interactive = any(x in selector for x in (":focus", ":hover", "active"))
        if selector.startswith(":root") or interactive:
            continue
        classes = set(_CLASS.findall(selector))
        if not classes or not classes <= (used | {"spc-chart"}):
            continue
        body = _VARIABLE.sub(lambda m: variables.get(m.group(1), "#000").strip(), body)
        rules.append(f"{selector} {{ {body} }}")
    return "\n".join(rules)


def _with_style(svg: str, css: str) -> Markup:
    if not svg:
        return Markup("")
    head, _, rest = str(svg).partition(">")
    return Markup(f"{head}><style>{css}</style>{rest}")


# ---------------------------------------------------------------------------------------------
# Assembling a report.


def _series_name(series: Series, site: SiteData) -> str:
    if series.level == "organisation":
        return site.names.get(series.org_code or "", series.title)
    return series.title


def _block(
    series: Series,
    measure: SiteMeasure,
    site: SiteData,
    data: ProgrammeData,
    counts: CountPolicy,
    counter,
    *,
    draw: bool = True,
) -> dict[str, Any]:
    """One chart with its icons, readings and impact. ``draw=False`` (an organisation's
    block): the words only, no SVG and no icons; the browser draws the chart from the
    dashboard's data file (:func:`render_reports`)."""
    chart = (
        chart_context(series, measure, next(counter))
        if draw
        else {**card_text(series, measure), "svg": ""}
    )
    fmt = measure.fmt
    target_text = fmt.target(series.target)
    key = (series.level, series.series_key, measure.code)
    changes = [
        {
            "id": c["change_id"],
            "month": month_text(c["change_month"]),
            "kind": (c.get("kind") or data.changes.get(c["change_id"], {}).get("kind") or "")
            .replace("_", " ")
            .strip(),
            "description": data.changes.get(c["change_id"], {}).get("description") or "",
            "rebases": bool(c.get("rebases")),
        }
        for c in data.series_changes.get(key, [])
    ]
    return {
        "series": series,
        "name": _series_name(series, site),
        "svg": chart["svg"],
        "variation_icon": inline_icon(
            "variation",
            series.variation_icon,
            icon_svg.VARIATION_LABELS.get(series.variation_icon or "", ""),
        )
        if draw
        else Markup(""),
        "assurance_icon": inline_icon(
            "assurance", series.assurance_type, chart["assurance_label"] or ""
        )
        if draw
        else Markup(""),
        "variation_label": chart["variation_label"],
        "assurance_label": chart["assurance_label"]
        or ("No target" if target_text is None else "Assurance not judged"),
        "reading": chart["reading"],
        "gaps": chart["gaps"],
        "trial": chart["trial"],
        "latest": chart["latest"],
        "impact": impact_context(
            data.impact.get(key),
            measure,
            counts,
            data.changes,
            series.points[0].period if series.points else None,
        ),
        "changes": changes,
    }


def _measure_head(measure: SiteMeasure) -> dict[str, Any]:
    return {
        "code": measure.code,
        "name": measure.name,
        "unit": measure.unit,
        "direction": DIRECTION_LABELS.get(measure.improvement_direction, ""),
        "chart_label": CHART_LABELS.get(measure.chart, measure.chart),
        "target": measure.fmt.target(measure.target),
        "numerator": measure.numerator_definition,
        "denominator": measure.denominator_definition,
        "counts_events": measure.chart in COUNT_CHARTS,
    }


def report_context(
    spec: ReportSpec,
    site: SiteData,
    data: ProgrammeData,
    counts: CountPolicy,
) -> dict[str, Any]:
    """Everything one report shows: per programme and measure, the report's own series and
    the series one level down; for an internal ICB report, the organisations' pages."""
    counter = iter(range(1_000_000))
    main_level, sub_level = ("region", "icb") if spec.scope == "region" else ("icb", "sector")
    periods: list[date] = []
    programmes = []
    empty: list[str] = []
    glance = []
    for programme in site.programmes:
        measures = [
            m for m in site.measures.values() if m.programme_code == programme["programme_code"]
        ]
        items = []
        for measure in measures:
            own = [
                s
                for s in measure.series.get(main_level, [])
                if spec.scope == "region" or s.icb_code == spec.code
            ]
            subs = [
                s
                for s in measure.series.get(sub_level, [])
                if spec.scope == "region" or s.icb_code == spec.code
            ]
            for s in own + subs:
                periods += [p.period for p in s.points[:1] + s.points[-1:]]
            block = _block(own[0], measure, site, data, counts, counter) if own else None
            sub_rows = [
                {
                    "name": site.sector_names.get(s.sector_code or "", s.sector_code or "")
                    if s.level == "sector"
                    else _series_name(s, site),
                    "latest": (
                        f"{measure.fmt.number(s.last.value)} ({short_month(s.last.period)})"
                        if s.last
                        else ""
                    ),
                    "variation": icon_svg.VARIATION_SHORT.get(s.variation_icon or "", "–"),
                    "impact": impact_context(
                        data.impact.get((s.level, s.series_key, measure.code)),
                        measure,
                        counts,
                        data.changes,
                        s.points[0].period if s.points else None,
                    ),
                }
                for s in subs
            ]
            item = {**_measure_head(measure), "block": block, "subs": sub_rows}
            items.append(item)
            glance.append({"programme": programme["programme_name"], **item})
        if items:
            programmes.append({**programme, "measures": items})
        else:
            empty.append(programme["programme_name"])

    period = _span(min(periods), max(periods)) if periods else "no data yet"
    return {
        "spec": spec,
        "programmes": programmes,
        "empty_programmes": empty,
        "glance": glance,
        **organisations_context(spec, site, data, counts),
        "period": period,
        "main_level": main_level,
        "sub_level": sub_level,
    }


def organisations_context(
    spec: ReportSpec, site: SiteData, data: ProgrammeData, counts: CountPolicy
) -> dict[str, Any]:
    """The organisations part of a report: for an internal ICB report, a summary row per
    organisation and measure of the ICB (its ``organisations``), from the organisation
    charts in ``site``'s measures (:func:`load_icb_organisations` loads one ICB's), and
    ``organisation_measures``, the measures with organisation charts in the ICB (one
    dashboard data file each). Empty for any other report, or with none loaded."""
    organisations: list[dict[str, Any]] = []
    if site.tier != "internal" or spec.scope != "icb":
        return {"organisations": organisations, "organisation_measures": []}
    # The blocks are not drawn (the browser draws them): no chart numbers are taken.
    counter = iter(range(1_000_000))
    by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
    org_series: dict[str, Series] = {}
    for measure in site.measures.values():
        for s in measure.series.get("organisation", []):
            if s.icb_code != spec.code or not s.org_code:
                continue
            org_series.setdefault(s.org_code, s)
            block = _block(s, measure, site, data, counts, counter, draw=False)
            by_org[s.org_code].append(
                {
                    **_measure_head(measure),
                    "block": block,
                    "variation_short": icon_svg.VARIATION_SHORT.get(s.variation_icon or "", "–"),
                }
            )
    order = site.sector_order
    for code in sorted(
        by_org,
        key=lambda c: (
            order.get(org_series[c].sector_code or "", 99),
            site.names.get(c, c),
            c,
        ),
    ):
        first = org_series[code]
        organisations.append(
            {
                "code": code,
                "name": site.names.get(code, code),
                "sector": site.sector_names.get(first.sector_code or "", first.sector_code),
                "measures": by_org[code],
            }
        )
    return {
        "organisations": organisations,
        "organisation_measures": [
            code
            for code, measure in site.measures.items()
            if any(
                s.icb_code == spec.code and s.org_code
                for s in measure.series.get("organisation", [])
            )
        ]
        if organisations
        else [],
    }


_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def in_words(number: int) -> str:
    """Small whole numbers in words: the public report prints no bare digit from 1 to the
    suppression threshold, so a reader (or the scan) never takes a setting for a count."""
    return _WORDS[number] if 0 <= number < len(_WORDS) else f"{number:,}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["words"] = in_words
    env.filters["slug"] = slug
    return env


def _specs(site: SiteData) -> list[ReportSpec]:
    codes = {s.icb_code for m in site.measures.values() for s in m.series.get("icb", [])}
    icbs = sorted((c for c in codes if c), key=lambda c: (site.names.get(c, c), c))
    return [ReportSpec("region", None, "")] + [
        ReportSpec("icb", c, site.names.get(c, c)) for c in icbs
    ]


def pdf_renderer_available() -> bool:
    """Whether WeasyPrint loads here (it needs the system's Pango). Without it the reports
    are still written, as HTML only (print them from a browser), and the log says why:
    a missing PDF must not hold back a publication."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError) as error:
        log.error("board reports: no PDFs, WeasyPrint cannot load (%s); HTML only", error)
        return False
    return True


def write_pdf(html_file: Path, pdf_file: Path) -> int:
    """Render ``html_file`` to ``pdf_file`` with WeasyPrint, offline (any URL other than a
    local file is refused, and the report has none); returns the page count."""
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
    offline = URLFetcher(allowed_protocols=["file", "data"], fail_on_errors=True)
    document = HTML(filename=str(html_file), url_fetcher=offline).render()
    document.write_pdf(str(pdf_file))
    return len(document.pages)


def _timed_pdf(html_file: Path, pdf_file: Path) -> tuple[int, float]:
    started = time.perf_counter()
    pages = write_pdf(html_file, pdf_file)
    return pages, time.perf_counter() - started


def render_pdfs(jobs: list[tuple[Path, Path]], workers: int) -> list[tuple[int, float]]:
    """Render each (HTML, PDF) pair; with ``workers`` > 1 and more than one job, in a pool
    of that many processes (WeasyPrint is pure Python and holds the GIL: one process renders
    one PDF at a time, about 20 s for a national-scale ICB report). Spawned, not forked: the
    caller holds a DuckDB connection and Dagster's threads."""
    if workers <= 1 or len(jobs) <= 1:
        return [_timed_pdf(html, pdf) for html, pdf in jobs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        return list(pool.map(_timed_pdf, *zip(*jobs, strict=True)))


#: Placeholders for the run's own stamps while a report's fingerprint is taken: a report
#: whose every other byte is the previous snapshot's is carried from it, stamps and all.
_STAMPS = ("\x00published\x00", "\x00run\x00")


def report_fingerprint(html_without_stamps: str, pdf: bool) -> str:
    """What a report's files are made from: the HTML as rendered from the rows it reads,
    the templates, the stylesheets and the chart code (everything but the run's time and
    id), whether a PDF is made, and the WeasyPrint that makes it."""
    digest = hashlib.sha256(f"{pdf_renderer(pdf)}\n".encode())
    digest.update(html_without_stamps.encode("utf-8"))
    return digest.hexdigest()


def render_reports(
    con: duckdb.DuckDBPyConnection,
    tier: str,
    out_dir: Path,
    *,
    region_name: str,
    published_at: datetime,
    run_id: str,
    rules: DisclosureRules,
    pdf: bool = True,
    workers: int = 1,
    data_root: str = "../site/",
    previous: ReportCarry | None = None,
    pending_pdfs: list[Path] | None = None,
) -> list[BuiltReport]:
    """Write every report of ``tier`` (HTML, and PDF unless ``pdf`` is false) and the
    index page under ``out_dir``.

    A report whose input fingerprint (``pipelines/report/carry.py``) is the ``previous``
    snapshot's is carried from it (its HTML, organisation pages and PDF linked) before its
    organisations are read or anything of it is rendered; any other report is rendered,
    and still carried if its rendered HTML's fingerprint (:func:`report_fingerprint`) is
    the previous snapshot's. The PDFs that are rendered are rendered by ``workers``
    processes. Each report's fingerprints are in ``BuiltReport.extra`` (``fingerprint``,
    ``inputs``; its file names in ``files``). ``data_root``: the dashboard site's folder
    relative to ``out_dir``, whose organisation data files and script the organisation
    pages draw their charts from. ``pending_pdfs``: given, the PDFs to render are not
    rendered here but appended to it (their paths in ``out_dir``), for the publication to
    render after its swap (``pipelines/publish/pdfs.py``): each report's HTML still links
    to its PDF, and a carried report carries its PDF as before."""
    site = load_site(con, tier)
    data = read_programme_data(con, tier, levels=AGGREGATE_LEVELS)
    if data.missing:
        log.warning("board reports (%s): no %s table yet", tier, ", ".join(data.missing))
    # The aggregate levels of every measure now (42 ICBs' worth whatever the scale); an
    # ICB's organisations only while its report is written (below), so memory follows the
    # largest ICB, not the nation's organisations.
    for measure in site.measures.values():
        load_series(con, site, measure, levels=AGGREGATE_LEVELS)
    counts = CountPolicy(tier, rules)
    env = _environment()
    contexts = []
    for spec in _specs(site):
        if spec.scope == "region":
            spec.name = region_name
        contexts.append(report_context(spec, site, data, counts))
    # The organisations' blocks are not drawn (the browser draws them), so the charts that
    # style the reports are all here before any organisation is read.
    svgs = [
        b["svg"] for ctx in contexts for block in _blocks(ctx) for b in (block,) if b and b["svg"]
    ]
    css = chart_css(svgs)
    for ctx in contexts:
        for block in _blocks(ctx):
            block["svg"] = _with_style(block["svg"], css)
    report_css = (STATIC / "report.css").read_text()
    if pdf and not pdf_renderer_available():
        pdf = False
    common = {
        "tier": tier,
        "region_name": region_name,
        "published": _STAMPS[0],
        "run_id": _STAMPS[1],
        "missing": data.missing,
        "report_css": Markup(report_css),
        "rules": rules,
        "data_root": data_root,
    }
    stamps = (published_at.strftime("%Y-%m-%d %H:%M UTC"), run_id)
    # Every report's input fingerprint, before any organisation is read or anything is
    # rendered (the contexts so far hold the aggregate levels only).
    shared = shared_digest(site, data, common, pdf, TEMPLATES, STATIC)
    organisations = organisation_digests(con, site, data) if tier == "internal" else {}
    inputs = [_inputs_fingerprint(ctx, shared, organisations, tier) for ctx in contexts]

    def stamped(text: str) -> str:
        return text.replace(_STAMPS[0], str(escape(stamps[0]))).replace(
            _STAMPS[1], str(escape(stamps[1]))
        )

    built, jobs = [], []
    with_organisations = False
    for ctx, fingerprint in zip(contexts, inputs, strict=True):
        spec = ctx["spec"]
        record = (
            previous.take(spec.stem, fingerprint, out_dir)
            if previous is not None and fingerprint is not None
            else None
        )
        if record is not None:
            report = _carried_report(spec, record, out_dir, pdf)
            report.extra["inputs"] = fingerprint
            with_organisations |= "organisations_html" in report.extra
            built.append(report)
            continue
        if tier == "internal" and spec.scope == "icb" and spec.code:
            load_icb_organisations(con, site, spec.code)
            read_organisation_impact(
                con,
                data,
                (s.series_key for m in site.measures.values() for s in m.series["organisation"]),
            )
            ctx.update(organisations_context(spec, site, data, counts))
            for organisation in ctx["organisations"]:
                for item in organisation["measures"]:
                    item["block"]["svg"] = _with_style(item["block"]["svg"], css)
            with_organisations |= bool(ctx["organisations"])
        try:
            report, job = _write_report(
                ctx, env, common, out_dir, pdf=pdf, previous=previous, stamped=stamped
            )
        finally:
            # Written (or carried): the ICB's organisations are let go.
            ctx["organisations"] = []
            for measure in site.measures.values():
                measure.series.pop("organisation", None)
            read_organisation_impact(con, data, [])
        report.extra["inputs"] = fingerprint
        built.append(report)
        if job is not None:
            jobs.append(job)
    if pending_pdfs is not None:
        pending_pdfs.extend(pdf_file for _, _, pdf_file in jobs)
        jobs = []
    for (report, _, pdf_file), (pages, seconds) in zip(
        jobs, render_pdfs([(h, p) for _, h, p in jobs], workers), strict=True
    ):
        report.pages, report.seconds = pages, seconds
        log.info("board report %s: %s pages in %.1f s", pdf_file.name, pages, seconds)
    log.info(
        "board reports (%s): %d rendered, %d carried from the current snapshot (%d of them"
        " on their inputs, not rendered)",
        tier,
        sum(not r.extra.get("carried") for r in built),
        sum(bool(r.extra.get("carried")) for r in built),
        sum(r.extra.get("carried") == "inputs" for r in built),
    )
    if with_organisations:
        # The dashboard's script, bundled beside the pages that draw with it.
        shutil.copyfile(DASHBOARD_STATIC / "dashboard.js", out_dir / "dashboard.js")
    (out_dir / "index.html").write_text(
        stamped(env.get_template("index.html.j2").render(**common, reports=built)),
        encoding="utf-8",
    )
    (out_dir / MARKER).write_text(f"tier={tier}\n")
    return built


def _inputs_fingerprint(
    ctx: dict[str, Any], shared: str, organisations: dict[str, str], tier: str
) -> str | None:
    """A report's input fingerprint (``pipelines/report/carry.py``): what all reports
    share, its own context as built so far, and for an internal ICB report the digest of
    its organisations' rows. None: its context cannot be fingerprinted (never carried on
    its inputs)."""
    own = context_fingerprint(ctx)
    if own is None:
        return None
    spec = ctx["spec"]
    icb = tier == "internal" and spec.scope == "icb"
    rows = organisations.get(spec.code or "") if icb else None
    return hashlib.sha256(f"{shared}\0{own}\0{rows}".encode()).hexdigest()


def _carried_report(spec: ReportSpec, record: dict, out_dir: Path, pdf: bool) -> BuiltReport:
    """The report ``spec`` as carried on its inputs, from the previous folder's ``record``
    of it (its files are linked already): what :func:`_write_report` would give."""
    report = BuiltReport(spec, out_dir / f"{spec.stem}.html", None)
    files = list(record["files"])
    if f"{spec.stem}-organisations.html" in files:
        report.extra["organisations_html"] = out_dir / f"{spec.stem}-organisations.html"
    if pdf:
        report.pdf = out_dir / f"{spec.stem}.pdf"
    report.extra.update(fingerprint=record["fingerprint"], files=files, carried="inputs")
    log.info("board report %s: inputs unchanged, carried without rendering", spec.stem)
    return report


def _write_report(
    ctx: dict[str, Any],
    env: Environment,
    common: dict[str, Any],
    out_dir: Path,
    *,
    pdf: bool,
    previous: ReportCarry | None,
    stamped: Callable[[str], str],
) -> tuple[BuiltReport, tuple[BuiltReport, Path, Path] | None]:
    """Write one report's HTML (and its organisations page) from its context ``ctx``, or
    carry its files from the ``previous`` snapshot when its fingerprint is the same there.
    Returns the report and, when its PDF is to be rendered, the (report, HTML, PDF) job."""
    spec = ctx["spec"]
    html_file = out_dir / f"{spec.stem}.html"
    org_file = out_dir / f"{spec.stem}-organisations.html"
    report = BuiltReport(spec, html_file, None)
    main_html = env.get_template("report.html.j2").render(
        **common,
        **ctx,
        appendix=False,
        organisations_href=org_file.name if ctx["organisations"] else None,
        pdf_name=f"{spec.stem}.pdf" if pdf else None,
    )
    org_html = (
        env.get_template("report.html.j2").render(
            **common,
            **ctx,
            appendix=True,
            pdf_name=None,
            dashboard_css=Markup((DASHBOARD_STATIC / "dashboard.css").read_text()),
            sprite=icon_svg.sprite(),
        )
        if ctx["organisations"]
        else ""
    )
    fingerprint = report_fingerprint(main_html + "\x00" + org_html, pdf)
    report.extra["fingerprint"] = fingerprint
    names = [html_file.name]
    if org_html:
        names.append(org_file.name)
        report.extra["organisations_html"] = org_file
    if pdf:
        report.pdf = out_dir / f"{spec.stem}.pdf"
        names.append(report.pdf.name)
    report.extra["files"] = names
    if (
        previous is not None
        and previous.fingerprints.get(spec.stem) == fingerprint
        and all(previous.carry(name, out_dir / name) for name in names)
    ):
        report.extra["carried"] = "html"
        log.info("board report %s: rendered HTML unchanged, carried", spec.stem)
        return report, None
    for name in names:  # a part carried before another could not be: render all
        (out_dir / name).unlink(missing_ok=True)
    html_file.write_text(stamped(main_html), encoding="utf-8")
    if org_html:
        org_file.write_text(stamped(org_html), encoding="utf-8")
    return report, (report, html_file, report.pdf) if report.pdf is not None else None


def _blocks(ctx: dict[str, Any]):
    for programme in ctx["programmes"]:
        for item in programme["measures"]:
            if item["block"]:
                yield item["block"]
    for organisation in ctx["organisations"]:
        for item in organisation["measures"]:
            yield item["block"]


def build_reports(
    warehouse: Path,
    out_dir: Path,
    tier: str = "internal",
    *,
    region_name: str | None = None,
    published_at: datetime | None = None,
    run_id: str = "built by hand",
    rules: DisclosureRules | None = None,
    pdf: bool = True,
    workers: int = 1,
    data_root: str = "../site/",
    previous: ReportCarry | None = None,
    pending_pdfs: list[Path] | None = None,
) -> Path:
    """Build the board reports of ``tier`` from the tier's published ``warehouse`` into
    ``out_dir``; returns the path of the reports' ``index.html``. Each report's fingerprint
    is written to ``INPUTS_FILE`` in the folder, for the next build's ``previous``
    (:func:`previous_reports`); ``pdf``, ``workers``, ``data_root``: see
    :func:`render_reports`. ``pending_pdfs``: given, receives the paths (in ``out_dir``)
    of the PDFs left for the caller to render (:func:`render_reports`).

    As :func:`pipelines.dashboard.build.build_site`: ``warehouse`` is the tier's own file
    (a public build refuses a file with organisation-level tables), the folder is built
    beside ``out_dir`` and swapped in whole, and a non-empty folder that is not a reports
    folder is refused rather than replaced.
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}; got {tier!r}")
    warehouse, out_dir = Path(warehouse), Path(out_dir)
    if region_name is None or rules is None:
        from pipelines.settings import load_settings

        settings = load_settings()
        region_name = region_name or settings.region_name
        rules = rules or rules_from_settings(settings)
    published_at = published_at or datetime.now(UTC)
    deferred: list[Path] | None = [] if pending_pdfs is not None else None
    with built_beside(out_dir, MARKER, "a reports folder") as building:
        with tier_warehouse(warehouse, tier, "reports") as con:
            built = render_reports(
                con,
                tier,
                building,
                region_name=region_name,
                published_at=published_at,
                run_id=run_id,
                rules=rules,
                pdf=pdf,
                workers=workers,
                data_root=data_root,
                previous=previous,
                pending_pdfs=deferred,
            )
        (building / INPUTS_FILE).write_text(json.dumps(_records(built), indent=1) + "\n")
    if pending_pdfs is not None and deferred:
        pending_pdfs.extend(out_dir / p.name for p in deferred)
    return out_dir / "index.html"


def _records(built: list[BuiltReport]) -> dict[str, dict[str, Any]]:
    """What :data:`INPUTS_FILE` records of each report: its rendered-HTML fingerprint, its
    input fingerprint (when it has one) and its files' names."""
    records: dict[str, dict[str, Any]] = {}
    for report in built:
        record = {"fingerprint": report.extra["fingerprint"]}
        if report.extra.get("inputs") is not None:
            record["inputs"] = report.extra["inputs"]
        records[report.spec.stem] = {**record, "files": report.extra["files"]}
    return records


def previous_reports(folder: Path, carry: Any) -> ReportCarry | None:
    """The ``previous`` of :func:`build_reports` from a published reports ``folder``: its
    fingerprints (None without them: nothing is carried), and ``carry(name, target)``,
    which links ``name`` of that folder to ``target`` if it can be trusted and returns
    whether it did (:meth:`pipelines.publish.snapshot.PreviousSnapshot.carry`). A folder
    of the older format (rendered-HTML fingerprints alone) carries as before: every
    report is rendered and compared (:func:`pipelines.report.carry.read_previous`)."""
    try:
        text = (folder / INPUTS_FILE).read_text()
    except OSError:
        return None
    return read_previous(text, carry)
