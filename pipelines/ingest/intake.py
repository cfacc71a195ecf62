"""What every source's intake shares once a file has been judged: its row in
``raw.submission_log``.

Measure returns (:mod:`pipelines.ingest.measure_returns`), survey exports
(:mod:`pipelines.surveys.ingest`) and incident extracts (:mod:`pipelines.incidents.ingest`)
log their files through :func:`log_submissions`, so a
file's row says the same things the same way whichever landing folder it came from: the
file name in NFC (a name typed on a Mac, with decomposed accents, and the same name typed on
Windows are one name), its path in landing, submitter, SHA-256, size, when it landed, the
run, status, reason and counts.

The rows of a batch are written with one insert, their ids reserved from
``raw.submission_id_seq`` in one statement inside the caller's transaction: a row per file,
each with its own single-row insert, dominated ingest at national scale.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import duckdb
import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.ingest.files import Screening, content_digest, landed_files, screen, sha256_of
from pipelines.warehouse import insert_frame

T = TypeVar("T")
_SUBMITTER = re.compile(r"^([A-Za-z0-9]+)[_\-. ]")

# raw.submission_log's columns (pipelines/warehouse.py), typed as DuckDB stores them; a row
# leaves out what does not apply to it (null).
LOG_SCHEMA: dict[str, pl.DataType] = {
    "submission_id": pl.Int64(),
    "file_name": pl.String(),
    "source_path": pl.String(),
    "sha256": pl.String(),
    "size_bytes": pl.Int64(),
    "received_at": pl.Datetime("us"),
    "submitter_code": pl.String(),
    "layout": pl.String(),
    "period_min": pl.Date(),
    "period_max": pl.Date(),
    "rows_read": pl.Int64(),
    "rows_loaded": pl.Int64(),
    "rows_quarantined": pl.Int64(),
    "status": pl.String(),
    "reason": pl.String(),
    "duplicate_of": pl.Int64(),
    "run_id": pl.String(),
    "records_in_file": pl.Int64(),
    "records_without_rows": pl.Int64(),
    "warnings": pl.String(),
}
ZERO_COUNTS = {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0}


def logged_name(file_name: str) -> str:
    """The file name as logged: NFC (see the module docstring)."""
    return unicodedata.normalize("NFC", file_name)


def submitter_from_name(file_name: str) -> str | None:
    """Files are named ``<submitter ODS code>_<anything>``, e.g. ``RTD_2024-06.csv``."""
    match = _SUBMITTER.match(file_name)
    return match.group(1).upper() if match else None


def reserve_submission_ids(con: duckdb.DuckDBPyConnection, count: int) -> list[int]:
    """``count`` new submission ids, ascending, in one statement: files keep the order they
    are applied in (a later file supersedes an earlier one by its larger id)."""
    if count <= 0:
        return []
    rows = con.execute(
        "select nextval('raw.submission_id_seq') as id from range(?) order by id", [count]
    ).fetchall()
    return [row[0] for row in rows]


def log_submissions(
    con: duckdb.DuckDBPyConnection, rows: Sequence[dict], ids: Sequence[int] | None = None
) -> list[int]:
    """Write ``rows`` (column -> value, ``file_name`` as received) to ``raw.submission_log``
    with one insert, with ``ids`` (reserved by :func:`reserve_submission_ids`, when a row
    must name another's id) or ids reserved here in bulk, in order; returns the ids. Call it
    inside the batch's transaction, so a rolled-back batch leaves no row behind."""
    ids = list(ids) if ids is not None else reserve_submission_ids(con, len(rows))
    if len(ids) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(ids)} ids")
    if not ids:
        return ids
    unknown = {key for row in rows for key in row} - LOG_SCHEMA.keys()
    if unknown:
        raise ValueError(f"not columns of raw.submission_log: {sorted(unknown)}")
    frame = pl.DataFrame(
        [
            {**row, "submission_id": sid, "file_name": logged_name(row["file_name"])}
            for sid, row in zip(ids, rows, strict=True)
        ],
        schema=LOG_SCHEMA,
    )
    insert_frame(con, "raw.submission_log", frame)
    return ids


def known_organisations(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Known organisations with name and ICB (the local register overrides ODS): the one
    organisation lookup of every source that names organisations by ODS code or name."""
    return con.sql(
        """
        select
            coalesce(l.org_code, o.org_code) as org_code,
            coalesce(nullif(trim(l.org_name), ''), o.org_name) as org_name,
            coalesce(nullif(l.icb_code, ''), o.icb_code) as icb_code
        from (select distinct on (org_code) * from raw.ods_organisations) o
        full join (select distinct on (org_code) * from raw.local_organisations) l
            using (org_code)
        """
    ).pl()


def pending_landed(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    *,
    layout_prefix: str,
    max_file_bytes: int,
    settle_seconds: float = 0,
    ignore: Sequence[str] = (),
) -> list[tuple[Path, str]]:
    """Files under ``landing_dir`` not yet logged at this path with this content among the
    submissions whose layout starts with ``layout_prefix``, in path order (a later file
    supersedes an earlier one). Links are included, so a link out is logged as refused."""
    seen = set(
        con.execute(
            "select source_path, sha256 from raw.submission_log where layout like ?",
            [f"{layout_prefix}%"],
        ).fetchall()
    )
    seen_paths = {path for path, _ in seen}
    pending = []
    for path in landed_files(landing_dir, ignore=ignore, settle_seconds=settle_seconds):
        relative = path.relative_to(landing_dir).as_posix()
        if relative in seen_paths and (
            (relative, content_digest(path, landing_dir, max_file_bytes)) in seen
        ):
            continue
        pending.append((path, relative))
    return pending


@dataclass
class Judged:
    """A file read and judged by its source: its layout, its counts, whatever its log row
    adds (``log_extra``), and how to write its rows once its submission id is known
    (``write(con, submission_id, sha256)``, inside the intake's transaction)."""

    layout: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    write: Callable[[duckdb.DuckDBPyConnection, int, str], None]
    log_extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class IntakeOutcome:
    submission_id: int
    file_name: str
    status: str  # loaded | rejected | duplicate
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    layout: str | None = None
    reason: str | None = None


def take_in(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    source_path: str,
    landing: Path,
    *,
    read: Callable[[bytes, str], Judged],
    known: dict[str, int],
    **how: Any,
) -> IntakeOutcome:
    """One landed file through the intake, in one transaction: the shared file rules
    (:func:`pipelines.ingest.files.screen`, never opened if refused), the submitter from
    its name, hashed once, an identical loaded file logged as a duplicate, ``read(bytes,
    name)`` (raises :class:`FileRejected` for a file refused whole), then its log row and
    its rows, or nothing at all if anything fails. ``known`` maps the digests of loaded
    files of this source to their submission id and is updated. ``how``: the other
    keyword arguments of :func:`arrive` (``layout_prefix``, ``max_file_bytes``, ``now``,
    ``run_id``, ``unreadable_rule``, ``unreadable_what``)."""
    arrival = arrive(path, source_path, landing, read=read, known=known, **how)
    return record(con, [arrival], known)[0]


@dataclass
class Arrival(Generic[T]):
    """A landed file screened, hashed and read, not yet logged: ``base`` holds the log
    row's columns every status has, ``read`` what the source's reader made of it (None when
    it is refused whole, ``rejection``, or identical to a loaded file)."""

    base: dict
    read: T | None
    rejection: FileRejected | None

    @property
    def digest(self) -> str:
        return self.base["sha256"]


def arrive(
    path: Path,
    source_path: str,
    landing: Path,
    *,
    layout_prefix: str,
    read: Callable[[bytes, str], T],
    max_file_bytes: int,
    known: dict[str, int],
    now: datetime,
    run_id: str | None,
    unreadable_rule: str = "unreadable_file",
    unreadable_what: str = "file",
) -> Arrival[T]:
    """The first half of :func:`take_in`, writing nothing: the file rules, the hash, the
    duplicate check against ``known`` and ``read``. A source that judges many files
    together reads each with this and logs them with :func:`record`. A failure no file
    rule foresaw refuses the file as ``unreadable_rule``, naming only the exception's type
    and what was being read (``unreadable_what``)."""
    name = logged_name(path.name)
    screening: Screening = screen(path, landing, max_file_bytes)
    digest, result, rejection = _judge(
        path, name, screening, read, known, (unreadable_rule, unreadable_what)
    )
    base = {
        "file_name": name,
        "source_path": source_path,
        "submitter_code": submitter_from_name(name),
        "size_bytes": screening.size,
        "received_at": now,
        "run_id": run_id,
        "sha256": digest,
        "layout": layout_prefix,
    }
    return Arrival(base, result, rejection)


def record(
    con: duckdb.DuckDBPyConnection,
    arrivals: Sequence[Arrival[Judged]],
    known: dict[str, int],
    *,
    write_all: Callable[[duckdb.DuckDBPyConnection, list[int]], None] | None = None,
) -> list[IntakeOutcome]:
    """The second half of :func:`take_in` for one file or many, in ONE transaction: ids
    reserved in order, every log row with one insert, each loaded file's ``write``, then
    ``write_all(con, ids)`` (a source writing the rows of many files with one statement per
    table), or nothing at all if anything fails. ``known`` is updated once it commits. A
    file identical to an earlier one of ``arrivals`` must not have been read (its rows
    would be stored twice): the caller cuts its batch before it."""
    seen = dict(known)
    con.execute("begin")
    try:
        ids = reserve_submission_ids(con, len(arrivals))
        rows, outcomes = [], []
        for sid, arrival in zip(ids, arrivals, strict=True):
            earlier = seen.get(arrival.digest) if arrival.digest else None
            if earlier is not None and arrival.read is not None:
                raise ValueError(f"{arrival.base['file_name']} read although a duplicate")
            row, outcome = _entry(sid, arrival, earlier)
            rows.append(row)
            outcomes.append(outcome)
            if outcome.status == "loaded":
                seen[arrival.digest] = sid
        log_submissions(con, rows, ids=ids)
        for sid, arrival, outcome in zip(ids, arrivals, outcomes, strict=True):
            if outcome.status == "loaded" and arrival.read is not None:
                arrival.read.write(con, sid, arrival.digest)
        if write_all is not None:
            write_all(con, ids)
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    known.update(seen)
    return outcomes


def _judge(
    path: Path,
    name: str,
    screening: Screening,
    read: Callable[[bytes, str], T],
    known: dict[str, int],
    unreadable: tuple[str, str],
) -> tuple[str, T | None, FileRejected | None]:
    """(digest, the file judged, why it is refused). A file the shared rules refuse is
    never opened, not even to hash it (digest ""); a file identical to one loaded is not
    read again (a duplicate). Any failure of ``read`` refuses this file alone: a reader's
    bug on one file must not stop the run. ``unreadable``: (rule, what was being read)."""
    if screening.rejection is not None:
        return "", None, screening.rejection
    data = path.read_bytes()
    digest = sha256_of(data)
    if digest in known:
        return digest, None, None
    try:
        return digest, read(data, name), None
    except FileRejected as error:
        return digest, None, error
    except Exception as error:  # no file may stop the run
        # Only the exception's type is kept: its message may quote cells of the file.
        rule, what = unreadable
        return (
            digest,
            None,
            FileRejected(name, rule, f"{type(error).__name__} while reading the {what}"),
        )


def _entry(sid: int, arrival: Arrival[Judged], earlier: int | None) -> tuple[dict, IntakeOutcome]:
    """The file's submission-log row and outcome: a duplicate of submission ``earlier``,
    else refused, else loaded (``layout`` the source's prefix in ``base``, replaced by the
    judged layout when it loads)."""
    base, judged, rejection = arrival.base, arrival.read, arrival.rejection
    name = base["file_name"]
    if earlier is not None:
        reason = f"identical to submission {earlier}"
        row = {**base, **ZERO_COUNTS, "status": "duplicate"}
        row = {**row, "reason": reason, "duplicate_of": earlier}
        return row, IntakeOutcome(sid, name, "duplicate", 0, 0, 0, None, reason)
    if judged is None:
        reason = f"{rejection.rule}: {rejection.detail}" if rejection else "unreadable"
        row = {**base, **ZERO_COUNTS, "status": "rejected", "reason": reason}
        return row, IntakeOutcome(sid, name, "rejected", 0, 0, 0, None, reason)
    row = {
        **base,
        **judged.log_extra,
        "layout": judged.layout,
        "rows_read": judged.rows_read,
        "rows_loaded": judged.rows_loaded,
        "rows_quarantined": judged.rows_quarantined,
        "status": "loaded",
    }
    return row, IntakeOutcome(
        sid,
        name,
        "loaded",
        judged.rows_read,
        judged.rows_loaded,
        judged.rows_quarantined,
        judged.layout,
    )
