"""Load survey exports into the raw layer, one DuckDB transaction per file.

The same guarantees as measure returns (:mod:`pipelines.ingest.measure_returns`): every
file seen is in ``raw.submission_log`` (``layout`` ``survey_<tool>``), either rejected whole
with a reason or with every response loaded or quarantined, so
``rows_read = rows_loaded + rows_quarantined`` counts responses. A crash mid-file rolls the
whole file back; an identical file dropped again is logged as a duplicate and changes
nothing. Names, e-mail addresses, IP addresses and free-text answers are dropped while the
file is read (:mod:`pipelines.surveys.responses`) and never stored.

Before anything else an export passes the same file rules as a measure return
(:mod:`pipelines.ingest.files`: unsafe names, links out of the landing folder, oversized
files, zip bombs), refused with the same rule names and reasons.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.ingest.files import landed_files
from pipelines.ingest.intake import (
    Judged,
    known_organisations,
    logged_name,
    pending_landed,
    submitter_from_name,
    take_in,
)
from pipelines.ingest.rules import Rule
from pipelines.settings import Settings
from pipelines.surveys.config import survey_landing_dir
from pipelines.surveys.grid import read_grid
from pipelines.surveys.instrument import load_instruments
from pipelines.surveys.layouts import detect_layout
from pipelines.surveys.responses import type_export
from pipelines.surveys.rules import apply_survey_rules, survey_row_rules
from pipelines.surveys.store import (
    SURVEY_LAYOUT_PREFIX,
    ensure_survey_tables,
    replace_instruments,
    upsert_waves,
    write_responses,
)
from pipelines.surveys.waves import (
    WAVE_FILE_NAMES,
    Wave,
    WaveContractError,
    discover_waves,
    wave_for,
)


@dataclass(frozen=True)
class SurveyOutcome:
    submission_id: int
    file_name: str
    status: str  # loaded | rejected | duplicate
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    wave_id: str | None = None
    layout: str | None = None
    reason: str | None = None


def survey_organisations(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Known organisations with name and ICB (local register overrides ODS), so an export
    may name a respondent's organisation by ODS code or by registered name: the intake's
    one organisation lookup (:func:`pipelines.ingest.intake.known_organisations`)."""
    return known_organisations(con)


def landed_exports(landing_dir: Path, *, settle_seconds: float = 0) -> list[Path]:
    """The files under the survey landing folder that are exports to judge (every file but
    the wave contracts and files still being written), in path order; links included, so a
    link out is logged as refused."""
    return landed_files(landing_dir, ignore=WAVE_FILE_NAMES, settle_seconds=settle_seconds)


def pending_survey_files(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    max_file_bytes: int,
    *,
    settle_seconds: float = 0,
) -> list[tuple[Path, str]]:
    """Exports under ``landing_dir`` not yet processed at this path with this content, in
    path order (a later export of the same response supersedes an earlier one): the
    intake's pending scan (:func:`pipelines.ingest.intake.pending_landed`)."""
    return pending_landed(
        con,
        landing_dir,
        layout_prefix=SURVEY_LAYOUT_PREFIX,
        max_file_bytes=max_file_bytes,
        settle_seconds=settle_seconds,
        ignore=WAVE_FILE_NAMES,
    )


def _judge(
    path: Path,
    data: bytes,
    wave: Wave | WaveContractError | None,
    organisations: pl.DataFrame,
    rules: list[Rule],
    settings: Settings,
    now: datetime,
) -> Judged:
    """One export's bytes judged: its wave contract, its submitter, its responses typed
    (:func:`type_export`) and checked by the row rules; raises FileRejected for anything
    wrong with the file. Names in the rules' messages are the file's own (``path.name``)."""
    name = path.name
    if wave is None:
        raise FileRejected(name, "no_wave_contract", "no wave.yml in its folder or above it")
    if isinstance(wave, WaveContractError):
        raise FileRejected(name, "invalid_wave_contract", str(wave))
    submitter = submitter_from_name(name)
    if submitter is None or submitter not in set(organisations["org_code"].to_list()):
        raise FileRejected(
            name,
            "unknown_submitter",
            f"file name must start with the submitting organisation's ODS code; "
            f"'{submitter}' is not in the organisation register",
        )
    grid = read_grid(data, name, max_unzipped_bytes=settings.max_xlsx_inflated_bytes)
    layout = detect_layout(grid, name)
    typed = type_export(
        grid, layout, file_name=name, wave=wave, submitter=submitter, organisations=organisations
    )
    if typed.frame.height == 0:
        raise FileRejected(name, "empty_file", "the export has header rows but no responses")
    good, bad = apply_survey_rules(typed.frame, rules)
    logged = logged_name(name)

    def write(con: duckdb.DuckDBPyConnection, submission_id: int, sha256: str) -> None:
        write_responses(
            con,
            submission_id=submission_id,
            good=good,
            bad=bad,
            question_ids=typed.question_ids,
            layout=typed.layout,
            source_file=logged,
            sha256=sha256,
            now=now,
        )

    return Judged(typed.layout, good.height + bad.height, good.height, bad.height, write)


def ingest_surveys(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    landing_dir: Path | None = None,
    run_id: str | None = None,
    files: Iterable[tuple[Path, str]] | None = None,
) -> list[SurveyOutcome]:
    """Ingest every pending export under the survey landing folder (or the given files)."""
    landing = landing_dir or survey_landing_dir()
    if landing is None and files is not None:
        raise ValueError("survey files are judged against their landing folder: give landing_dir")
    ensure_survey_tables(con)
    instruments = load_instruments()
    present = landing is not None and landing.exists()
    waves = discover_waves(landing, instruments) if landing is not None and present else {}
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute("begin")
    try:
        replace_instruments(con, instruments, now)
        upsert_waves(con, [w for w in waves.values() if isinstance(w, Wave)], now)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    organisations = survey_organisations(con)
    rules = survey_row_rules()
    # Only loaded files count as "seen before": a file refused for a reason outside it (no
    # wave contract yet, organisation not yet registered) may be dropped again once fixed.
    known = dict(
        con.execute(
            "select sha256, min(submission_id) from raw.submission_log"
            " where status = 'loaded' and layout like ? group by 1",
            [f"{SURVEY_LAYOUT_PREFIX}%"],
        ).fetchall()
    )
    if files is not None:
        todo = list(files)
    elif landing is not None and present:
        todo = pending_survey_files(
            con, landing, settings.max_file_bytes, settle_seconds=settings.settle_seconds
        )
    else:
        todo = []
    if landing is None:  # no survey landing folder and no files: nothing to ingest
        return []
    return [
        _ingest_one(
            con,
            path,
            source_path,
            landing,
            wave_for(path, landing, waves),
            organisations,
            rules,
            settings=settings,
            known=known,
            now=now,
            run_id=run_id,
        )
        for path, source_path in todo
    ]


def _ingest_one(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    source_path: str,
    landing: Path,
    wave: Wave | WaveContractError | None,
    organisations: pl.DataFrame,
    rules: list[Rule],
    *,
    settings: Settings,
    known: dict[str, int],
    now: datetime,
    run_id: str | None,
) -> SurveyOutcome:
    """One export through the intake every source shares (:func:`take_in`: file rules,
    duplicate check, one transaction for its log row and its rows), judged by
    :func:`_judge`; the outcome names the export's wave."""
    outcome = take_in(
        con,
        path,
        source_path,
        landing,
        layout_prefix=SURVEY_LAYOUT_PREFIX,
        read=lambda data, _name: _judge(path, data, wave, organisations, rules, settings, now),
        max_file_bytes=settings.max_file_bytes,
        known=known,
        now=now,
        run_id=run_id,
        unreadable_rule="unreadable_export",
        unreadable_what="export",
    )
    return SurveyOutcome(
        outcome.submission_id,
        outcome.file_name,
        outcome.status,
        outcome.rows_read,
        outcome.rows_loaded,
        outcome.rows_quarantined,
        wave.wave_id if isinstance(wave, Wave) else None,
        outcome.layout,
        outcome.reason,
    )
