"""Incident assets: LFPSE-style extracts and local risk-management exports in the incident
landing folder -> raw incident tables (docs/incidents.md).

Files are also logged in ``raw.submission_log`` (layout ``incidents_*``); that table's asset
belongs to measure-return ingest, so it is written here but not declared. dbt's ``raw``
sources name the keys below, which links the incident models to this asset.
"""

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from pipelines.defs.automation import (
    BUSY,
    SENSOR_LOCK_TIMEOUT_S,
    _cursor_marker,
    months_to_request,
)
from pipelines.defs.ingest import REGISTER_KEYS
from pipelines.defs.intake import IntakeSource, intake_asset
from pipelines.defs.partitions import range_tags
from pipelines.incidents.ingest import (
    incident_reconciliation_problems,
    ingest_incidents,
    months_in_extract,
)
from pipelines.incidents.kh03 import KH03_LAYOUT, ingest_kh03, months_in_kh03
from pipelines.incidents.store import INCIDENT_LAYOUT_PREFIX
from pipelines.ingest.files import content_digest, landed_files
from pipelines.months import add_months
from pipelines.settings import Settings, load_settings
from pipelines.warehouse import working_connection

INCIDENT_KEYS = [
    dg.AssetKey(["raw", "incident_records"]),
    dg.AssetKey(["raw", "incident_extracts"]),
    dg.AssetKey(["raw", "incident_quarantine"]),
    # KH03 bed occupancy: the denominator of the incident rates (docs/incidents.md).
    dg.AssetKey(["raw", "kh03_beds"]),
    dg.AssetKey(["raw", "kh03_quarantine"]),
]


incident_extracts = intake_asset(
    IntakeSource(
        name="incident_extracts",
        keys=INCIDENT_KEYS,
        check_key=INCIDENT_KEYS[0],
        check_description="Every incident file: rows read = loaded + quarantined, and the "
        "raw tables hold exactly those rows.",
        description="Ingest new incident extracts (LFPSE-style or Datix-style, CSV or XLSX): "
        "only the contract's allow-listed columns are read, so personal data and free text "
        "are dropped at read; rows that pass the rules load to raw, the rest go to "
        "raw.incident_quarantine with reasons. KH03 bed occupancy files (the rates' occupied "
        "bed days) load to raw.kh03_beds the same way.",
        deps=REGISTER_KEYS,
        ingest=lambda con, settings, run_id: [
            *ingest_incidents(con, settings, run_id=run_id),
            *ingest_kh03(con, settings, run_id=run_id),
        ],
        reconcile=incident_reconciliation_problems,
        head=lambda settings: {
            "landing_dir": str(settings.incident_landing_dir),
            "kh03_landing_dir": str(settings.kh03_landing_dir),
        },
    )
)


def _known(working_db: Path, layout_prefix: str) -> tuple[set[tuple[str, str]], set[str]]:
    """What ingest has judged among files of ``layout_prefix``: (path, SHA-256) pairs, and
    the digests of loaded files (a re-drop under another name is a duplicate). Mirrors
    :func:`pipelines.ingest.intake.pending_landed`; raises TimeoutError while a run writes."""
    if not working_db.exists():
        return set(), set()
    with working_connection(
        working_db, read_only=True, lock_timeout_s=SENSOR_LOCK_TIMEOUT_S
    ) as con:
        try:
            rows = con.execute(
                "select source_path, sha256, status = 'loaded' from raw.submission_log"
                " where layout like ?",
                [f"{layout_prefix}%"],
            ).fetchall()
        except duckdb.CatalogException:  # nothing ingested yet
            return set(), set()
    return {(p, d) for p, d, _ in rows}, {d for _, d, loaded in rows if loaded}


def _incident_folders(settings: Settings) -> list[tuple[str, Path, str, Any]]:
    """(name prefix, folder, layout prefix, months reader) of the watched incident folders."""
    folders = [
        ("incidents/", settings.incident_landing_dir, INCIDENT_LAYOUT_PREFIX, months_in_extract),
        ("kh03/", settings.kh03_landing_dir, KH03_LAYOUT, months_in_kh03),
    ]
    return [
        (prefix, root, layout, reader)
        for prefix, root, layout, reader in folders
        if root is not None and root.exists()
    ]


@dg.sensor(
    job_name="full_pipeline",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a run for the months that new or corrected incident extracts or "
    "KH03 files carry (incident_landing_dir, kh03_landing_dir).",
)
def incident_landing_sensor(context: dg.SensorEvaluationContext):
    """The incident folders' landing sensor, keyed on content as the returns' one is
    (:func:`pipelines.defs.automation.landing_sensor`): what has been seen is what
    ``raw.submission_log`` says ingest judged (path and SHA-256, or an identical file
    loaded under any name); the cursor holds only the run key last requested. The run
    covers the months the new files hold (an extract's event months, a KH03 file's
    quarters), so a re-extract of an older quarter rebuilds that quarter."""
    settings = load_settings()
    new: list[tuple[str, str, set[date]]] = []
    for prefix, root, layout_prefix, months_in in _incident_folders(settings):
        try:
            at_path, loaded = _known(settings.working_db, layout_prefix)
        except TimeoutError:
            return dg.SkipReason(BUSY)
        except duckdb.Error as error:
            return dg.SkipReason(
                f"cannot read the working file ({type(error).__name__}); next tick"
            )
        for path in landed_files(root, settle_seconds=settings.settle_seconds):
            rel = path.relative_to(root).as_posix()
            try:
                digest = content_digest(path, root, settings.max_file_bytes)
            except OSError as error:
                context.log.warning(f"cannot read {prefix}{rel}: {error.strerror}")
                continue
            if (rel, digest) in at_path or (digest and digest in loaded):
                continue
            months = months_in(path, max_unzipped_bytes=settings.max_xlsx_inflated_bytes)
            new.append((prefix + rel, digest, months))
    if not new:
        context.update_cursor(None)
        return dg.SkipReason("no new or changed incident extracts or KH03 files")
    run_key = hashlib.sha256("|".join(sorted(f"{r}:{d}" for r, d, _ in new)).encode()).hexdigest()
    if run_key == _cursor_marker(context.cursor):
        return dg.SkipReason(f"{len(new)} incident files wait for run key {run_key[:12]}")
    context.update_cursor(json.dumps({"requested": run_key}))
    months = months_to_request(
        set().union(*(m for _, _, m in new)), settings.catalogue_start, date.today()
    )
    if not months:  # unreadable files or no month in the window: still ingest them
        months = {max(add_months(date.today().replace(day=1), -1), settings.catalogue_start)}
    context.log.info(f"{len(new)} new incident files covering {min(months)}..{max(months)}")
    return dg.RunRequest(run_key=run_key, tags=range_tags(min(months), max(months)))


defs = dg.Definitions(assets=[incident_extracts], sensors=[incident_landing_sensor])
