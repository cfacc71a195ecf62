"""The working DuckDB file: only the pipeline opens it, one writer at a time.

The raw layer is owned by ingest (created here); everything above it is owned by dbt.
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

if TYPE_CHECKING:
    from pipelines.settings import Settings


#: An order-independent digest of a set of rows ``r`` (a relation's alias, so ``hash(r)``
#: hashes each whole row): their count, the sum of one 64-bit hash of each row (as a
#: 128-bit integer: no overflow) and the XOR of another. Carried organisation pages
#: (``pipelines/dashboard/carry.py``) and carried published tables
#: (``pipelines/publish/snapshot.py``) are both recognised by it.
ROWS_DIGEST = "count(*), sum(hash(r)::hugeint), bit_xor(hash(r, 'salt'))"


def quarantine_table(table: str) -> str:
    """DDL of a source's quarantine table. Every source's refused rows have the same
    columns (those of ``raw.quarantine``), so they read alike wherever they are shown:
    ``raw_record`` is the row as the source may keep it, ``rules``/``reasons`` why."""
    return f"""
create table if not exists {table} (
    submission_id   bigint not null,
    source_file     varchar not null,
    sha256          varchar not null,
    source_line     bigint not null,
    raw_record      json not null,
    rules           varchar[] not null,
    reasons         varchar not null,
    quarantined_at  timestamp not null
);
"""


def insert_frame(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Insert ``frame``'s rows into ``table`` by column name in one statement (nothing when
    it has no rows), through a view of its Arrow data that is dropped whatever happens."""
    if frame.height == 0:
        return
    con.register("incoming_rows", frame.to_arrow())
    try:
        con.execute(f"insert into {table} by name select * from incoming_rows")
    finally:
        con.unregister("incoming_rows")


RAW_DDL = (
    """
create schema if not exists raw;

create sequence if not exists raw.submission_id_seq start 1;

create table if not exists raw.submission_log (
    submission_id     bigint primary key,
    file_name         varchar not null,
    source_path       varchar not null,
    sha256            varchar not null,
    size_bytes        bigint not null,
    received_at       timestamp not null,
    submitter_code    varchar,
    layout            varchar,
    period_min        date,
    period_max        date,
    rows_read         bigint not null,
    rows_loaded       bigint not null,
    rows_quarantined  bigint not null,
    status            varchar not null,   -- loaded | rejected | duplicate
    reason            varchar,
    duplicate_of      bigint,
    run_id            varchar
);
-- Added after the first release: working files made before get them here.
-- records_in_file: the file's data records, counted apart from the parser; with
-- records_without_rows (wide records whose measures were all blank) the reconciliation
-- proves none was lost. warnings: what a loaded file was accepted despite (hidden cells).
alter table raw.submission_log add column if not exists records_in_file bigint;
alter table raw.submission_log add column if not exists records_without_rows bigint;
alter table raw.submission_log add column if not exists warnings varchar;

create table if not exists raw.measure_values (
    submission_id   bigint not null,
    org_code        varchar not null,
    period          date not null,
    measure_code    varchar not null,
    numerator       bigint not null,
    denominator     bigint not null,
    superseded_by   bigint,
    source_file     varchar not null,
    sha256          varchar not null,
    source_line     bigint not null,
    loaded_at       timestamp not null
);

"""
    + quarantine_table("raw.quarantine")
    + """

create table if not exists raw.ods_organisations (
    org_code varchar, org_name varchar, national_grouping varchar, icb_code varchar,
    postcode varchar, open_date date, close_date date, status_code varchar,
    sub_icb_code varchar, prescribing_setting varchar, record_type varchar,
    source_file varchar, source_line bigint, sha256 varchar, loaded_at timestamp
);

create table if not exists raw.local_organisations (
    org_code varchar, org_name varchar, sector_code varchar, icb_code varchar,
    open_date date, close_date date, successor_code varchar,
    source_file varchar, source_line bigint, sha256 varchar, loaded_at timestamp
);

-- Every register file judged (pipelines.ingest.register_files, organisations.load_register):
-- one row per file per judgement of the whole register (the files judged together share
-- judged_at). Register files are not returns, so not in submission_log: that table keys
-- landing files by path and content for duplicates and pending files, reconciles rows
-- read against raw.measure_values and feeds completeness; a register file has no
-- submitter or period, is judged with the others (it can be refused because another one
-- was), and carries a layout, vintage and region that submission_log has no columns for.
create sequence if not exists raw.register_log_id_seq start 1;

create table if not exists raw.register_log (
    register_log_id bigint primary key,
    judged_at       timestamp not null,
    run_id          varchar,
    region          varchar not null,   -- the ICB codes it was judged for, or ENGLAND
    file_name       varchar not null,
    source_path     varchar not null,
    record_type     varchar not null,   -- trust | gp_practice | local_register | ods_folder
    sha256          varchar,
    size_bytes      bigint,
    layout          varchar,            -- register_etr_27, register_etr_24,
                                        -- register_epraccur_27, register_epraccur_27_ccg,
                                        -- register_local
    vintage         date,               -- the latest date it records (up to the day judged)
    rows_read       bigint not null,
    rows_in_region  bigint not null,
    status          varchar not null,   -- loaded | refused
    rule            varchar,
    reason          varchar,            -- rule: detail
    notes           varchar,            -- e.g. ICB derived from CCG codes; changes
    confirmed       boolean not null    -- loaded with --confirm-register
);

-- Organisations in the register files but outside the configured region (not loaded
-- above): kept only so that a return from one is refused as outside the region, with its
-- ICB named, rather than as unknown.
create table if not exists raw.organisations_outside_region (
    org_code varchar, org_name varchar, icb_code varchar, record_type varchar,
    source_file varchar, loaded_at timestamp
);
"""
)


@contextmanager
def writer_lock(path: Path, *, timeout_s: float = 3600.0) -> Iterator[None]:
    """Wait for, then hold, the right to open the working file.

    DuckDB refuses a second process at once instead of waiting; this advisory lock makes
    concurrent runs (a sensor run during the nightly refresh, say) queue instead of fail.
    Dagster's ``duckdb_writer`` pool does the same for runs it launches; the lock also
    covers runs started from the CLI or tests. Re-entrant within one process.
    """
    key = str(path.resolve())
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    msg = f"waited {timeout_s:.0f}s for the writer lock on {path}"
                    raise TimeoutError(msg) from None
                time.sleep(0.2)
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


_held: dict[str, int] = {}


BUILD_DDL = """
create schema if not exists audit;
create table if not exists audit.build_owner (
    run_id     varchar not null,   -- the run (or 'dbt by hand ...') that last wrote
    claimed_at timestamp not null
);
"""


@contextmanager
def whole_run_lock(
    path: Path, run_id: str, *, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the working file for a whole run: ingest, dbt, checks and publish.

    The writer lock above serialises *connections*; two runs could still interleave their
    steps, so that run A publishes a build run B changed after A's checks passed. This
    second lock (``<working file>.run.lock``) is taken once when a run starts and released
    when it ends, so a publication holds exactly the build its own run audited. A run
    that finds it held waits (queued runs wait; they do not fail). The operating system
    releases it when the holding process dies, so a killed run never blocks the next.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_file = Path(f"{path}.run.lock")
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        waited = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if on_wait and waited % 60 == 0:
                    holder = lock_file.read_text(errors="replace").strip() or "another run"
                    on_wait(f"waiting for {holder} to finish with {path}")
                time.sleep(1.0)
                waited += 1.0
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"run {run_id} (pid {os.getpid()})".encode(), 0)
        try:
            with working_connection(path) as con:
                claim_build(con, run_id)
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def claim_build(con: duckdb.DuckDBPyConnection, owner: str) -> None:
    """Record ``owner`` as the last writer of the working file's build."""
    from datetime import UTC, datetime

    con.execute(BUILD_DDL)
    con.execute("delete from audit.build_owner")
    con.execute(
        "insert into audit.build_owner values (?, ?)",
        [owner, datetime.now(UTC).replace(tzinfo=None)],
    )


def build_owner(con: duckdb.DuckDBPyConnection) -> str | None:
    """Who last claimed the working file's build (None: nobody yet). Read-only safe."""
    exists = con.execute(
        "select count(*) from duckdb_tables() where schema_name = 'audit'"
        " and table_name = 'build_owner'"
    ).fetchone()[0]
    if not exists:
        return None
    row = con.execute("select run_id from audit.build_owner").fetchone()
    return row[0] if row else None


def open_duckdb(
    path: Path | str | None = None,
    *,
    read_only: bool = False,
    settings: Settings | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open a DuckDB file the pipeline uses (``path`` None: an in-memory database), with
    DuckDB's memory capped at the setting ``duckdb_memory_limit`` and its spill files under
    ``<var_dir>/tmp/duckdb``.

    Left alone, DuckDB takes up to 80% of the machine's memory before it spills, in every
    process and for every file: a publication opens the working file, the snapshot's tier
    files, the published files the site and reports are built from and in-memory scans,
    and each would grow to that. Spill files go under ``var_dir`` because DuckDB's default
    is a folder beside the file (inside a published snapshot, for a read-only one) or in
    the current folder (in-memory). Each database gets a folder of its own (DuckDB names
    its spill files alike in every database), which DuckDB creates on its first spill and
    removes when the database closes; a second connection to a database already open in
    this process keeps the folder it has (DuckDB cannot switch once it has spilled).
    ``settings``: read with :func:`pipelines.settings.load_settings` when not given."""
    if settings is None:
        from pipelines.settings import load_settings  # settings never import this module

        settings = load_settings()
    if path is not None and not read_only:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(":memory:" if path is None else str(path), read_only=read_only)
    try:
        con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'")
        spill_root = settings.var_dir / "tmp" / "duckdb"
        [(current,)] = con.execute("select current_setting('temp_directory')").fetchall()
        if not Path(current or ".").is_relative_to(spill_root):
            spill_root.mkdir(parents=True, exist_ok=True)
            spill = str(spill_root / f"{os.getpid()}-{uuid.uuid4().hex[:12]}")
            # Opened bare earlier in this process and spilled already: it keeps its folder.
            with suppress(duckdb.NotImplementedException):
                con.execute("set temp_directory = '" + spill.replace("'", "''") + "'")
    except BaseException:
        con.close()
        raise
    return con


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the working file (:func:`open_duckdb`), creating its folder and the raw layer
    on first use."""
    con = open_duckdb(path, read_only=read_only)
    if not read_only:
        from pipelines.incidents.store import INCIDENT_RAW_DDL
        from pipelines.surveys.store import SURVEY_RAW_DDL

        # Every source's raw tables exist from the first connection, so dbt's staging of a
        # source that has sent nothing yet reads an empty table instead of failing.
        con.execute(RAW_DDL)
        con.execute(SURVEY_RAW_DDL)
        con.execute(INCIDENT_RAW_DDL)
    return con


@contextmanager
def working_connection(
    path: Path, *, read_only: bool = False, lock_timeout_s: float = 3600.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the working file, holding the writer lock for as long as it is open.

    Read-only connections take the lock too: DuckDB refuses a read-only open while another
    process has the file open for writing. A caller that must not wait (the landing sensor)
    passes a short ``lock_timeout_s`` and handles :class:`TimeoutError`.
    """
    with writer_lock(path, timeout_s=lock_timeout_s):
        con = connect(path, read_only=read_only)
        try:
            yield con
        finally:
            con.close()
