"""Load measure-return files into the raw layer, one DuckDB transaction per file.

Guarantees, per file: it is either recorded as rejected (nothing loaded, reason logged) or
every row is either loaded or quarantined with its reasons, so
``rows_read = rows_loaded + rows_quarantined``. Files are written a batch per transaction:
a crash rolls the batch back whole.
Latest accepted submission wins per (organisation, period, measure): older rows stay in
raw with ``superseded_by`` set.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.catalogue import load_catalogue
from pipelines.ingest.contracts import (
    LONG_COLUMNS,
    WIDE_ID_COLUMNS,
    ContractMatch,
    match_contract,
)
from pipelines.ingest.errors import FileRejected
from pipelines.ingest.files import content_digest, file_state, landed_files, screen, sha256_of
from pipelines.ingest.normalise import (
    clean_code,
    date_context,
    is_blank,
    number_context,
    read_count,
    read_period,
)
from pipelines.ingest.organisations import region_label
from pipelines.ingest.reading import RawTable, column_name, read_tables
from pipelines.ingest.rules import apply_rules, measure_row_rules
from pipelines.ingest.xlsx_facts import column_letters
from pipelines.settings import Settings

_SUBMITTER = re.compile(r"^([A-Za-z0-9]+)[_\-. ]")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmissionOutcome:
    submission_id: int
    file_name: str
    source_path: str
    status: str
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    periods: tuple[date, ...]
    reason: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MeasureFile:
    """One file read: long rows joined to the register and catalogue, still text (typed a
    batch at a time, ``type_values``), and what the submission log records beside them."""

    rows: pl.DataFrame
    layout: str
    # Data records in the file, counted apart from the parser (reading.scan_records); the
    # reconciliation proves every one reached raw (as rows) or is a wide-layout record
    # whose measures were all left blank (``records_without_rows``).
    records_in_file: int
    records_without_rows: int
    warnings: tuple[str, ...] = ()


def submitter_from_name(file_name: str) -> str | None:
    """Files are named ``<submitter ODS code>_<anything>``, e.g. ``RTD_2024-06.csv``."""
    match = _SUBMITTER.match(file_name)
    return match.group(1).upper() if match else None


def organisation_lookup(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """Known organisations with their open dates and ICB; the local register overrides ODS.

    The region's organisations have ``org_in_region`` true. Organisations the register
    files hold for other regions (``raw.organisations_outside_region``) are listed too,
    with ``org_in_region`` false and their ICB, only so a return from one is refused as
    outside the region instead of as unknown.
    """
    return con.sql(
        """
        select
            coalesce(l.org_code, o.org_code) as org_code,
            coalesce(l.open_date, o.open_date) as org_open_date,
            coalesce(l.close_date, o.close_date) as org_close_date,
            coalesce(l.icb_code, o.icb_code) as org_icb_code,
            true as org_in_region
        from (select distinct on (org_code) * from raw.ods_organisations) o
        full join (select distinct on (org_code) * from raw.local_organisations) l
            using (org_code)
        union all
        select org_code, null::date, null::date, icb_code, false
        from (select distinct on (org_code) * from raw.organisations_outside_region)
        """
    ).pl()


def _submitter_problem(
    file_name: str, submitter: str | None, organisations: pl.DataFrame, settings: Settings
) -> FileRejected | None:
    """A file must come from an organisation of this region's register."""
    registered = (
        organisations.filter(pl.col("org_code") == submitter) if submitter else organisations[:0]
    )
    if registered.height == 0:
        return FileRejected(
            file_name,
            "unknown_submitter",
            f"file name must start with the submitting organisation's ODS code; "
            f"'{submitter}' is not in the organisation register",
        )
    if not registered["org_in_region"][0]:
        icb = registered["org_icb_code"][0] or "none"
        return FileRejected(
            file_name,
            "submitter_outside_region",
            f"'{submitter}' is in ICB {icb}, outside the region "
            f"{region_label(settings.region_name, settings.region_icbs)}; "
            "to accept its returns, give it one of the region's ICBs in the local register",
        )
    return None


def read_measure_file(
    data: bytes, file_name: str, *, organisations: pl.DataFrame, settings: Settings
) -> MeasureFile:
    """Bytes of one file -> long rows joined to the register and catalogue, with the
    contract's number format and the file's date order as columns (``type_values`` reads
    values by them), and the file's record count and warnings.

    File rules raise :class:`FileRejected`; row rules are applied later, to many files at once
    (``apply_rules``), because validation has a fixed cost per call.
    """
    suffix = Path(file_name).suffix.lower()
    submitter = submitter_from_name(file_name)
    tables = read_tables(data, file_name, suffix, settings.max_xlsx_inflated_bytes)
    table, match = choose_table(tables, suffix, file_name, submitter)
    if match.conflicts:
        raise FileRejected(
            file_name,
            "duplicate_column",
            f"more than one column for {'; '.join(match.conflicts)}; reading either would be "
            "a guess: keep one and send the file again",
        )
    records_in_file, cut_off = table.scan_records(match.header_row, match.positions)
    if cut_off:
        raise FileRejected(
            file_name, "truncated_file", f"the file looks cut off: {cut_off}; send it again"
        )
    warnings = _sheet_problems(table, match, file_name)
    body = table.read_below(match.header_row, file_name)
    if match.positions and column_name(match.positions[-1]) not in body.columns:
        raise FileRejected(
            file_name,
            "unparseable_csv",
            f"the header has {len(match.headers)} columns but {body.width - 1} were read",
        )
    long = _to_long(body, match)
    if long.height == 0:
        raise FileRejected(file_name, "empty_file", "file has a header but no data rows")
    problem = _submitter_problem(file_name, submitter, organisations, settings)
    if problem is not None:
        raise problem
    rows = (
        long.with_columns(
            clean_code("raw_org_code").alias("org_code"),
            clean_code("raw_measure_code").alias("measure_code"),
            pl.lit(submitter).alias("submitter_code"),
            *number_context(match.contract.number_format),
            *date_context(long, "raw_period", match.contract.date_order),
        )
        .join(organisations, on="org_code", how="left")
        .join(_measure_lookup(), on="measure_code", how="left")
        .with_columns(
            pl.col("org_in_region").fill_null(False).alias("org_known"),
            (~pl.col("org_in_region")).fill_null(False).alias("org_outside_region"),
            pl.col("measure_known").fill_null(False),
        )
        .drop("org_in_region")
        .sort("source_line", "raw_measure_code")
    )
    return MeasureFile(
        rows,
        match.contract.name,
        records_in_file,
        _records_without_rows(body, match),
        tuple(warnings),
    )


def type_values(rows: pl.DataFrame) -> pl.DataFrame:
    """``period``, ``numerator`` and ``denominator`` read as each file's contract declares,
    with the columns the rules need to say why a value was not read (``period_ambiguity``,
    ``period_hint``, ``{numerator,denominator}_issue[_detail]``). Many files at once: the
    reading has a fixed cost per call."""
    typed = read_period(rows, "raw_period", "period")
    typed = read_count(typed, "raw_numerator", "numerator")
    return read_count(typed, "raw_denominator", "denominator")


def _sheet_problems(table: RawTable, match: ContractMatch, file_name: str) -> list[str]:
    """XLSX only: what the provider cannot see, and formulas whose results were never
    calculated. Formulas are always refused (the value would be a script's placeholder);
    hidden rows, columns or the read sheet being hidden are refused or loaded with a
    warning as the contract's ``hidden_cells`` says. Other hidden sheets are not read, and
    are reported as a warning."""
    facts = table.facts
    if facts is None:
        return []
    positions = match.positions
    uncached = facts.uncached_formulas(match.header_row, positions)
    if uncached:
        why = (
            "whose stored result no spreadsheet calculated (the workbook asks for every "
            "formula to be recalculated on opening: it was written by a script)"
            if facts.recalculate_on_load
            else "with no stored result"
        )
        raise FileRejected(
            file_name,
            "formula_without_value",
            f"{_plural(uncached, 'cell')} {_few(uncached)} {_plural(uncached, 'holds', 'hold')} "
            f"a formula {why}; open the file in Excel and save it, or send the values",
        )
    hidden: list[tuple[str, str]] = []
    if facts.sheet_state != "visible":
        hidden.append(
            ("hidden_sheet", f"the sheet read, '{facts.sheet_name}', is {facts.sheet_state}")
        )
    rows = [r for r in facts.records(match.header_row, positions) if r in facts.hidden_rows]
    if rows:
        hidden.append(
            (
                "hidden_rows",
                f"{_plural(rows, 'row')} {_row_ranges(rows)} "
                f"{_plural(rows, 'holds', 'hold')} data but {_plural(rows, 'is', 'are')} hidden",
            )
        )
    columns = [
        f"{column_letters(facts.sheet_col(p))} ('{match.header_name(p)}')"
        for p in positions
        if facts.sheet_col(p) in facts.hidden_cols
    ]
    if columns:
        hidden.append(
            (
                "hidden_columns",
                f"{_plural(columns, 'column')} {', '.join(columns)} "
                f"{_plural(columns, 'is', 'are')} read but hidden",
            )
        )
    warnings = [f"hidden_cells: {detail}" for _, detail in hidden]
    if hidden and match.contract.hidden_cells == "refuse":
        raise FileRejected(
            file_name,
            hidden[0][0],
            "; ".join(detail for _, detail in hidden)
            + ": the provider cannot see what would be loaded; unhide and check them, or "
            "delete them, and send the file again",
        )
    if facts.hidden_sheets:
        names = ", ".join(f"'{n}'" for n in facts.hidden_sheets)
        warnings.append(f"hidden_sheets_not_read: {names}")
    return warnings


def _plural(items: list, one: str, many: str | None = None) -> str:
    return one if len(items) == 1 else (many or f"{one}s")


def _few(items: list[str], limit: int = 10) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _row_ranges(rows: list[int]) -> str:
    """``[3, 4, 5, 9]`` -> ``3-5, 9``: sheet rows as a provider would look for them."""
    spans: list[list[int]] = []
    for row in sorted(rows):
        if spans and row == spans[-1][1] + 1:
            spans[-1][1] = row
        else:
            spans.append([row, row])
    return _few([f"{a}-{b}" if a != b else f"{a}" for a, b in spans])


def choose_table(
    tables: list[RawTable], suffix: str, file_name: str, submitter: str | None = None
) -> tuple[RawTable, ContractMatch]:
    """The first table (a CSV's only one, or a workbook's worksheets in order) whose header
    a source contract reads, so an instructions sheet in front of the data is passed over.

    None matching is ``wrong_layout``, naming how each table was read (the CSV's separator,
    each sheet's name) and its first row, so the provider sees what was found where.
    """
    found = []
    problems: list[str] = []
    for table in tables:
        match, problems = match_contract(table.head, suffix, submitter)
        if match is not None:
            return table, match
        headers = [h for h in (table.head[0] if table.head else []) if h]
        found.append(f"{table.describe()} starts {headers}")
    if len(tables) == 1 and tables[0].sheet is None and tables[0].delimiter == ",":
        headers = [h for h in (tables[0].head[0] if tables[0].head else []) if h]
        detail = f"headers {headers} match no contract: {'; '.join(problems)}"
    elif len(tables) == 1:
        detail = f"headers read as {found[0]} match no contract: {'; '.join(problems)}"
    else:
        detail = f"no worksheet holds a header a contract reads ({'; '.join(found)})"
    raise FileRejected(file_name, "wrong_layout", detail)


def _to_long(body: pl.DataFrame, match: ContractMatch) -> pl.DataFrame:
    """Contract columns renamed to ``raw_*``; a wide file unpivoted to one row per measure.

    In a wide file a measure whose numerator and denominator are both blank was not
    reported that month: it makes no row. Wholly blank lines make no row either.
    """
    raw_cols = [f"raw_{c}" for c in LONG_COLUMNS]
    if match.contract.layout == "long":
        long = body.select(
            "source_line",
            *[pl.col(column_name(match.columns[c])).alias(f"raw_{c}") for c in LONG_COLUMNS],
        )
    else:
        ids = [pl.col(column_name(match.columns[c])).alias(f"raw_{c}") for c in WIDE_ID_COLUMNS]
        parts = [
            body.select(
                "source_line",
                *ids,
                pl.lit(code).alias("raw_measure_code"),
                pl.col(column_name(numerator)).alias("raw_numerator"),
                pl.col(column_name(denominator)).alias("raw_denominator"),
            ).filter(~(is_blank("raw_numerator") & is_blank("raw_denominator")))
            for code, (numerator, denominator) in match.measures.items()
        ]
        long = pl.concat(parts).select("source_line", *raw_cols)
    return long.filter(~pl.all_horizontal([is_blank(c) for c in raw_cols]))


def _records_without_rows(body: pl.DataFrame, match: ContractMatch) -> int:
    """Wide layout: records with a value (an organisation, a month) but every measure
    blank; they make no row, and the reconciliation must know they were read."""
    if match.contract.layout != "wide":
        return 0
    read = [is_blank(column_name(p)) for p in match.positions]
    measures = [is_blank(column_name(p)) for p in match.measure_positions]
    return body.filter(~pl.all_horizontal(read) & pl.all_horizontal(measures)).height


def _measure_lookup() -> pl.DataFrame:
    catalogue = load_catalogue()
    return pl.DataFrame(
        {
            "measure_code": list(catalogue),
            "measure_is_proportion": [m.is_proportion for m in catalogue.values()],
            "measure_multiplier": [m.multiplier for m in catalogue.values()],
            "measure_max_count": [m.max_count for m in catalogue.values()],
            "measure_max_value": [m.max_value for m in catalogue.values()],
            "measure_known": [True] * len(catalogue),
        },
        schema_overrides={
            "measure_multiplier": pl.Int64,
            "measure_max_count": pl.Int64,
            "measure_max_value": pl.Float64,
        },
    )


def _record(con: duckdb.DuckDBPyConnection, row: dict) -> int:
    submission_id = con.execute("select nextval('raw.submission_id_seq')").fetchone()[0]
    row = {**row, "submission_id": submission_id}
    columns = ", ".join(row)
    con.execute(
        f"insert into raw.submission_log ({columns}) values ({', '.join('?' * len(row))})",
        list(row.values()),
    )
    return submission_id


@dataclass
class _Arrival:
    """One file in a batch, between reading and writing."""

    path: Path
    source_path: str
    size: int
    digest: str = ""
    read: MeasureFile | None = None
    rejection: FileRejected | None = None
    duplicate_of_digest: bool = False

    @property
    def rows(self) -> pl.DataFrame | None:
        return self.read.rows if self.read is not None else None

    @property
    def name(self) -> str:
        """The file name as logged: NFC, so a name typed on a Mac (decomposed accents) and
        the same name typed on Windows are one name in the submission log."""
        return unicodedata.normalize("NFC", self.path.name)

    @property
    def base(self) -> dict:
        return {
            "file_name": self.name,
            "source_path": self.source_path,
            "submitter_code": submitter_from_name(self.name),
            "sha256": self.digest,
            "size_bytes": self.size,
        }


def unreadable(file_name: str, error: BaseException) -> FileRejected:
    """A failure no file rule foresaw, as the file's rejection: the exception's type and
    first line name it for the provider's contact; the traceback goes to the run log."""
    message = (str(error).strip().splitlines() or [""])[0][:300]
    detail = f"{type(error).__name__}: {message}" if message else type(error).__name__
    return FileRejected(file_name, "unreadable_file", f"could not be read ({detail})")


def _read_arrival(
    path: Path, source_path: str, organisations: pl.DataFrame, settings: Settings
) -> _Arrival | None:
    """Read and type one file, or say why it is refused; None when it changed while being
    read (a writer is still at it): it is left in landing, unlogged, for a later run.

    Any exception at all, not only a file rule, refuses this file alone (``unreadable_file``,
    traceback logged): a reader's bug on one hostile file must not stop the other files.
    """
    # The shared file rules (pipelines.ingest.files) first: a file they refuse is never read.
    screening = screen(path, settings.landing_dir, settings.max_file_bytes)
    arrival = _Arrival(path, source_path, screening.size, rejection=screening.rejection)
    if arrival.rejection is not None:
        return arrival
    before = file_state(path)
    try:
        data = path.read_bytes()
    except OSError as error:  # vanished or locked since listing: not this run's file
        logger.warning("%s could not be read now (%s); left for a later run", source_path, error)
        return None
    if file_state(path) != before or len(data) != screening.size:
        logger.warning("%s changed while being read; left for a later run", source_path)
        return None
    arrival.digest = sha256_of(data)
    try:
        arrival.read = read_measure_file(
            data, path.name, organisations=organisations, settings=settings
        )
    except FileRejected as rejection:
        arrival.rejection = rejection
    except Exception as error:
        logger.exception("reading %s failed; the file is rejected, the others go on", source_path)
        arrival.rejection = unreadable(path.name, error)
    return arrival


def _received_at(arrival: _Arrival, now: datetime) -> datetime:
    """When the file landed: its modification time (set by the SFTP drop or copy), never
    later than now; files refused unread are dated now."""
    try:
        landed = datetime.fromtimestamp(arrival.path.lstat().st_mtime, UTC).replace(tzinfo=None)
    except OSError:
        return now
    return min(landed, now)


def _log_arrival(
    con: duckdb.DuckDBPyConnection,
    arrival: _Arrival,
    good: pl.DataFrame | None,
    bad: pl.DataFrame | None,
    *,
    now: datetime,
    run_id: str | None,
    earlier: int | None,
) -> SubmissionOutcome:
    """The file's row in the submission log (inside the batch's transaction)."""
    name = arrival.name
    base = {**arrival.base, "received_at": _received_at(arrival, now), "run_id": run_id}
    if earlier is not None:
        reason = f"identical to submission {earlier}"
        row = {**base, **_ZERO, "status": "duplicate", "reason": reason, "duplicate_of": earlier}
        sid = _record(con, row)
        return SubmissionOutcome(sid, name, arrival.source_path, "duplicate", 0, 0, 0, (), reason)
    if arrival.rejection is not None or good is None or bad is None:
        rejection = arrival.rejection
        reason = f"{rejection.rule}: {rejection.detail}" if rejection else "not read"
        sid = _record(con, {**base, **_ZERO, "status": "rejected", "reason": reason})
        return SubmissionOutcome(sid, name, arrival.source_path, "rejected", 0, 0, 0, (), reason)
    periods = tuple(sorted(set(good["period"].to_list()) | set(bad["period"].drop_nulls())))
    read = arrival.read
    warnings = read.warnings if read else ()
    sid = _record(
        con,
        {
            **base,
            "layout": read.layout if read else None,
            "records_in_file": read.records_in_file if read else None,
            "records_without_rows": read.records_without_rows if read else None,
            "warnings": "; ".join(warnings) or None,
            "period_min": min(periods) if periods else None,
            "period_max": max(periods) if periods else None,
            "rows_read": good.height + bad.height,
            "rows_loaded": good.height,
            "rows_quarantined": bad.height,
            "status": "loaded",
        },
    )
    return SubmissionOutcome(
        sid,
        name,
        arrival.source_path,
        "loaded",
        good.height + bad.height,
        good.height,
        bad.height,
        periods,
        warnings=warnings,
    )


def _lineage(frame: pl.DataFrame, outcome: SubmissionOutcome, digest: str) -> pl.DataFrame:
    return frame.with_columns(
        pl.lit(outcome.submission_id, pl.Int64).alias("submission_id"),
        pl.lit(outcome.file_name).alias("source_file"),
        pl.lit(digest).alias("sha256"),
    )


def _store_rows(
    con: duckdb.DuckDBPyConnection, good: list[pl.DataFrame], bad: list[pl.DataFrame], now: datetime
) -> None:
    """Insert a batch's rows and apply supersession with set-based statements.

    Latest submission wins per (organisation, period, measure): a key seen in several files
    of the batch is superseded by the next file carrying it, and current rows already in raw
    by the batch's first file carrying it. Two statements per batch instead of several per
    file: per-file statements dominated ingest at national scale.
    """
    keys = ["org_code", "period", "measure_code"]
    if good:
        loaded = (
            pl.concat(good, how="vertical_relaxed")
            .select(
                "submission_id",
                *keys,
                "numerator",
                "denominator",
                "source_file",
                "sha256",
                "source_line",
                pl.lit(now).alias("loaded_at"),
            )
            .with_columns(
                pl.col("submission_id")
                .shift(-1)
                .over(keys, order_by="submission_id")
                .alias("superseded_by")
            )
        )
        con.register("incoming_values", loaded.to_arrow())
        first, last = loaded["period"].min(), loaded["period"].max()
        con.execute(
            """
            update raw.measure_values as v set superseded_by = i.first_submission
            from (
                select org_code, period, measure_code, min(submission_id) as first_submission
                from incoming_values group by all
            ) as i
            where v.superseded_by is null
              and v.period between ? and ?
              and v.org_code = i.org_code and v.period = i.period
              and v.measure_code = i.measure_code
            """,
            [first, last],
        )
        con.execute("insert into raw.measure_values by name select * from incoming_values")
        con.unregister("incoming_values")
    if bad:
        quarantined = pl.concat(
            [
                frame.select(
                    "submission_id",
                    "source_file",
                    "sha256",
                    "source_line",
                    pl.struct(
                        [
                            pl.col(c).alias(c.removeprefix("raw_"))
                            for c in frame.columns
                            if c.startswith("raw_")
                        ]
                    )
                    .struct.json_encode()
                    .alias("raw_record"),
                    "rules",
                    "reasons",
                    pl.lit(now).alias("quarantined_at"),
                )
                for frame in bad
            ],
            how="vertical_relaxed",
        )
        con.register("incoming_quarantine", quarantined.to_arrow())
        con.execute("insert into raw.quarantine by name select * from incoming_quarantine")
        con.unregister("incoming_quarantine")


_ZERO = {"rows_read": 0, "rows_loaded": 0, "rows_quarantined": 0}
# Rows validated together: large enough to spread validation's fixed cost, small enough to
# keep memory flat on a national backfill.
BATCH_ROWS = 500_000


def pending_files(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[tuple[Path, str]]:
    """Files under the landing folder not yet processed at this path with this content, in
    the order they must be applied: by folder, then name (a later file wins)."""
    seen = set(con.execute("select source_path, sha256 from raw.submission_log").fetchall())
    seen_paths = {p for p, _ in seen}
    landing = settings.landing_dir
    pending = []
    for path in landed_files(landing, settle_seconds=settings.settle_seconds):
        rel = path.relative_to(landing).as_posix()
        if rel in seen_paths and (
            (rel, content_digest(path, landing, settings.max_file_bytes)) in seen
        ):
            continue
        pending.append((path, rel))
    return pending


def ingest_landing(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    run_id: str | None = None,
    files: Iterable[tuple[Path, str]] | None = None,
    today: date | None = None,
) -> list[SubmissionOutcome]:
    """Ingest every pending file in the landing folder (or the given files), in order.

    Files are read and checked one by one, then validated and written together, one
    transaction per batch (a crash rolls the whole batch back, so every file is either fully
    recorded or not at all), in the order given, so a later file supersedes an earlier one.
    """
    organisations = organisation_lookup(con)
    now = datetime.now(UTC).replace(tzinfo=None)
    rules = measure_row_rules(
        current_month=(today or now.date()).replace(day=1),
        catalogue_start=settings.catalogue_start,
        region=region_label(settings.region_name, settings.region_icbs),
    )
    known = {
        digest: sid
        for digest, sid in con.execute(
            "select sha256, min(submission_id) from raw.submission_log"
            " where status = 'loaded' group by 1"
        ).fetchall()
    }
    outcomes: list[SubmissionOutcome] = []
    batch: list[_Arrival] = []

    def write(items: list[_Arrival]) -> list[SubmissionOutcome]:
        """Validate ``items`` and record them in one transaction; on any failure it is
        rolled back and ``known`` is left as it was, so the files can be written again."""
        typed = [
            a.rows.with_columns(pl.lit(i, pl.Int32).alias("file_index"))
            for i, a in enumerate(items)
            if a.rows is not None and a.digest not in known
        ]
        good = bad = None
        if typed:
            good, bad = apply_rules(type_values(pl.concat(typed, how="vertical_relaxed")), rules)
            good_by = good.partition_by("file_index", as_dict=True, include_key=False)
            bad_by = bad.partition_by("file_index", as_dict=True, include_key=False)
        loaded: list[pl.DataFrame] = []
        quarantined: list[pl.DataFrame] = []
        written: dict[str, int] = {}
        con.execute("begin")
        try:
            logged = []
            for i, arrival in enumerate(items):
                earlier = (
                    known.get(arrival.digest, written.get(arrival.digest))
                    if arrival.digest
                    else None
                )
                if earlier is None and arrival.rows is not None:
                    file_good = good_by.get((i,), good.clear().drop("file_index"))
                    file_bad = bad_by.get((i,), bad.clear().drop("file_index"))
                else:
                    file_good = file_bad = None
                outcome = _log_arrival(
                    con, arrival, file_good, file_bad, now=now, run_id=run_id, earlier=earlier
                )
                if outcome.status == "loaded":
                    written[arrival.digest] = outcome.submission_id
                    loaded.append(_lineage(file_good, outcome, arrival.digest))
                    quarantined.append(_lineage(file_bad, outcome, arrival.digest))
                logged.append(outcome)
            _store_rows(con, loaded, [q for q in quarantined if q.height], now)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
        known.update(written)
        return logged

    def flush() -> None:
        """Write the batch in one transaction; if that fails, each file in its own, so the
        one file that breaks validation or storage is rejected (``unreadable_file``, with
        the traceback in the run log) and every other file of the batch still lands."""
        if not batch:
            return
        try:
            outcomes.extend(write(batch))
        except Exception:
            logger.exception(
                "writing %d files together failed; writing them one by one", len(batch)
            )
            for arrival in batch:
                try:
                    outcomes.extend(write([arrival]))
                except Exception as error:
                    logger.exception("writing %s failed; the file is rejected", arrival.source_path)
                    arrival.read = None
                    arrival.rejection = unreadable(arrival.path.name, error)
                    outcomes.extend(write([arrival]))
        batch.clear()

    rows = 0
    seen_in_batch: set[str] = set()
    todo = list(files) if files is not None else pending_files(con, settings)
    for path, source_path in todo:
        arrival = _read_arrival(path, source_path, organisations, settings)
        if arrival is None:  # changed while being read: left in landing for a later run
            continue
        if arrival.digest in seen_in_batch:
            flush()  # an identical file later in the batch: let the first one get its id
            seen_in_batch.clear()
            rows = 0
        batch.append(arrival)
        seen_in_batch.add(arrival.digest)
        rows += arrival.rows.height if arrival.rows is not None else 0
        if rows >= BATCH_ROWS:
            flush()
            seen_in_batch.clear()
            rows = 0
    flush()
    return outcomes


def periods_in_file(path: Path, settings: Settings) -> set[date]:
    """The reporting months a file carries, read without the warehouse (for the sensor).

    A file that cannot be read yields no months, whatever goes wrong (a reader's own bug
    included, logged with its traceback): ingest will log why, and the sensor's tick must
    never fail on a file.
    """
    if screen(path, settings.landing_dir, settings.max_file_bytes).rejection is not None:
        return set()
    try:
        suffix = path.suffix.lower()
        tables = read_tables(path.read_bytes(), path.name, suffix, settings.max_xlsx_inflated_bytes)
        table, match = choose_table(tables, suffix, path.name, submitter_from_name(path.name))
        long = _to_long(table.read_below(match.header_row, path.name), match)
        context = long.with_columns(*date_context(long, "raw_period", match.contract.date_order))
        return set(read_period(context, "raw_period", "period")["period"].drop_nulls().to_list())
    except (FileRejected, OSError):
        return set()
    except Exception:
        logger.exception("reading the months of %s failed; ingest will judge the file", path)
        return set()


@dataclass(frozen=True)
class Archived:
    """What :func:`archive_processed` did: files moved, and one line per file it could not
    move (left in landing, where the submission log already marks it processed)."""

    moved: int
    problems: tuple[str, ...] = ()


def archive_processed(
    outcomes: list[SubmissionOutcome], settings: Settings, today: date
) -> Archived:
    """Move every processed file to ``archive/<date>/<path in landing>``: landing then holds
    only what has not been seen, and the archive keeps every file as received.

    Archiving runs after the batch is committed, so it must never fail the run: the data is
    already in the warehouse and the submission log, and a file left in landing is not read
    twice (``pending_files`` skips a logged path with the same content). Landing and the
    archive are often on different filesystems (an SFTP mount and local disk), where
    ``rename(2)`` fails with EXDEV; then the file is copied (with its modification time,
    which is its ``received_at``) and the original removed. Any other failure (a full
    archive disk, a permission) is returned as a problem naming the file and the error,
    and a half-written copy is removed.
    """
    moved = 0
    problems: list[str] = []
    for outcome in outcomes:
        source = settings.landing_dir / outcome.source_path
        if not (source.exists() or source.is_symlink()):
            continue
        target = settings.archive_dir / today.isoformat() / outcome.source_path
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                target = target.with_name(f"{target.stem}.{outcome.submission_id}{target.suffix}")
            _move(source, target)
        except OSError as error:
            problems.append(
                f"{outcome.source_path}: not archived, left in landing ({describe_os_error(error)})"
            )
            continue
        moved += 1
    return Archived(moved, tuple(problems))


def _move(source: Path, target: Path) -> None:
    """``rename(2)``, or copy then delete when source and target are on different
    filesystems (EXDEV). A failed copy leaves no partial target behind."""
    try:
        os.rename(source, target)
        return
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
    try:
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    source.unlink()


def describe_os_error(error: OSError) -> str:
    """``[Errno 28] No space left on device: '/path'``: the errno, its text and the file."""
    return str(error) if error.strerror else f"{type(error).__name__}: {error}"
