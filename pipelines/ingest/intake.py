"""What every source's intake shares once a file has been judged: its row in
``raw.submission_log``.

Measure returns (:mod:`pipelines.ingest.measure_returns`) and survey exports
(:mod:`pipelines.surveys.ingest`) log their files through :func:`log_submissions`, so a
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
from collections.abc import Sequence

import duckdb
import polars as pl

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
    con.register("incoming_submission_log", frame.to_arrow())
    try:
        con.execute("insert into raw.submission_log by name select * from incoming_submission_log")
    finally:
        con.unregister("incoming_submission_log")
    return ids
