"""Jobs, the landing sensor and the nightly schedule: how runs start without a person."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.defs.partitions import range_tags
from pipelines.ingest.files import content_digest, landed_files
from pipelines.ingest.measure_returns import periods_in_file
from pipelines.months import add_months
from pipelines.settings import Settings, load_settings
from pipelines.surveys.ingest import landed_exports
from pipelines.surveys.store import SURVEY_LAYOUT_PREFIX
from pipelines.warehouse import working_connection

# Runs carrying this tag run one at a time (config/dagster.yaml's run queue).
WRITES_WORKING_FILE_TAG = {"safety_observatory/writes_working_file": "true"}

full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    tags=WRITES_WORKING_FILE_TAG,
    description=(
        "Ingest new files, rebuild and test the warehouse for the run's months, publish if "
        "every check passed. Launch it over a range of months for a backfill."
    ),
)

# A tick waits this long at most for a run to release the working file, then tries again
# next tick: a sensor must never hold up the daemon or fail on DuckDB's single writer.
SENSOR_LOCK_TIMEOUT_S = 3.0
BUSY = "a run is writing the working file; next tick"


@dataclass
class _Logged:
    """What ``raw.submission_log`` says ingest has already judged in one landing folder,
    with the same keys ingest uses, so the sensor and ingest agree on what is new."""

    at_path: set[tuple[str, str]] = field(default_factory=set)  # (source_path, sha256)
    loaded: set[str] = field(default_factory=set)  # digests a re-drop would duplicate

    def knows(self, rel: str, digest: str) -> bool:
        return (rel, digest) in self.at_path or bool(digest and digest in self.loaded)


@dataclass(frozen=True)
class _Folder:
    prefix: str  # how the folder's files are named in run keys and logs
    root: Path
    files: list[Path]
    measure_returns: bool


def _watched(settings: Settings) -> list[_Folder]:
    """The landing folders and the files in them that ingest would judge."""
    folders = []
    if settings.landing_dir.exists():
        files = landed_files(settings.landing_dir, settle_seconds=settings.settle_seconds)
        folders.append(_Folder("", settings.landing_dir, files, True))
    surveys = settings.survey_landing_dir
    if surveys is not None and surveys.exists():
        exports = landed_exports(surveys, settle_seconds=settings.settle_seconds)
        folders.append(_Folder("surveys/", surveys, exports, False))
    return folders


def _logged(working_db: Path, paths: list[str]) -> tuple[_Logged, _Logged]:
    """(measure-return view, survey view) of the submission log, for the paths in landing.

    Mirrors ingest: measure ingest matches a path against every row and a re-drop against
    every loaded file; survey ingest only against survey rows. Takes the writer lock for a
    few seconds at most (raises TimeoutError when a run holds it) and never creates the file.
    """
    measure, survey = _Logged(), _Logged()
    if not working_db.exists():
        return measure, survey
    with working_connection(
        working_db, read_only=True, lock_timeout_s=SENSOR_LOCK_TIMEOUT_S
    ) as con:
        try:
            rows = con.execute(
                """
                select coalesce(layout, '') like ? as is_survey, source_path, sha256,
                       status = 'loaded' as loaded
                from raw.submission_log
                -- a semi-join, not list_contains: landing may hold tens of thousands
                where source_path in (select unnest(?::varchar[])) or status = 'loaded'
                """,
                [f"{SURVEY_LAYOUT_PREFIX}%", paths],
            ).fetchall()
        except duckdb.CatalogException:  # nothing ingested yet
            return measure, survey
    wanted = set(paths)
    for is_survey, source_path, sha256, loaded in rows:
        views = (measure, survey) if is_survey else (measure,)
        for view in views:
            if source_path in wanted:
                view.at_path.add((source_path, sha256))
            if loaded:
                view.loaded.add(sha256)
    return measure, survey


def _cursor_marker(cursor: str | None) -> str | None:
    """The run key last requested, from the cursor; anything else (an older, larger cursor
    format) is dropped."""
    try:
        value = json.loads(cursor) if cursor else None
    except ValueError:
        return None
    return value.get("requested") if isinstance(value, dict) else None


def months_to_request(claimed: set[date], catalogue_start: date, today: date) -> set[date]:
    """The months a run may be asked for: those the files carry inside the partitioned
    window (catalogue start to the current month). Rows for 1900-01 or 2099-12 are
    quarantined by ingest; asking for their partitions would fail the launch, before
    ingest, and take every other file of the batch with it."""
    current = today.replace(day=1)
    return {m.replace(day=1) for m in claimed if catalogue_start <= m.replace(day=1) <= current}


@dg.sensor(
    job=full_pipeline,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a run for the months that new or corrected files in landing carry.",
)
def landing_sensor(context: dg.SensorEvaluationContext):
    """Keyed on content: a corrected file under an old name is new, an identical re-drop
    under any name is not.

    What has been seen lives in the working file (``raw.submission_log``: path, SHA-256,
    status), not in the cursor, so files loaded by ``make demo``, the CLI or any run are known
    to the sensor, and the sensor's state cannot drift from ingest's. The cursor holds only
    the key of the run last requested, so a tick before that run has ingested does not ask
    again.
    """
    settings = load_settings()
    folders = _watched(settings)
    paths = sorted(
        {f.relative_to(folder.root).as_posix() for folder in folders for f in folder.files}
    )
    try:
        measure_log, survey_log = _logged(settings.working_db, paths)
    except TimeoutError:
        return dg.SkipReason(BUSY)
    except duckdb.Error as error:  # e.g. a writer that did not take the lock
        return dg.SkipReason(f"cannot read the working file ({type(error).__name__}); next tick")
    new: list[tuple[str, str, set[date]]] = []
    for folder in folders:
        log = measure_log if folder.measure_returns else survey_log
        for path in folder.files:
            rel = path.relative_to(folder.root).as_posix()
            try:
                digest = content_digest(path, folder.root, settings.max_file_bytes)
            except FileNotFoundError:  # archived by a run while we looked
                continue
            except OSError as error:  # not readable now (permissions): not new until it is
                context.log.warning(f"cannot read {folder.prefix}{rel}: {error.strerror}")
                continue
            if log.knows(rel, digest):
                continue
            # Survey exports carry no reporting month: the run covers the latest month.
            months = periods_in_file(path, settings) if folder.measure_returns else set()
            new.append((folder.prefix + rel, digest, months))
    if not new:
        context.update_cursor(None)
        return dg.SkipReason("no new or changed files in landing")
    run_key = hashlib.sha256("|".join(sorted(f"{r}:{d}" for r, d, _ in new)).encode()).hexdigest()
    if run_key == _cursor_marker(context.cursor):
        return dg.SkipReason(
            f"no new or changed files since the last request: {len(new)} files wait for "
            f"run key {run_key[:12]}"
        )
    context.update_cursor(json.dumps({"requested": run_key}))
    claimed = set().union(*(p for _, _, p in new))
    months = months_to_request(claimed, settings.catalogue_start, date.today())
    if claimed - months:
        context.log.info(
            f"{len(claimed - months)} months the files claim are outside the catalogue "
            f"window {settings.catalogue_start:%Y-%m}..{date.today():%Y-%m}; ingest "
            "quarantines their rows, the run does not ask for them"
        )
    if not months:  # surveys, unreadable files or no month in the window: still ingest them
        months = {max(add_months(date.today().replace(day=1), -1), settings.catalogue_start)}
    context.log.info(f"{len(new)} new files covering {min(months)}..{max(months)}")
    return dg.RunRequest(run_key=run_key, tags=range_tags(min(months), max(months)))


_settings = load_settings()


@dg.schedule(
    job=full_pipeline,
    cron_schedule=_settings.nightly_cron,
    execution_timezone=_settings.timezone,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Nightly: refresh the open window (late returns) and republish.",
)
def nightly_refresh(context: dg.ScheduleEvaluationContext):
    """The current month and the ``refresh_months`` before it: late and corrected returns
    for recent months are normal, older months change only by backfill."""
    settings = load_settings()
    current = context.scheduled_execution_time.date().replace(day=1)
    first = add_months(current, -settings.refresh_months)
    return dg.RunRequest(run_key=None, tags=range_tags(first, current))


defs = dg.Definitions(
    jobs=[full_pipeline],
    sensors=[landing_sensor],
    schedules=[nightly_refresh],
    executor=dg.in_process_executor,
)
