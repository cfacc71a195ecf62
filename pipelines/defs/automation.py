"""Jobs, the landing sensor and the nightly schedule: how runs start without a person."""

import hashlib
import json
from datetime import date

import dagster as dg

from pipelines.defs.partitions import add_months, range_tags
from pipelines.ingest.files import content_digest
from pipelines.ingest.measure_returns import periods_in_file
from pipelines.settings import load_settings

full_pipeline = dg.define_asset_job(
    "full_pipeline",
    selection=dg.AssetSelection.all(),
    description=(
        "Ingest new files, rebuild and test the warehouse for the run's months, publish if "
        "every check passed. Launch it over a range of months for a backfill."
    ),
)

# Enough to recognise an identical re-drop of any recent file; ingest catches older ones.
_CURSOR_DIGESTS = 20_000


def _landing_files(landing):
    candidates = (p for p in landing.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(p for p in candidates if not p.name.startswith("."))


@dg.sensor(
    job=full_pipeline,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Starts a run for the months that new or corrected files in landing carry.",
)
def landing_sensor(context: dg.SensorEvaluationContext):
    """Keyed on content: a corrected file under an old name is new, an identical re-drop
    under any name is not. The cursor (kept in DAGSTER_HOME) survives restarts."""
    settings = load_settings()
    cursor = json.loads(context.cursor) if context.cursor else {"files": {}, "digests": []}
    files: dict[str, str] = cursor["files"]
    digests: list[str] = cursor["digests"]
    known = set(digests)
    new: list[tuple[str, str, set[date]]] = []
    present: dict[str, str] = {}
    watched = [("", settings.landing_dir, True), ("surveys/", settings.survey_landing_dir, False)]
    for prefix, folder, measure_returns in watched:
        for path in _landing_files(folder) if folder and folder.exists() else []:
            rel = prefix + path.relative_to(folder).as_posix()
            try:
                digest = content_digest(path, folder, settings.max_file_bytes)
            except FileNotFoundError:  # archived by a run while we looked
                continue
            present[rel] = digest
            if files.get(rel) == digest or (digest and digest in known):
                continue
            # Survey exports carry no reporting month: the run covers the latest month.
            months = periods_in_file(path, settings) if measure_returns else set()
            new.append((rel, digest, months))
    cursor = {
        "files": present,
        "digests": [*digests, *(d for _, d, _ in new if d and d not in known)][-_CURSOR_DIGESTS:],
    }
    context.update_cursor(json.dumps(cursor))
    if not new:
        return dg.SkipReason("no new or changed files in landing")
    months = set().union(*(p for _, _, p in new))
    if not months:  # surveys or unreadable files only: a run still ingests or logs them
        months = {add_months(date.today().replace(day=1), -1)}
    run_key = hashlib.sha256("|".join(sorted(f"{r}:{d}" for r, d, _ in new)).encode()).hexdigest()
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
