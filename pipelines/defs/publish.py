"""Publish: only a build audited in this very run reaches analysts.

Dagster's blocking checks stop downstream steps in the same run, but a later run that
selects only this asset would skip them; so publication itself re-reads this run's event
log and refuses unless every upstream asset was built and every check passed here. The
built snapshot is then scanned for disclosure problems before it is swapped in. Every
attempt, published or refused, is a row in ``audit.publication_log`` in the working file.
"""

import html
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from pipelines.dashboard import build_site
from pipelines.dashboard.carry import RENDERED_FROM_KEY, PageCarry
from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.automation import full_pipeline
from pipelines.defs.dbt import IMPACT_MART_KEYS, IMPACT_PUBLIC_KEYS, MART_KEYS, PUBLIC_KEYS
from pipelines.defs.ingest import RETURNS_KEYS
from pipelines.defs.partitions import ALLOW_SHRINK_TAG
from pipelines.defs.quality import quality_dir
from pipelines.defs.resources import WorkingFileRun
from pipelines.defs.spc import SPC_POINTS_KEY
from pipelines.defs.surveys import SURVEY_KEYS
from pipelines.publish.disclosure import (
    OrganisationFacts,
    rules_from_settings,
    scan_context,
    scan_csv_and_parquet,
    scan_pdfs,
    scan_public_tier,
    scan_site,
)
from pipelines.publish.docs import (
    DBT_DOCS_FILE,
    comment_tables,
    generate_dbt_docs,
    load_manifest_docs,
)
from pipelines.publish.pdfs import PENDING_KEY, VERDICTS_KEY, PdfOutcome, publish_pending_pdfs
from pipelines.publish.phases import PHASES_METADATA, Phases
from pipelines.publish.shrink import shrink_problems
from pipelines.publish.snapshot import (
    MANIFEST_FILE,
    WAREHOUSE_FILE,
    PreviousSnapshot,
    PublicationRefused,
    publish,
)
from pipelines.report import build_reports
from pipelines.report.build import previous_reports, render_pdfs
from pipelines.settings import load_settings
from pipelines.warehouse import build_owner, open_duckdb, working_connection, writer_lock

AUDITED_KEYS = [
    *RETURNS_KEYS,
    *SURVEY_KEYS,
    *MART_KEYS,
    *PUBLIC_KEYS,
    SPC_POINTS_KEY,
    # fct_spc, pub_spc, their series' changes and programme impact, built by dbt after the
    # SPC step (docs/programme-impact.md section 4)
    *IMPACT_MART_KEYS,
    *IMPACT_PUBLIC_KEYS,
]
# Dimensions that name no organisation or person may go out with the public tier.
PUBLIC_DIMENSIONS = (
    "dim_icb",
    "dim_measure",
    "dim_period",
    "dim_programme",
    "dim_sector",
    "dim_survey_domain",
    "dim_survey_wave",
)

PUBLICATION_LOG_DDL = """
create schema if not exists audit;
create table if not exists audit.publication_log (
    attempted_at timestamp not null,
    run_id       varchar not null,
    status       varchar not null,  -- published | refused
    snapshot_id  varchar,
    reasons      varchar[],
    row_counts   json
);
"""


def audit_of_this_run(context: dg.AssetExecutionContext) -> tuple[list[dict], list[str]]:
    """(check results, problems) for this run: problems empty means safe to publish."""
    records = context.instance.get_records_for_run(
        run_id=context.run.run_id,
        of_type={
            dg.DagsterEventType.ASSET_MATERIALIZATION,
            dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        },
        limit=1_000_000,
    ).records
    built: set[dg.AssetKey] = set()
    checks: list[dict] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            built.add(event.asset_key)
        else:
            evaluation = event.event_specific_data
            checks.append(
                {
                    "asset": evaluation.asset_key.to_user_string(),
                    "check": evaluation.check_name,
                    "passed": evaluation.passed,
                    "severity": evaluation.severity.value,
                }
            )
    problems = [
        f"{k.to_user_string()} was not built in this run" for k in AUDITED_KEYS if k not in built
    ]
    problems += [
        f"check {c['check']} on {c['asset']} failed"
        for c in checks
        if not c["passed"] and c["severity"] == "ERROR"
    ]
    if not checks:
        problems.append("no quality checks ran in this run")
    return checks, problems


def build_changed_since_audit(working_db: Path, run_id: str) -> list[str]:
    """The second line behind the whole-run lock: this run claimed the working file's build
    when it started (:class:`WorkingFileRun`); if anyone else claimed it since (a run that
    bypassed the lock, dbt run by hand), what this run audited is not what would be
    published."""
    with working_connection(working_db, read_only=True) as con:
        owner = build_owner(con)
    if owner == run_id:
        return []
    return [
        f"the working file's build was changed by {owner or 'an unknown writer'} after this "
        f"run ({run_id}) started: its checks did not see what would be published"
    ]


def shrink_audit(snapshot: Path, current: Path, max_share: float) -> list[str]:
    """:func:`shrink_problems` for both tiers' warehouse files."""
    problems = []
    for tier in (Path(), Path("public")):
        old = current / tier / WAREHOUSE_FILE
        label = "public tier: " if tier.parts else ""
        found = shrink_problems(
            snapshot / tier / WAREHOUSE_FILE,
            old if old.exists() else None,
            max_share=max_share,
            organisation_level=not tier.parts,
        )
        problems += [label + p for p in found]
    return problems


def tier_tables() -> dict[str, dict[str, str]]:
    """Which working-file tables each tier publishes, under which name: the dbt models of
    each tier's schema, so every published table has a contract, descriptions and tests.
    The public tier has its own SPC tables (``pub_spc``, ``pub_series_change``) so that
    the public site and public users need nothing from the internal file."""
    internal = {key.path[-1]: f"marts.{key.path[-1]}" for key in [*MART_KEYS, *IMPACT_MART_KEYS]}
    public = {key.path[-1]: f"public.{key.path[-1]}" for key in [*PUBLIC_KEYS, *IMPACT_PUBLIC_KEYS]}
    public |= {name: f"marts.{name}" for name in PUBLIC_DIMENSIONS if name in internal}
    return {"internal": internal, "public": public}


def scanned_organisations(snapshot: Path) -> list[tuple[str, str | None]]:
    """Every provider's code and name from the snapshot's internal register (ICBs aside:
    they are what the public tier is reported by): what the public files must not name."""
    with open_duckdb(snapshot / WAREHOUSE_FILE, read_only=True) as con:
        return con.execute(
            "select org_code, org_name from dim_organisation"
            " where sector_code is distinct from 'icb'"
        ).fetchall()


def disclosure_audit(
    snapshot: Path,
    *,
    previous: PreviousSnapshot | None = None,
    verdicts: dict | None = None,
    phases: Phases | None = None,
) -> list[str]:
    """Every public-tier output, as written, must pass the disclosure scan: the tables, the
    exports and the public site. The scan counts each public cell's contributing
    organisations from the internal tier's organisation-level facts in the same snapshot
    (never from the public models' own figures), and looks for every provider's code and
    name (:func:`scanned_organisations`) in the site's pages and data files.

    Carried verdicts: a site or report file whose checksum is the one it had when it
    passed in the ``previous`` snapshot, under the same rules and register
    (:func:`scan_context`), is not read again; ``verdicts``, if given, is filled with this
    scan's (``context`` and ``passed``: snapshot name -> SHA-256) for the manifest.
    ``phases`` times each part (``audit / disclosure / <part>``)."""
    phases = phases or Phases()
    public = snapshot / "public"
    internal = snapshot / WAREHOUSE_FILE
    facts = OrganisationFacts(database=internal, schema="main")
    with (
        phases("audit / disclosure / tables"),
        open_duckdb(public / WAREHOUSE_FILE, read_only=True) as con,
    ):
        problems = scan_public_tier(con, facts=facts)
    with phases("audit / disclosure / exports"):
        problems += scan_csv_and_parquet(public, facts=facts)
    organisations = scanned_organisations(snapshot)
    context = scan_context(rules_from_settings(), organisations)
    before = (previous.manifest.get(VERDICTS_KEY) or {}) if previous else {}
    known = before.get("passed", {}) if before.get("context") == context else {}
    passed: dict[str, str] = {}
    # The public site, and the public board reports (HTML and PDF) as the site. Labels are
    # relative to public/; manifest names to the snapshot.
    for folder in ("site", "reports"):
        found: dict[str, str] = {}
        with phases(f"audit / disclosure / {folder}"):
            problems += scan_site(
                public / folder,
                organisations=organisations,
                facts=facts,
                passed_before={k.removeprefix("public/"): v for k, v in known.items()},
                passed=found,
            )
        passed |= {f"public/{label}": checksum for label, checksum in found.items()}
    if verdicts is not None:
        verdicts.update({"context": context, "passed": dict(sorted(passed.items()))})
    return [f"public tier: {p}" for p in problems]


def derived_outputs(run_id: str, *, defer_pdfs: bool = False, phases: Phases | None = None):
    """Board reports, dashboards and the quality report, built into the snapshot before its
    audit and checksums, so they are published (and verified) with the data they describe.
    With ``defer_pdfs`` the board reports' PDFs to render are not rendered here but named
    in the manifest (``pending_pdfs``) for :func:`publish_report_pdfs` after the swap.
    ``phases`` times each output (``extras / <output>``)."""
    phases = phases or Phases()

    def build(snapshot: Path) -> dict:
        # Board reports first, so each site's home page links to its tier's reports. Each
        # from its own tier's file: the public outputs never read the internal one.
        settings = load_settings()
        published_at = datetime.now(UTC)
        # A report whose inputs are the current snapshot's is carried from it, not rendered.
        previous = PreviousSnapshot.of(settings.published_dir)

        def carried_reports(prefix: str):
            if previous is None:
                return None
            return previous_reports(
                previous.folder / prefix,
                lambda name, target: previous.carry(f"{prefix}/{name}", target) is not None,
            )

        # Every table and column described (dbt yml, through the manifest) in both tiers'
        # files, and dbt's docs site beside the internal tier: before the sites, which
        # link to it (pipelines/publish/docs.py).
        with phases("extras / table comments"):
            docs = load_manifest_docs(settings)
            comments = {
                tier: comment_tables(folder / WAREHOUSE_FILE, docs)
                for tier, folder in (("internal", snapshot), ("public", snapshot / "public"))
            }
        with phases("extras / dbt docs"):
            generate_dbt_docs(settings, snapshot / DBT_DOCS_FILE)
        pending: list[Path] | None = [] if defer_pdfs else None
        reports = {}
        for tier, folder, prefix in (
            ("internal", snapshot, "reports"),
            ("public", snapshot / "public", "public/reports"),
        ):
            with phases(f"extras / board reports {tier}"):
                reports[tier] = build_reports(
                    folder / WAREHOUSE_FILE,
                    folder / "reports",
                    tier,
                    region_name=settings.region_name,
                    published_at=published_at,
                    run_id=run_id,
                    pdf=settings.board_report_pdf,
                    workers=settings.report_workers,
                    previous=carried_reports(prefix),
                    pending_pdfs=pending,
                )
        # Organisation pages whose inputs are the current snapshot's are carried from it
        # (pipelines/dashboard/carry.py); every page's fingerprint goes into the manifest.
        pages = carried_pages(previous, "site")
        with phases("extras / site internal"):
            internal_site = build_site(
                snapshot / WAREHOUSE_FILE, snapshot / "site", "internal", carry=pages
            )
        with phases("extras / site public"):
            public_site = build_site(
                snapshot / "public" / WAREHOUSE_FILE, snapshot / "public" / "site", "public"
            )
        sites = {"internal": internal_site, "public": public_site}
        with phases("extras / quality report"):
            quality = quality_report(quality_dir(run_id), snapshot / "data_docs")
        return {
            "dbt_docs": DBT_DOCS_FILE,
            "comments": comments,
            "dashboards": {t: p.relative_to(snapshot).as_posix() for t, p in sites.items()},
            "board_reports": {t: p.relative_to(snapshot).as_posix() for t, p in reports.items()},
            RENDERED_FROM_KEY: {f"site/{n}": e for n, e in sorted(pages.recorded.items())},
            "carried_pages": sorted(f"site/{n}" for n in pages.carried),
            "expectations": quality,
            PENDING_KEY: sorted(p.relative_to(snapshot).as_posix() for p in pending or []),
        }

    return build


def carried_pages(previous: PreviousSnapshot | None, folder: str) -> PageCarry:
    """What the site in ``folder`` of the snapshot may carry from ``previous``: the pages it
    recorded with their fingerprints (``rendered_from``, by name within the site) and a
    carry that links them with their checksums; nothing to carry without a previous
    snapshot or fingerprints in its manifest."""
    if previous is None:
        return PageCarry()
    recorded = previous.manifest.get(RENDERED_FROM_KEY)
    prefix = f"{folder}/"
    return PageCarry(
        previous={
            name.removeprefix(prefix): entry
            for name, entry in (recorded.items() if isinstance(recorded, dict) else ())
            if name.startswith(prefix)
        },
        carry=lambda name, target: previous.carry(prefix + name, target) is not None,
    )


def publish_report_pdfs(snapshot_dir: Path, *, workers: int = 1) -> PdfOutcome:
    """The board-report PDFs ``snapshot_dir`` left pending, rendered by ``workers``
    processes and published into it (:func:`publish_pending_pdfs`), each public one first
    passing the disclosure scan the pre-swap audit gives a PDF, against the same register."""

    def scan(files):
        found = scan_pdfs(files, scanned_organisations(snapshot_dir))
        return {name: [f"public tier: {p}" for p in problems] for name, problems in found.items()}

    return publish_pending_pdfs(
        snapshot_dir, render=lambda jobs: render_pdfs(jobs, workers), scan=scan
    )


def run_snapshot(published_dir: Path, run_id: str) -> Path | None:
    """The snapshot ``run_id`` published (its folder ends with the run id's first eight
    characters and its manifest names the run), or None."""
    for folder in sorted((published_dir / "snapshots").glob(f"*_{run_id[:8]}")):
        manifest = _manifest_of(folder)
        if manifest is not None and manifest.get("run_id") == run_id:
            return folder
    return None


def _manifest_of(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None


def quality_report(source: Path, target: Path) -> dict:
    """Copy this run's Data Docs and write ``summary.html``: GX's own index needs its CDN
    scripts to list anything, this page works offline."""
    results_file = source / "results.json"
    results = json.loads(results_file.read_text()) if results_file.exists() else []
    if (source / "data_docs").exists():
        shutil.copytree(source / "data_docs", target)
    target.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(
        "<tr class='{}'><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
            "pass" if r["success"] else "fail",
            html.escape(str(r["table"])),
            html.escape(str(r["expectation_type"])),
            html.escape(str(r.get("column") or "")),
            "passed" if r["success"] else "FAILED",
            html.escape(str(r.get("notes") or "")),
        )
        for r in results
    )
    passed = sum(r["success"] for r in results)
    (target / "summary.html").write_text(
        "<!doctype html><html lang='en'><meta charset='utf-8'><title>Quality checks</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .6em;"
        "border-bottom:1px solid #ddd;text-align:left}.fail{background:#fde8e8}</style>"
        f"<h1>Great Expectations results</h1><p>{passed} of {len(results)} expectations "
        "passed. Full Data Docs: <a href='index.html'>index.html</a> (needs internet for "
        "its styling).</p><table><tr><th>table</th><th>expectation</th><th>column</th>"
        f"<th>result</th><th>why it matters</th></tr>{rows}</table></html>\n"
    )
    return {"expectations": len(results), "passed": passed, "summary": "data_docs/summary.html"}


def failed_run_reasons(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Why a run stopped before publishing: its failed steps and failed blocking checks."""
    records = instance.get_records_for_run(
        run_id=run_id,
        of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.ASSET_CHECK_EVALUATION},
        limit=100_000,
    ).records
    reasons = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            reasons.append(f"step {event.step_key} failed: {step_failure_text(event)}")
        elif (
            not event.event_specific_data.passed
            and event.event_specific_data.severity.value == "ERROR"
        ):
            evaluation = event.event_specific_data
            failing = evaluation.metadata.get("dagster_dbt/failed_row_count")
            rows = f" ({failing.value} failing rows)" if failing is not None else ""
            reasons.append(
                f"check {evaluation.check_name} on {evaluation.asset_key.to_user_string()} "
                f"failed{rows}"
            )
    return reasons or ["the run failed before publishing"]


def step_failure_text(event: dg.DagsterEvent) -> str:
    """A step failure's whole message and the chain of causes, without tracebacks."""
    error = event.event_specific_data.error
    parts = []
    while error is not None:
        parts.append(error.message.strip())
        error = error.cause
    return " <- caused by: ".join(parts)


def log_refused_run(
    instance: dg.DagsterInstance, run_id: str, reasons: list[str] | None = None
) -> bool:
    """Record a failed run as a refused publication, unless the publish step already did.
    ``reasons`` default to the run's failed steps and checks (a run that died has none:
    whoever found it dead says why). Returns whether a row was written."""
    settings = load_settings()
    with working_connection(settings.working_db) as con:
        con.execute(PUBLICATION_LOG_DDL)
        logged = con.execute(
            "select count(*) from audit.publication_log where run_id = ?", [run_id]
        ).fetchone()[0]
    if logged:
        return False
    log_publication(
        settings.working_db,
        {
            "run_id": run_id,
            "status": "refused",
            "reasons": reasons or failed_run_reasons(instance, run_id),
        },
    )
    return True


@dg.run_failure_sensor(
    monitored_jobs=[full_pipeline],
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A run that failed before publishing is logged as a refused publication.",
)
def record_refused_publication(context: dg.RunFailureSensorContext) -> None:
    log_refused_run(context.instance, context.dagster_run.run_id)


def log_publication(working_db: Path, row: dict) -> None:
    with working_connection(working_db) as con:
        con.execute(PUBLICATION_LOG_DDL)
        con.execute(
            "insert into audit.publication_log values (?, ?, ?, ?, ?, ?)",
            [
                datetime.now(UTC).replace(tzinfo=None),
                row["run_id"],
                row["status"],
                row.get("snapshot_id"),
                row.get("reasons", []),
                json.dumps(row.get("row_counts", {})),
            ],
        )


@dg.asset(
    deps=AUDITED_KEYS,
    group_name="publish",
    kinds={"duckdb", "parquet", "csv"},
    pool=DUCKDB_WRITER_POOL,
    description="Promote the audited marts to a new published snapshot (atomic swap): "
    "internal tier at the top, public tier in public/.",
)
def published_snapshot(
    context: dg.AssetExecutionContext, working_file_run: WorkingFileRun
) -> dg.MaterializeResult:
    settings = load_settings()
    run_id = context.run.run_id
    checks, problems = audit_of_this_run(context)
    allow_shrink = context.run.tags.get(ALLOW_SHRINK_TAG, "").lower() == "true"
    allowed: list[str] = []
    previous = PreviousSnapshot.of(settings.published_dir)
    # Filled by the audit, which runs after the extras are built and before the manifest is
    # written from them: the same dict object reaches the manifest.
    verdicts: dict = {}
    phases = Phases()

    def audit(snapshot: Path) -> list[str]:
        with phases("audit / shrink"):
            shrunk = shrink_audit(snapshot, settings.published_current, settings.max_shrink_share)
        if allow_shrink:
            allowed.extend(f"allowed by --allow-shrink: {p}" for p in shrunk)
            shrunk = []
        with phases("audit / disclosure"):
            found = disclosure_audit(snapshot, previous=previous, verdicts=verdicts, phases=phases)
        return found + shrunk

    with writer_lock(settings.working_db):
        try:
            problems += build_changed_since_audit(settings.working_db, run_id)
            if problems:
                raise PublicationRefused(problems)
            publication = publish(
                settings.working_db,
                settings.published_dir,
                tier_tables(),
                run_id=run_id,
                check_results=checks,
                keep=settings.snapshots_to_keep,
                audit=audit,
                internal_csv=settings.internal_csv,
                phases=phases,
                extras=lambda snapshot: {
                    "deployment": {
                        "profile": settings.profile,
                        "region_name": settings.region_name,
                        "region_icbs": list(settings.region_icbs),
                    },
                    **derived_outputs(run_id, defer_pdfs=True, phases=phases)(snapshot),
                    VERDICTS_KEY: verdicts,
                },
            )
        except PublicationRefused as refused:
            log_publication(
                settings.working_db,
                {"run_id": run_id, "status": "refused", "reasons": refused.problems},
            )
            for problem in refused.problems[:20]:
                context.log.error(f"publication refused: {problem}")
            raise dg.Failure(
                description="Publication refused; the last good snapshot stays published: "
                + "; ".join(refused.problems[:5]),
                metadata={"problems": refused.problems[:100]},
            ) from None
        for line in phases.lines():
            context.log.info(f"publication phase {line}")
        log_publication(
            settings.working_db,
            {
                "run_id": run_id,
                "status": "published",
                "snapshot_id": publication.manifest["snapshot_id"],
                "reasons": allowed,
                "row_counts": publication.manifest["row_counts"],
            },
        )
    return dg.MaterializeResult(
        metadata={
            "snapshot": dg.MetadataValue.path(str(publication.snapshot_dir)),
            "current": dg.MetadataValue.path(str(settings.published_current)),
            "row_counts": publication.manifest["row_counts"],
            "checks_passed": sum(c["passed"] for c in checks),
            # Where the step's time went (pipelines/publish/phases.py); make bench prints it.
            PHASES_METADATA: dg.MetadataValue.json(publication.phases),
        }
    )


@dg.asset(
    deps=[published_snapshot],
    group_name="publish",
    kinds={"pdf"},
    description="Render the board reports' PDFs that the published snapshot names as "
    "pending, scan the public ones for disclosure and move each into the snapshot with its "
    "checksum in the manifest: after the swap, so the data is published without waiting "
    "for WeasyPrint.",
)
def board_report_pdfs(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    settings = load_settings()
    snapshot_dir = run_snapshot(settings.published_dir, context.run.run_id)
    if snapshot_dir is None:
        raise dg.Failure(description="this run published no snapshot: no PDFs to render")
    outcome = publish_report_pdfs(snapshot_dir, workers=settings.report_workers)
    for name, seconds in sorted(outcome.seconds.items()):
        context.log.info(f"board report PDF {name}: {seconds:.1f} s")
    if outcome.refused:
        for name, problems in outcome.refused.items():
            for problem in problems:
                context.log.error(f"board report PDF not published: {name}: {problem}")
        raise dg.Failure(
            description="Board report PDF(s) failed the disclosure scan and were not "
            "published (the data and the HTML reports are): "
            + "; ".join(f"{n}: {'; '.join(p)}" for n, p in sorted(outcome.refused.items()))[:2000],
            metadata={"refused": {n: p[:5] for n, p in outcome.refused.items()}},
        )
    return dg.MaterializeResult(
        metadata={
            "snapshot": dg.MetadataValue.path(str(snapshot_dir)),
            "pdfs_published": len(outcome.published),
            "render_s": round(sum(outcome.seconds.values()), 1),
        }
    )


defs = dg.Definitions(
    assets=[published_snapshot, board_report_pdfs], sensors=[record_refused_publication]
)
