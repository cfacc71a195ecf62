"""Carry an unchanged board report from the previous snapshot without reading its
organisations or rendering it.

Each report gets a fingerprint of its *inputs*, taken after the aggregate contexts are
built (they are built for every report anyway: their charts decide the stylesheet every
report embeds) and before any ICB's organisations are read or any template is rendered
(docs/dashboard.md, "Carried board reports"). It covers, as the organisation pages'
fingerprints do (``pipelines/dashboard/carry.py``, whose pieces it reuses):

- the render digest: the bytes of the report and dashboard code as this process imported
  it (with the modules in :data:`REPORT_MODULES`), the report's templates and stylesheet,
  the dashboard's static files (chart stylesheet, icons, script), the versions of Jinja
  and MarkupSafe and Python's; whether a PDF is made and WeasyPrint's version;
- what every report of the build shares (:func:`shared_digest`): the template variables
  common to all reports (tier, region name, disclosure rules, missing tables, the
  dashboard's folder), the change register, the sectors' names and order, every
  measure's wording and months, the programmes;
- the report's own context as built for the template (:func:`context_fingerprint`): its
  region or ICB series with their charts (styled), impact figures, recorded changes and
  sub-level rows, so everything the aggregate tables give it;
- for an internal ICB report, a digest computed in DuckDB over exactly the rows its
  organisations are read from (:func:`organisation_digests`): the organisation SPC rows
  of the ICB's charts (every measure) with each organisation's register name, their
  recorded changes (as the charts and as the reports read them) and their impact rows.

A report whose input fingerprint is the one the previous snapshot recorded for it, and
whose every file (HTML, organisations page, PDF) can be linked from that snapshot, is
carried; anything else is rendered as before and still carried when its rendered HTML is
the previous one's (:func:`pipelines.report.build.report_fingerprint`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from pipelines.dashboard.build import STATIC as DASHBOARD_STATIC
from pipelines.dashboard.build import TEMPLATES as DASHBOARD_TEMPLATES
from pipelines.dashboard.build import SiteData, organisation_data_digests
from pipelines.dashboard.carry import (
    CODE_DIGEST as DASHBOARD_CODE_DIGEST,
)
from pipelines.dashboard.carry import (
    PageCarry,
    context_digest,
    files_digest,
    measure_digest,
    render_digest,
)
from pipelines.dashboard.sources import columns_of
from pipelines.report.reads import ProgrammeData

HERE = Path(__file__).parent
#: Modules outside the report and dashboard packages whose code shapes a report's bytes.
REPORT_MODULES = (
    HERE.parent / "spc" / "constants.py",
    HERE.parent / "publish" / "disclosure.py",
)
#: The report package's and the dashboard's code as this process loaded it (taken at
#: import, as :data:`pipelines.dashboard.carry.CODE_DIGEST`).
CODE_DIGEST = context_digest(
    DASHBOARD_CODE_DIGEST, files_digest([*sorted(HERE.glob("*.py")), *REPORT_MODULES])
)


def pdf_renderer(pdf: bool) -> str:
    """What makes the report's PDF: ``none``, or WeasyPrint and its version."""
    return f"weasyprint {metadata.version('weasyprint')}" if pdf else "none"


def shared_digest(
    site: SiteData,
    data: ProgrammeData,
    common: dict[str, Any],
    pdf: bool,
    templates: Path,
    static: Path,
) -> str:
    """The part of every report's input fingerprint that all reports of one build share:
    how they are written (code, the reports' ``templates`` and ``static`` files and the
    dashboard's, libraries, PDF renderer) and the site-wide inputs (``common``: the
    template variables all reports get)."""
    how = render_digest(templates, static, DASHBOARD_STATIC, DASHBOARD_TEMPLATES, code=CODE_DIGEST)
    return context_digest(
        how,
        pdf_renderer(pdf),
        common,
        data.changes,
        data.missing,
        site.tier,
        site.levels,
        site.programmes,
        site.sector_names,
        site.sector_order,
        sorted((code, measure_digest(m)) for code, m in site.measures.items()),
    )


def context_fingerprint(ctx: dict[str, Any]) -> str | None:
    """The digest of one report's context as built for the template (aggregate levels,
    before its organisations are read); None if its text is not reproducible in another
    process (an object printed with its address), so that report is never carried on
    its inputs."""
    text = repr(sorted((repr(key), value) for key, value in ctx.items()))
    if " object at 0x" in text:
        return None
    return context_digest(text)


def organisation_digests(
    con: duckdb.DuckDBPyConnection, site: SiteData, data: ProgrammeData
) -> dict[str, str]:
    """The digest of the rows an internal ICB report's organisations are read from, by ICB
    code, computed for every ICB at once in DuckDB (no chart is loaded): the organisation
    pages' data digests of every measure (SPC rows as the charts read them, register
    names, recorded changes: :func:`organisation_page_digests`) with the ICB's impact rows
    and the recorded changes as :func:`pipelines.report.reads.read_programme_data` reads
    them (this tier's or no tier's)."""
    extra: dict[str, str] = {}
    if data.impact_table is not None:
        extra["impact"] = data.impact_table
    table = data.series_change_table
    if table is not None:
        # The tier is "internal" or "public" (load_site): no quoting needed.
        tiered = "tier" in columns_of(con, table)
        where = f"tier is null or tier = '{site.tier}'" if tiered else "true"
        extra["series_change"] = f"(select * from {table} where {where})"
    pages = organisation_data_digests(con, site, extra)
    by_icb: dict[str, list[tuple[str, str]]] = {}
    for (code, icb), digest in pages.items():
        if icb is not None:
            by_icb.setdefault(icb, []).append((code, digest))
    return {icb: context_digest(sorted(digests)) for icb, digests in by_icb.items()}


@dataclass
class ReportCarry:
    """The previous snapshot's reports of one tier, for carrying unchanged ones.

    ``fingerprints``: each report's rendered-HTML fingerprint by stem; ``carry(name,
    target)`` links a file of its reports folder to ``target`` and says whether it could
    (:meth:`pipelines.publish.snapshot.PreviousSnapshot.carry`); ``inputs``: the reports
    whose input fingerprint it recorded (a folder of the older format has none: each
    report is then rendered and compared by its HTML, as before)."""

    fingerprints: dict[str, str]
    carry: Any  # Callable[[str, Path], bool]
    inputs: PageCarry = field(default_factory=PageCarry)

    def take(self, stem: str, inputs: str, out_dir: Path) -> dict | None:
        """Link every file of report ``stem`` from the previous folder into ``out_dir`` if
        it recorded the same ``inputs`` fingerprint for it; its record (``fingerprint``,
        ``inputs``, ``files``), or None (render it; nothing stays linked)."""
        record = self.inputs.previous.get(f"{stem}.html", {}).get("entry")
        if not isinstance(record, dict):
            return None
        files = [f for f in record["files"] if f != f"{stem}.html"]
        return self.inputs.take(f"{stem}.html", files, inputs, out_dir)


def read_previous(text: str, carry: Any) -> ReportCarry | None:
    """The :class:`ReportCarry` of a published ``report-inputs.json``'s ``text``: by stem,
    either the rendered-HTML fingerprint alone (the older format) or a record with
    ``fingerprint``, and when the inputs were fingerprinted ``inputs`` and ``files`` (the
    report's file names). None if it is not such a file: nothing is carried."""
    try:
        found = json.loads(text)
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    fingerprints: dict[str, str] = {}
    records: dict[str, dict] = {}
    for stem, value in found.items():
        if isinstance(value, str):
            fingerprints[str(stem)] = value
            continue
        if not isinstance(value, dict) or not isinstance(value.get("fingerprint"), str):
            continue
        fingerprints[str(stem)] = value["fingerprint"]
        files = value.get("files")
        if (
            isinstance(value.get("inputs"), str)
            and isinstance(files, list)
            and set(files) <= {f"{stem}.html", f"{stem}-organisations.html", f"{stem}.pdf"}
        ):
            records[f"{stem}.html"] = {"fingerprint": value["inputs"], "entry": value}
    return ReportCarry(fingerprints, carry, PageCarry(previous=records, carry=carry))
