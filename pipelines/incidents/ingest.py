"""Load incident extracts into the raw layer through the one intake.

Every file goes through the intake measure returns and survey exports share
(:mod:`pipelines.ingest.intake`): the shared file rules (unsafe names, links out of landing,
oversized files, zip bombs), hashed once, the submitter from the file name checked against
the one organisation lookup, an identical file logged as a duplicate, one row in
``raw.submission_log`` (``layout`` ``incidents_<contract>``) with
``rows_read = rows_loaded + rows_quarantined`` counting the extract's rows. Personal data
and free text are dropped as the file is read (:mod:`pipelines.incidents.read`: only the
contract's allow-listed columns are read) and never stored.

Set-wise, in chunks. Each file is screened, hashed, read and typed on its own (reading is
cheap, and a file refused whole is refused alone); then the extracts of a chunk (up to
``CHUNK_FILES`` files or ``CHUNK_ROWS`` rows, in path order) are judged together, with one
set of rules per contract (:func:`pipelines.incidents.rules.incident_rules`: what a rule
needs of the file, its submitter, is a column) and every rule about "the same extract"
partitioned by file; the one rule across extracts, a revision going backwards, is checked
against what was stored before the chunk and what the chunk's earlier extracts store
(:func:`pipelines.incidents.rules.stored_as_of_file`). A chunk is written in ONE
transaction: one insert per table and one for its submission-log rows. That is the
intake's "nothing half-written" rule at the grain of a chunk: a crash mid-chunk leaves
nothing of it, and the next run takes its files again, since none of them is logged. The
outcomes, log rows and raw tables are those of taking the files one at a time
(tests/incidents/test_incident_set_wise.py); a chunk that fails as a whole is taken again
file by file (:func:`pipelines.ingest.intake.take_in`), so the one file at fault is
refused alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from functools import partial
from pathlib import Path

import duckdb
import polars as pl

from pipelines.incidents.contract import IncidentContract
from pipelines.incidents.read import read_extract
from pipelines.incidents.rules import (
    FILE,
    event_day,
    incident_rules,
    safe_record,
    split_incidents,
    stored_as_of_file,
    type_extract,
)
from pipelines.incidents.store import (
    INCIDENT_LAYOUT_PREFIX,
    RECORD_COLUMNS,
    StoredRevisions,
    ensure_incident_tables,
    write_extracts,
)
from pipelines.ingest.errors import FileRejected
from pipelines.ingest.intake import (
    Arrival,
    IntakeOutcome,
    Judged,
    arrive,
    known_organisations,
    pending_landed,
    record,
    submitter_from_name,
    take_in,
)
from pipelines.settings import Settings

logger = logging.getLogger(__name__)

# A chunk: judged together and written in one transaction. About 200 LFPSE extracts of a
# national backfill (930 rows each); big enough that the fixed cost of a validation and of
# an insert is spread thin, small enough to hold in memory and to take again after a crash.
CHUNK_FILES = 200
CHUNK_ROWS = 250_000


@dataclass(frozen=True)
class ReadExtract:
    """One extract read, not yet typed nor judged (both done with the other extracts of
    its chunk): its allow-listed text, each row with its file's name (``source_file``) and
    submitter (``submitter_code``, ``submitter_is_icb``)."""

    contract: IncidentContract
    frame: pl.DataFrame
    columns_dropped: int


@dataclass(frozen=True)
class Register:
    """What the rules know of organisations: every known code, and which are ICBs."""

    known: frozenset[str]
    icbs: frozenset[str]

    @classmethod
    def of(cls, organisations: pl.DataFrame) -> Register:
        icbs = organisations.filter(pl.col("org_code") == pl.col("icb_code"))["org_code"]
        return cls(frozenset(organisations["org_code"].to_list()), frozenset(icbs.to_list()))


def read_kept(
    data: bytes, name: str, *, register: Register, max_unzipped_bytes: int
) -> ReadExtract:
    """Read one extract (its submitter checked first); raises FileRejected for a file
    refused whole."""
    submitter = submitter_from_name(name)
    if submitter is None or submitter not in register.known:
        raise FileRejected(
            name,
            "unknown_submitter",
            f"file name must start with the submitting organisation's ODS code; "
            f"'{submitter}' is not in the organisation register",
        )
    extract = read_extract(data, name, max_unzipped_bytes=max_unzipped_bytes)
    frame = extract.frame.with_columns(
        pl.lit(name).alias("source_file"),
        pl.lit(submitter).alias("submitter_code"),
        pl.lit(submitter in register.icbs).alias("submitter_is_icb"),
    )
    return ReadExtract(extract.contract, frame, extract.columns_dropped)


@dataclass(frozen=True)
class JudgedExtracts:
    """The rows of extracts judged together, each with its extract's ``file_index``:
    what they store (``good``: the record columns) and what they quarantine."""

    good: pl.DataFrame
    quarantined: pl.DataFrame

    def judged(self, index: int, extract: ReadExtract) -> Judged:
        """Extract ``index``'s counts and log row; its rows are written with the others'
        (:meth:`write`)."""
        good = self.good.filter(pl.col(FILE) == index)
        bad = self.quarantined.filter(pl.col(FILE) == index).height
        first: date | None = good["event_date"].min() if good.height else None  # type: ignore[assignment]
        last: date | None = good["event_date"].max() if good.height else None  # type: ignore[assignment]
        warnings = None
        if extract.columns_dropped:
            warnings = (
                f"{extract.columns_dropped} columns not in the {extract.contract.name} "
                "allow-list dropped unread"
            )
        return Judged(
            layout=extract.contract.layout,
            rows_read=good.height + bad,
            rows_loaded=good.height,
            rows_quarantined=bad,
            write=_written_with_the_others,
            log_extra={
                "warnings": warnings,
                "records_in_file": extract.frame.height,
                "period_min": first.replace(day=1) if first is not None else None,
                "period_max": last.replace(day=1) if last is not None else None,
            },
        )

    def write(
        self,
        con: duckdb.DuckDBPyConnection,
        lineage: dict[int, tuple[int, str, str, str]],
        now: datetime,
    ) -> None:
        """Every extract's rows, one insert per table. ``lineage``: file index ->
        (submission id, layout, file name, SHA-256)."""
        frame = pl.DataFrame(
            [(index, *values) for index, values in lineage.items()],
            schema={
                FILE: pl.Int64,
                "submission_id": pl.Int64,
                "layout": pl.String,
                "source_file": pl.String,
                "sha256": pl.String,
            },
            orient="row",
        )
        write_extracts(
            con,
            good=self.good.join(frame, on=FILE, how="inner"),
            quarantined=self.quarantined.join(frame, on=FILE, how="inner"),
            now=now,
        )

    def stored(self) -> pl.DataFrame:
        """What :meth:`StoredRevisions.add` needs of the stored records."""
        return self.good.select("org_code", "event_key", "revision")


def _written_with_the_others(con: duckdb.DuckDBPyConnection, sid: int, digest: str) -> None:
    """An extract judged in a chunk writes nothing alone: :meth:`JudgedExtracts.write`."""


def judge_extracts(
    extracts: list[ReadExtract],
    *,
    revisions: StoredRevisions,
    known_orgs: frozenset[str],
    today: date,
) -> JudgedExtracts:
    """Judge ``extracts`` (in the order they are applied) together: one set of rules per
    contract over all of its extracts' rows, exactly as if each had been judged and stored
    before the next (``file_index`` is the position in ``extracts``)."""
    goods, bads = [], []
    by_contract: dict[str, list[int]] = {}
    for index, extract in enumerate(extracts):
        by_contract.setdefault(extract.contract.name, []).append(index)
    for indexes in by_contract.values():
        contract = extracts[indexes[0]].contract
        rows = pl.concat(
            [extracts[i].frame.with_columns(pl.lit(i, pl.Int64).alias(FILE)) for i in indexes],
            how="vertical_relaxed",
        )
        typed = type_extract(rows, contract)
        rules = incident_rules(contract, known_orgs=set(known_orgs), today=today)
        stored = revisions.of(typed["org_code"].unique().to_list())
        good, bad = split_incidents(stored_as_of_file(typed, rules, stored), rules)
        goods.append(good.select(FILE, *RECORD_COLUMNS))
        bads.append(
            bad.with_columns(safe_record(bad, contract)).select(
                FILE, "source_line", "raw_record", "rules", "reasons"
            )
        )
    return JudgedExtracts(
        pl.concat(goods, how="vertical_relaxed"), pl.concat(bads, how="vertical_relaxed")
    )


def judge_extract(
    data: bytes,
    name: str,
    *,
    register: Register,
    revisions: StoredRevisions,
    today: date,
    now: datetime,
    max_unzipped_bytes: int,
    stored: list[pl.DataFrame] | None = None,
) -> Judged:
    """Read, type and check one extract alone (the file-at-a-time intake); raises
    FileRejected for a file refused whole. ``stored``, if given, receives the records the
    extract's ``write`` stores (for :meth:`StoredRevisions.add` once its transaction has
    committed)."""
    extract = read_kept(data, name, register=register, max_unzipped_bytes=max_unzipped_bytes)
    judged = judge_extracts([extract], revisions=revisions, known_orgs=register.known, today=today)
    layout = extract.contract.layout

    def write(con: duckdb.DuckDBPyConnection, sid: int, digest: str) -> None:
        judged.write(con, {0: (sid, layout, name, digest)}, now)
        if stored is not None:
            stored.append(judged.stored())

    return replace(judged.judged(0, extract), write=write)


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
    chunk_files: int = CHUNK_FILES,
) -> list[IntakeOutcome]:
    """Ingest every pending extract under the incident landing folder (or the given
    files), in path order: a later extract supersedes an earlier one. The extracts are
    judged and written in chunks of up to ``chunk_files`` (module docstring)."""
    landing = landing_dir or settings.incident_landing_dir
    ensure_incident_tables(con)
    if landing is None or not landing.exists():
        return []
    todo = list(files) if files is not None else pending_incident_files(con, landing, settings)
    intake = _Intake(con, settings, landing, run_id, today or date.today())
    chunk: list[_Landed] = []
    rows = 0
    outcomes: list[IntakeOutcome] = []
    for path, source_path in todo:
        arrival = intake.arrive(path, source_path)
        if arrival.digest and arrival.digest in {landed.arrival.digest for landed in chunk}:
            # Identical to a file of this chunk: once that one is logged, a duplicate of it.
            outcomes += intake.flush(chunk)
            chunk, rows = [], 0
            if arrival.digest in intake.known:
                arrival = replace(arrival, read=None)
        chunk.append(_Landed(path, source_path, arrival))
        rows += arrival.read.frame.height if arrival.read is not None else 0
        if len(chunk) >= chunk_files or rows >= CHUNK_ROWS:
            outcomes += intake.flush(chunk)
            chunk, rows = [], 0
    return outcomes + intake.flush(chunk)


@dataclass(frozen=True)
class _Landed:
    path: Path
    source_path: str
    arrival: Arrival[ReadExtract]


class _Intake:
    """What one ingest judges every chunk against: the organisation register, the digests
    of loaded extracts, the revisions stored so far (the earlier chunks' included)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        settings: Settings,
        landing: Path,
        run_id: str | None,
        today: date,
    ) -> None:
        self.con, self.settings, self.landing, self.run_id = con, settings, landing, run_id
        self.today = today
        self.now = datetime.now(UTC).replace(tzinfo=None)
        self.register = Register.of(known_organisations(con))
        self.known: dict[str, int] = dict(
            con.execute(
                "select sha256, min(submission_id) from raw.submission_log"
                " where status = 'loaded' and layout like ? group by 1",
                [f"{INCIDENT_LAYOUT_PREFIX}%"],
            ).fetchall()
        )
        self.revisions = StoredRevisions(con)

    def _intake_args(self) -> dict:
        return {
            "layout_prefix": INCIDENT_LAYOUT_PREFIX,
            "max_file_bytes": self.settings.max_file_bytes,
            "known": self.known,
            "now": self.now,
            "run_id": self.run_id,
            "unreadable_rule": "unreadable_extract",
        }

    def arrive(self, path: Path, source_path: str) -> Arrival[ReadExtract]:
        read = partial(
            read_kept,
            register=self.register,
            max_unzipped_bytes=self.settings.max_xlsx_inflated_bytes,
        )
        return arrive(path, source_path, self.landing, read=read, **self._intake_args())

    def flush(self, chunk: list[_Landed]) -> list[IntakeOutcome]:
        """Judge and record ``chunk`` in one transaction; if that fails, take its files
        again one at a time, so only the file at fault is refused."""
        if not chunk:
            return []
        logged: list[Arrival[Judged]] = [
            Arrival(landed.arrival.base, None, landed.arrival.rejection) for landed in chunk
        ]
        # The files that load: their place in the chunk and their typed rows.
        loading = [(i, c.arrival.read) for i, c in enumerate(chunk) if c.arrival.read is not None]
        try:
            judged = None
            if loading:
                judged = judge_extracts(
                    [extract for _, extract in loading],
                    revisions=self.revisions,
                    known_orgs=self.register.known,
                    today=self.today,
                )
                for k, (i, extract) in enumerate(loading):
                    logged[i].read = judged.judged(k, extract)

            def write_all(con: duckdb.DuckDBPyConnection, ids: list[int]) -> None:
                if judged is None:
                    return
                lineage = {
                    k: (
                        ids[i],
                        extract.contract.layout,
                        logged[i].base["file_name"],
                        chunk[i].arrival.digest,
                    )
                    for k, (i, extract) in enumerate(loading)
                }
                judged.write(con, lineage, self.now)

            outcomes = record(self.con, logged, self.known, write_all=write_all)
        except Exception:
            logger.exception(
                "%d incident extracts judged together failed; taking them one at a time",
                len(chunk),
            )
            return [self.alone(landed.path, landed.source_path) for landed in chunk]
        if judged is not None:
            self.revisions.add(judged.stored())
        return outcomes

    def alone(self, path: Path, source_path: str) -> IntakeOutcome:
        """One file through :func:`take_in`, judged and written on its own."""
        stored: list[pl.DataFrame] = []
        read = partial(
            judge_extract,
            register=self.register,
            revisions=self.revisions,
            today=self.today,
            now=self.now,
            max_unzipped_bytes=self.settings.max_xlsx_inflated_bytes,
            stored=stored,
        )
        outcome = take_in(
            self.con, path, source_path, self.landing, read=read, **self._intake_args()
        )
        if outcome.status == "loaded":
            for records in stored:
                self.revisions.add(records)
        return outcome


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
