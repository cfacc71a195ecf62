"""Load incident extracts into the raw layer through the one intake.

Every file goes through :func:`pipelines.ingest.intake.take_in`, as measure returns and
survey exports do: the shared file rules (unsafe names, links out of landing, oversized
files, zip bombs), hashed once, the submitter from the file name checked against the one
organisation lookup, an identical file logged as a duplicate, one transaction per file, one
row in ``raw.submission_log`` (``layout`` ``incidents_<contract>``) with
``rows_read = rows_loaded + rows_quarantined`` counting the extract's rows. Personal data
and free text are dropped as the file is read (:mod:`pipelines.incidents.read`: only the
contract's allow-listed columns are read) and never stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.incidents.read import read_extract
from pipelines.incidents.rules import (
    event_day,
    incident_rules,
    safe_record,
    split_incidents,
    type_extract,
)
from pipelines.incidents.store import (
    INCIDENT_LAYOUT_PREFIX,
    StoredRevisions,
    ensure_incident_tables,
    write_extract,
)
from pipelines.ingest.errors import FileRejected
from pipelines.ingest.intake import (
    IntakeOutcome,
    Judged,
    known_organisations,
    pending_landed,
    submitter_from_name,
    take_in,
)
from pipelines.settings import Settings


def judge_extract(
    data: bytes,
    name: str,
    *,
    organisations: pl.DataFrame,
    revisions: StoredRevisions,
    today: date,
    now: datetime,
    max_unzipped_bytes: int,
    stored: list[pl.DataFrame] | None = None,
) -> Judged:
    """Read, type and check one extract; raises FileRejected for a file refused whole.
    ``stored``, if given, receives the records the extract's ``write`` stores (for
    :meth:`StoredRevisions.add` once its transaction has committed)."""
    submitter = submitter_from_name(name)
    known = set(organisations["org_code"].to_list())
    if submitter is None or submitter not in known:
        raise FileRejected(
            name,
            "unknown_submitter",
            f"file name must start with the submitting organisation's ODS code; "
            f"'{submitter}' is not in the organisation register",
        )
    icbs = set(organisations.filter(pl.col("org_code") == pl.col("icb_code"))["org_code"])
    extract = read_extract(data, name, max_unzipped_bytes=max_unzipped_bytes)
    contract = extract.contract
    typed = type_extract(extract.frame, contract, submitter=submitter)
    typed = typed.join(
        revisions.of(typed["org_code"].unique().to_list()), on="event_key", how="left"
    )
    rules = incident_rules(
        contract,
        submitter=submitter,
        submitter_is_icb=submitter in icbs,
        known_orgs=known,
        today=today,
    )
    good, bad = split_incidents(typed, rules, file_name=name)
    quarantined = bad.with_columns(safe_record(bad, contract))
    layout = contract.layout

    def write(con: duckdb.DuckDBPyConnection, sid: int, digest: str) -> None:
        write_extract(
            con,
            submission_id=sid,
            layout=layout,
            good=good,
            quarantined=quarantined,
            source_file=name,
            sha256=digest,
            now=now,
        )
        if stored is not None:
            stored.append(good.select("org_code", "event_key", "revision"))

    warnings = None
    if extract.columns_dropped:
        warnings = (
            f"{extract.columns_dropped} columns not in the {contract.name} allow-list "
            "dropped unread"
        )
    first: date | None = good["event_date"].min() if good.height else None  # type: ignore[assignment]
    last: date | None = good["event_date"].max() if good.height else None  # type: ignore[assignment]
    return Judged(
        layout=layout,
        rows_read=good.height + bad.height,
        rows_loaded=good.height,
        rows_quarantined=bad.height,
        write=write,
        log_extra={
            "warnings": warnings,
            "records_in_file": extract.frame.height,
            "period_min": first.replace(day=1) if first is not None else None,
            "period_max": last.replace(day=1) if last is not None else None,
        },
    )


def pending_incident_files(
    con: duckdb.DuckDBPyConnection, landing_dir: Path, settings: Settings
) -> list[tuple[Path, str]]:
    return pending_landed(
        con,
        landing_dir,
        layout_prefix=INCIDENT_LAYOUT_PREFIX,
        max_file_bytes=settings.max_file_bytes,
        settle_seconds=settings.settle_seconds,
    )


def ingest_incidents(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    landing_dir: Path | None = None,
    run_id: str | None = None,
    files: Iterable[tuple[Path, str]] | None = None,
    today: date | None = None,
) -> list[IntakeOutcome]:
    """Ingest every pending extract under the incident landing folder (or the given
    files), in path order: a later extract supersedes an earlier one."""
    landing = landing_dir or settings.incident_landing_dir
    ensure_incident_tables(con)
    if landing is None or not landing.exists():
        return []
    now = datetime.now(UTC).replace(tzinfo=None)
    today = today or date.today()
    organisations = known_organisations(con)
    known = dict(
        con.execute(
            "select sha256, min(submission_id) from raw.submission_log"
            " where status = 'loaded' and layout like ? group by 1",
            [f"{INCIDENT_LAYOUT_PREFIX}%"],
        ).fetchall()
    )
    todo = list(files) if files is not None else pending_incident_files(con, landing, settings)
    outcomes = []
    # Revisions stored so far, the files before each one included.
    revisions = StoredRevisions(con)
    for path, source_path in todo:
        stored: list[pl.DataFrame] = []

        def read(data: bytes, name: str, stored: list[pl.DataFrame] = stored) -> Judged:
            return judge_extract(
                data,
                name,
                organisations=organisations,
                revisions=revisions,
                today=today,
                now=now,
                max_unzipped_bytes=settings.max_xlsx_inflated_bytes,
                stored=stored,
            )

        outcome = take_in(
            con,
            path,
            source_path,
            landing,
            layout_prefix=INCIDENT_LAYOUT_PREFIX,
            read=read,
            max_file_bytes=settings.max_file_bytes,
            known=known,
            now=now,
            run_id=run_id,
            unreadable_rule="unreadable_extract",
        )
        if outcome.status == "loaded":
            for records in stored:
                revisions.add(records)
        outcomes.append(outcome)
    return outcomes


def months_in_extract(path: Path, *, max_unzipped_bytes: int) -> set[date]:
    """The event months an incident extract holds (what a run must rebuild), read as
    ingest reads it; empty when it cannot be read (ingest will say why)."""
    try:
        extract = read_extract(path.read_bytes(), path.name, max_unzipped_bytes=max_unzipped_bytes)
        days = extract.frame.select(event_day("event_date"))["event_date"].drop_nulls()
    except Exception:  # any file: the run still ingests it and logs the reason
        return set()
    return {day.replace(day=1) for day in days.unique().to_list()}


def incident_reconciliation_problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Incident and KH03 files whose logged counts differ from the rows in raw."""
    ensure_incident_tables(con)
    rows = con.execute(
        """
        with loaded as (
            select submission_id, count(*) as n from raw.incident_records group by 1
            union all
            -- a KH03 row is a provider: one stored row per sector
            select submission_id, count(distinct source_line) from raw.kh03_beds group by 1
        ), quarantined as (
            select submission_id, count(*) as n from raw.incident_quarantine group by 1
            union all
            select submission_id, count(*) from raw.kh03_quarantine group by 1
        )
        select log.file_name, log.rows_read, log.rows_loaded, log.rows_quarantined,
               coalesce(loaded.n, 0), coalesce(quarantined.n, 0)
        from raw.submission_log as log
        left join loaded using (submission_id)
        left join quarantined using (submission_id)
        where log.layout like 'incidents%'
          and (log.rows_read <> log.rows_loaded + log.rows_quarantined
               or log.rows_loaded <> coalesce(loaded.n, 0)
               or log.rows_quarantined <> coalesce(quarantined.n, 0))
        order by log.submission_id
        """
    ).fetchall()
    return [
        f"{name}: read {read}, logged loaded {lo} / quarantined {q}, raw has {rl} / {rq}"
        for name, read, lo, q, rl, rq in rows
    ]
