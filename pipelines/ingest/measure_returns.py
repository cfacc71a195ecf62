"""Load measure-return files into the raw layer, one DuckDB transaction per batch of files.

Guarantees, per file: it is either recorded as rejected (nothing loaded, reason logged) or
every row is either loaded or quarantined with its reasons, so
``rows_read = rows_loaded + rows_quarantined``. Files are written a batch per transaction:
a crash rolls the batch back whole.
Latest accepted submission wins per (organisation, period, measure): older rows stay in
raw with ``superseded_by`` set.

Work is set-wise where the outcome provably does not depend on it: plain long-layout CSVs
of a batch are parsed together (:func:`read_deferred`), rows are typed and checked once
per batch, and each table is written with one statement. At national scale per-file
work (about 17 polars collects and two log statements per file) dominated ingest. Files
are still judged, logged and given lineage one by one, exactly as when ingested alone
(tests/test_ingest_set_wise.py).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Iterable, Iterator
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
from pipelines.ingest.intake import (
    ZERO_COUNTS,
    log_submissions,
    logged_name,
    reserve_submission_ids,
    submitter_from_name,
)
from pipelines.ingest.normalise import (
    clean_code,
    date_context,
    date_contexts,
    is_blank,
    number_context,
    read_count,
    read_period,
)
from pipelines.ingest.organisations import region_label
from pipelines.ingest.reading import (
    RawTable,
    column_name,
    read_tables,
)
from pipelines.ingest.rules import Rule, apply_rules, measure_row_rules
from pipelines.ingest.xlsx_facts import column_letters
from pipelines.settings import Settings
from pipelines.warehouse import insert_frame

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
class DeferredCsv:
    """A plain long-layout CSV, checked as far as its own bytes go, whose body is read later
    together with every file of its batch of the same contract and header line, in one parse
    (:func:`read_deferred`).

    Plain means what that parse provably reads exactly as the file's own would: UTF-8 (or
    ASCII) text that decoding and line-end normalisation leave unchanged (no BOM, no CR, not
    UTF-16 or Windows-1252), comma-separated, the header on the first line, no quote (so no
    quoted field, separator or line break), no blank line, and a line end after the last
    record: each body line is then exactly one record of the parse.
    """

    data: bytes
    header: bytes  # the first line, with its line end
    match: ContractMatch
    submitter: str | None
    file_name: str
    lines: int  # body lines: rows the parse must give this file


@dataclass(frozen=True)
class MeasureFile:
    """One file read: long rows joined to the register and catalogue, still text (typed a
    batch at a time, ``type_values``), and what the submission log records beside them.

    ``rows`` is None while the file is ``deferred``: its rows are then read with its batch
    (:func:`read_deferred`) and carry its key in ``file_key``."""

    rows: pl.DataFrame | None
    layout: str
    # Data records in the file, counted apart from the parser (reading.scan_records); the
    # reconciliation proves every one reached raw (as rows) or is a wide-layout record
    # whose measures were all left blank (``records_without_rows``).
    records_in_file: int
    records_without_rows: int
    warnings: tuple[str, ...] = ()
    deferred: DeferredCsv | None = None


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


Registration = tuple[bool, str | None]  # (in the region, ICB code)


def registrations(organisations: pl.DataFrame) -> dict[str, Registration]:
    """Each organisation code's first row in ``organisations`` (:func:`organisation_lookup`),
    for judging many files' submitters without a frame filter per file."""
    found: dict[str, Registration] = {}
    for code, in_region, icb in organisations.select(
        "org_code", "org_in_region", "org_icb_code"
    ).iter_rows():
        found.setdefault(code, (in_region, icb))
    return found


def _registration(organisations: pl.DataFrame, submitter: str | None) -> Registration | None:
    registered = (
        organisations.filter(pl.col("org_code") == submitter) if submitter else organisations[:0]
    )
    if registered.height == 0:
        return None
    return registered["org_in_region"][0], registered["org_icb_code"][0]


def _submitter_problem(
    file_name: str, submitter: str | None, registered: Registration | None, settings: Settings
) -> FileRejected | None:
    """A file must come from an organisation of this region's register."""
    if registered is None:
        return FileRejected(
            file_name,
            "unknown_submitter",
            f"file name must start with the submitting organisation's ODS code; "
            f"'{submitter}' is not in the organisation register",
        )
    if not registered[0]:
        icb = registered[1] or "none"
        return FileRejected(
            file_name,
            "submitter_outside_region",
            f"'{submitter}' is in ICB {icb}, outside the region "
            f"{region_label(settings.region_name, settings.region_icbs)}; "
            "to accept its returns, give it one of the region's ICBs in the local register",
        )
    return None


def read_measure_file(
    data: bytes,
    file_name: str,
    *,
    organisations: pl.DataFrame,
    settings: Settings,
    defer: bool = False,
) -> MeasureFile:
    """Bytes of one file -> long rows joined to the register and catalogue, with the
    contract's number format and the file's date order as columns (``type_values`` reads
    values by them), and the file's record count and warnings.

    File rules raise :class:`FileRejected`; row rules are applied later, to many files at once
    (``apply_rules``), because validation has a fixed cost per call. With ``defer``, a plain
    long-layout CSV (:class:`DeferredCsv`) stops once its own bytes are judged (decoding,
    layout, duplicate columns, records counted apart from the parser, truncation): its body
    is read with its batch's (:func:`read_deferred`), which then applies the checks left,
    in the same order.
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
    if defer and _plain_csv(data, table, match):
        header, _, lines = data.partition(b"\n")
        deferred = DeferredCsv(
            data, header + b"\n", match, submitter, file_name, lines.count(b"\n")
        )
        return MeasureFile(None, match.contract.name, records_in_file, 0, (), deferred)
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
    registered = _registration(organisations, submitter)
    problem = _submitter_problem(file_name, submitter, registered, settings)
    if problem is not None:
        raise problem
    rows = _with_register(
        long.with_columns(
            clean_code("raw_org_code").alias("org_code"),
            clean_code("raw_measure_code").alias("measure_code"),
            pl.lit(submitter).alias("submitter_code"),
            *number_context(match.contract.number_format),
            *date_context(long, "raw_period", match.contract.date_order),
        ),
        organisations,
    ).sort("source_line", "raw_measure_code")
    return MeasureFile(
        rows,
        match.contract.name,
        records_in_file,
        _records_without_rows(body, match),
        tuple(warnings),
    )


def _with_register(frame: pl.DataFrame, organisations: pl.DataFrame) -> pl.DataFrame:
    """Rows joined to the organisation register and the measure catalogue."""
    return (
        frame.join(organisations, on="org_code", how="left")
        .join(_measure_lookup(), on="measure_code", how="left")
        .with_columns(
            pl.col("org_in_region").fill_null(False).alias("org_known"),
            (~pl.col("org_in_region")).fill_null(False).alias("org_outside_region"),
            pl.col("measure_known").fill_null(False),
        )
        .drop("org_in_region")
    )


def _plain_csv(data: bytes, table: RawTable, match: ContractMatch) -> bool:
    """Whether ``data`` is a plain long-layout CSV (:class:`DeferredCsv`): one parse of many
    such files reads each exactly as its own parse would."""
    return (
        table.sheet is None
        and table.delimiter == ","
        and match.contract.layout == "long"
        and match.header_row == 0
        and table.header_line(0) == 0
        and data.endswith(b"\n")
        and b'"' not in data
        and b"\n\n" not in data
        and (table.text or "").encode("utf-8") == data
    )


class _NotProven(Exception):
    """A set-wise read that could not show it reads each file as the file's own read."""


def read_deferred(
    files: list[tuple[int, DeferredCsv]], organisations: pl.DataFrame, settings: Settings
) -> tuple[list[pl.DataFrame], dict[int, FileRejected], list[int]]:
    """Read deferred files (``(key, file)``, in the order they are applied) with one parse per
    contract and header line: (rows of the files read, with their key in ``file_key``; the
    files refused, by key; the keys of files to read one by one instead).

    The checks left from :func:`read_measure_file` are applied per file, in its order: a
    file with no data rows is ``empty_file``, then the submitter must be registered in the
    region. Lineage is the file's own: ``source_line`` counts from the line after the header
    (line 2), as the file's own read does. A group the one parse cannot prove it read file
    by file (a row count that differs from the files' lines, a column missing), or that
    fails at all, is handed back to be read one file at a time.
    """
    groups: dict[tuple[int, bytes], list[tuple[int, DeferredCsv]]] = {}
    for key, deferred in files:
        groups.setdefault((id(deferred.match.contract), deferred.header), []).append(
            (key, deferred)
        )
    frames: list[pl.DataFrame] = []
    refused: dict[int, FileRejected] = {}
    one_by_one: list[int] = []
    register = registrations(organisations) if groups else {}
    for group in groups.values():
        try:
            frame, rejected = _read_group(group, organisations, register, settings)
        except Exception as error:
            if not isinstance(error, _NotProven):
                logger.exception(
                    "reading %d files together failed; reading them one by one", len(group)
                )
            one_by_one.extend(key for key, _ in group)
            continue
        refused.update(rejected)
        if frame.height:
            frames.append(frame)
    return frames, refused, one_by_one


def _read_group(
    group: list[tuple[int, DeferredCsv]],
    organisations: pl.DataFrame,
    register: dict[str, Registration],
    settings: Settings,
) -> tuple[pl.DataFrame, dict[int, FileRejected]]:
    """One contract's and header's files: one parse, then the per-file checks set-wise."""
    first = group[0][1]
    match, header = first.match, first.header
    keys = [key for key, _ in group]
    lines = [deferred.lines for _, deferred in group]
    text = header + b"".join(deferred.data[len(header) :] for _, deferred in group)
    # The parser every CSV body goes through, given the batch's bodies under one header.
    together = RawTable(head=[], text=text.decode("utf-8"), head_lines=(0,), delimiter=",")
    try:
        body = together.read_below(0, first.file_name)
    except FileRejected as error:
        raise _NotProven(str(error)) from error
    if body.height != sum(lines):
        raise _NotProven(f"{body.height} rows read from {sum(lines)} lines")
    if match.positions and column_name(match.positions[-1]) not in body.columns:
        raise _NotProven("a column read is missing")
    owners = (
        pl.DataFrame({"file_key": keys, "n": lines}, schema={"file_key": pl.Int64, "n": pl.Int64})
        .filter(pl.col("n") > 0)
        .select(pl.col("file_key").repeat_by("n").explode())
    )
    body = body.with_columns(owners["file_key"]).with_columns(  # line 2 is the first row
        (pl.int_range(pl.len(), dtype=pl.Int64).over("file_key") + 2).alias("source_line")
    )
    long = _to_long(body, match, keep=("file_key",))
    heights = dict(long.group_by("file_key").len().iter_rows())
    rejected: dict[int, FileRejected] = {}
    submitters: dict[int, str | None] = {}
    for key, deferred in group:
        name = deferred.file_name
        if not heights.get(key):
            rejected[key] = FileRejected(name, "empty_file", "file has a header but no data rows")
            continue
        problem = _submitter_problem(
            name, deferred.submitter, register.get(deferred.submitter or ""), settings
        )
        if problem is not None:
            rejected[key] = problem
            continue
        submitters[key] = deferred.submitter
    if rejected:
        long = long.filter(pl.col("file_key").is_in(list(submitters)))
    context = date_contexts(long, "raw_period", match.contract.date_order, "file_key").join(
        pl.DataFrame(
            {"file_key": list(submitters), "submitter_code": list(submitters.values())},
            schema={"file_key": pl.Int64, "submitter_code": pl.String},
        ),
        on="file_key",
        how="left",
    )
    rows = _with_register(
        long.join(context, on="file_key", how="left").with_columns(
            clean_code("raw_org_code").alias("org_code"),
            clean_code("raw_measure_code").alias("measure_code"),
            *number_context(match.contract.number_format),
        ),
        organisations,
    ).sort("file_key", "source_line", "raw_measure_code")
    return rows, rejected


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


def _to_long(body: pl.DataFrame, match: ContractMatch, keep: tuple[str, ...] = ()) -> pl.DataFrame:
    """Contract columns renamed to ``raw_*``; a wide file unpivoted to one row per measure.

    In a wide file a measure whose numerator and denominator are both blank was not
    reported that month: it makes no row. Wholly blank lines make no row either. ``keep``:
    columns of ``body`` kept beside ``source_line`` (long layout only: which file a row of a
    set-wise read came from).
    """
    raw_cols = [f"raw_{c}" for c in LONG_COLUMNS]
    if match.contract.layout == "long":
        long = body.select(
            "source_line",
            *keep,
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
    # Only measures providers return: those derived from incident records are not theirs
    # to send (a return naming one is refused as not in the catalogue of returns).
    catalogue = {c: m for c, m in load_catalogue().items() if m.source == "returns"}
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


@dataclass
class _Arrival:
    """One file in a batch, between reading and writing."""

    path: Path
    source_path: str
    size: int
    seq: int = 0  # its place in the run: the key of its rows while they are read set-wise
    digest: str = ""
    read: MeasureFile | None = None
    rejection: FileRejected | None = None

    @property
    def rows(self) -> pl.DataFrame | None:
        return self.read.rows if self.read is not None else None

    @property
    def deferred(self) -> DeferredCsv | None:
        return self.read.deferred if self.read is not None else None

    @property
    def name(self) -> str:
        """The file name as logged (NFC, :func:`pipelines.ingest.intake.logged_name`)."""
        return logged_name(self.path.name)

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


# What pending_files learnt of a file it hashed: (size, mtime in ns) when hashed, digest.
_Hashed = tuple[tuple[int, int] | None, str]


def _read_arrival(
    path: Path,
    source_path: str,
    organisations: pl.DataFrame,
    settings: Settings,
    *,
    hashed: _Hashed | None = None,
    defer: bool = True,
) -> _Arrival | None:
    """Read and type one file, or say why it is refused; None when it changed while being
    read (a writer is still at it): it is left in landing, unlogged, for a later run.

    A plain long-layout CSV is only judged here and read with its batch
    (``read_measure_file(defer=True)``). The digest is of the bytes read, computed once: a
    digest ``pending_files`` took of the file unchanged since (same size and modification
    time) is not taken again.

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
    if hashed is not None and hashed[0] is not None and hashed[0] == before:
        arrival.digest = hashed[1]
    else:
        arrival.digest = sha256_of(data)
    _read_into(arrival, data, organisations, settings, defer=defer)
    return arrival


def _read_into(
    arrival: _Arrival,
    data: bytes,
    organisations: pl.DataFrame,
    settings: Settings,
    *,
    defer: bool,
) -> None:
    """``arrival.read``, or ``arrival.rejection`` with why it cannot be read."""
    try:
        arrival.read = read_measure_file(
            data, arrival.path.name, organisations=organisations, settings=settings, defer=defer
        )
    except FileRejected as rejection:
        arrival.rejection = rejection
    except Exception as error:
        logger.exception(
            "reading %s failed; the file is rejected, the others go on", arrival.source_path
        )
        arrival.rejection = unreadable(arrival.path.name, error)


def _received_at(arrival: _Arrival, now: datetime) -> datetime:
    """When the file landed: its modification time (set by the SFTP drop or copy), never
    later than now; files refused unread are dated now."""
    try:
        landed = datetime.fromtimestamp(arrival.path.lstat().st_mtime, UTC).replace(tzinfo=None)
    except OSError:
        return now
    return min(landed, now)


def _store_rows(
    con: duckdb.DuckDBPyConnection, loaded: pl.DataFrame, bad: pl.DataFrame, now: datetime
) -> None:
    """Insert a batch's rows (with their lineage: ``submission_id``, ``source_file``,
    ``sha256``) and apply supersession with set-based statements.

    Latest submission wins per (organisation, period, measure): a key seen in several files
    of the batch is superseded by the next file carrying it, and current rows already in raw
    by the batch's first file carrying it. One statement per table per batch instead of
    several per file: per-file statements dominated ingest at national scale.
    """
    keys = ["org_code", "period", "measure_code"]
    if loaded.height:
        loaded = loaded.select(
            "submission_id",
            *keys,
            "numerator",
            "denominator",
            "source_file",
            "sha256",
            "source_line",
            pl.lit(now).alias("loaded_at"),
        ).with_columns(
            pl.col("submission_id")
            .shift(-1)
            .over(keys, order_by="submission_id")
            .alias("superseded_by")
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
    if bad.height:
        quarantined = bad.select(
            "submission_id",
            "source_file",
            "sha256",
            "source_line",
            pl.struct([pl.col(f"raw_{c}").alias(c) for c in LONG_COLUMNS])
            .struct.json_encode()
            .alias("raw_record"),
            "rules",
            "reasons",
            pl.lit(now).alias("quarantined_at"),
        )
        insert_frame(con, "raw.quarantine", quarantined)


_ZERO = ZERO_COUNTS
# Rows validated together: large enough to spread validation's fixed cost, small enough to
# keep memory flat on a national backfill.
BATCH_ROWS = 500_000


def _pending(
    con: duckdb.DuckDBPyConnection, settings: Settings
) -> list[tuple[Path, str, _Hashed | None]]:
    """:func:`pending_files`, each with the digest taken to compare it with the log (a path
    seen before), so ingest does not hash the file again."""
    seen = set(con.execute("select source_path, sha256 from raw.submission_log").fetchall())
    seen_paths = {p for p, _ in seen}
    landing = settings.landing_dir
    pending: list[tuple[Path, str, _Hashed | None]] = []
    for path in landed_files(landing, settle_seconds=settings.settle_seconds):
        rel = path.relative_to(landing).as_posix()
        hashed = None
        if rel in seen_paths:
            state = file_state(path)
            digest = content_digest(path, landing, settings.max_file_bytes)
            if (rel, digest) in seen:
                continue
            hashed = (state if file_state(path) == state else None, digest)
        pending.append((path, rel, hashed))
    return pending


def pending_files(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[tuple[Path, str]]:
    """Files under the landing folder not yet processed at this path with this content, in
    the order they must be applied: by folder, then name (a later file wins)."""
    return [(path, rel) for path, rel, _ in _pending(con, settings)]


@dataclass
class _Run:
    """What every batch of one :func:`ingest_landing` call shares: the connection, the
    register and row rules built once, the run's clock, and the digests loaded so far
    (``known``: sha256 -> its first submission id), which a batch extends only once it
    has committed, so a batch rolled back can be written again."""

    con: duckdb.DuckDBPyConnection
    settings: Settings
    run_id: str | None
    now: datetime
    organisations: pl.DataFrame
    rules: list[Rule]
    known: dict[str, int]


# Each file's fate in a batch: ("loaded" | "duplicate" | "rejected", the earlier
# submission id of a duplicate seen in an earlier batch or run, else None).
_Fate = tuple[str, int | None]
# Per file index of a batch: (rows loaded, rows quarantined, the months it carries).
_Counts = dict[int, tuple[int, int, list[date]]]


def ingest_landing(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    run_id: str | None = None,
    files: Iterable[tuple[Path, str]] | None = None,
    today: date | None = None,
    set_wise: bool = True,
) -> list[SubmissionOutcome]:
    """Ingest every pending file in the landing folder (or the given files), in order.

    Files are judged one by one (the shared file rules, then what a file's own bytes show),
    then read, validated and written a batch at a time, one transaction per batch (a crash
    rolls the whole batch back, so every file is either fully recorded or not at all), in
    the order given, so a later file supersedes an earlier one. Plain long-layout CSVs of a
    batch are read together, one parse per contract and header (:func:`read_deferred`);
    every other file (XLSX, wide layouts, other encodings or separators, title rows, quoted
    fields) is read on its own. Rows are typed and checked once per batch, and each table,
    the submission log included, is written with one statement. ``set_wise=False`` reads
    every file on its own: the reference the set-wise read is tested against
    (tests/test_ingest_set_wise.py).
    """
    run = _start_run(con, settings, run_id, today)
    todo = (
        [(path, rel, None) for path, rel in files] if files is not None else _pending(con, settings)
    )
    outcomes: list[SubmissionOutcome] = []
    for batch in _batches(run, todo, set_wise):
        outcomes.extend(_flush(run, batch))
    return outcomes


def _start_run(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str | None, today: date | None
) -> _Run:
    """Build once per call what every file is judged against: the organisation register,
    the row rules for this month, and the digests already loaded (a file identical to one
    of them is a duplicate, logged with that submission's id)."""
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
    return _Run(con, settings, run_id, now, organisation_lookup(con), rules, known)


def _batches(
    run: _Run, todo: Iterable[tuple[Path, str, _Hashed | None]], set_wise: bool
) -> Iterator[list[_Arrival]]:
    """Read the files in order and cut them into batches of about ``BATCH_ROWS`` rows.

    A batch also ends before a file identical to one already in it, so the first gets its
    submission id before the second is logged as its duplicate. Batches are yielded lazily:
    each is written before the next file is read, as the duplicate check needs."""
    batch: list[_Arrival] = []
    rows = 0
    seen_in_batch: set[str] = set()
    for seq, (path, source_path, hashed) in enumerate(todo):
        arrival = _read_arrival(
            path, source_path, run.organisations, run.settings, hashed=hashed, defer=set_wise
        )
        if arrival is None:  # changed while being read: left in landing for a later run
            continue
        arrival.seq = seq
        if arrival.digest in seen_in_batch:
            yield batch
            batch, rows = [], 0
            seen_in_batch.clear()
        batch.append(arrival)
        seen_in_batch.add(arrival.digest)
        if arrival.rows is not None:
            rows += arrival.rows.height
        elif arrival.deferred is not None:
            rows += arrival.deferred.lines
        if rows >= BATCH_ROWS:
            yield batch
            batch, rows = [], 0
            seen_in_batch.clear()
    if batch:
        yield batch


def _flush(run: _Run, batch: list[_Arrival]) -> list[SubmissionOutcome]:
    """Write the batch in one transaction; if that fails, each file in its own, so the
    one file that breaks validation or storage is rejected (``unreadable_file``, with
    the traceback in the run log) and every other file of the batch still lands."""
    if not batch:
        return []
    shared = _read_batch(run, batch)
    try:
        return _write(run, batch, shared)
    except Exception:
        logger.exception("writing %d files together failed; writing them one by one", len(batch))
    outcomes: list[SubmissionOutcome] = []
    for arrival in batch:
        try:
            outcomes.extend(_write(run, [arrival], shared))
        except Exception as error:
            logger.exception("writing %s failed; the file is rejected", arrival.source_path)
            arrival.read = None
            arrival.rejection = unreadable(arrival.path.name, error)
            outcomes.extend(_write(run, [arrival], shared))
    return outcomes


def _read_batch(run: _Run, batch: list[_Arrival]) -> list[pl.DataFrame]:
    """Read the batch's deferred files set-wise; a file refused there is rejected, and a
    group the set-wise read hands back is read file by file, as it would be alone."""
    deferred = [
        (a.seq, a.deferred) for a in batch if a.deferred is not None and a.digest not in run.known
    ]
    if not deferred:
        return []
    by_seq = {a.seq: a for a in batch}
    try:
        shared, refused, one_by_one = read_deferred(deferred, run.organisations, run.settings)
    except Exception:
        logger.exception("reading %d files together failed; reading them one by one", len(deferred))
        shared, refused, one_by_one = [], {}, [seq for seq, _ in deferred]
    for seq, rejection in refused.items():
        by_seq[seq].read, by_seq[seq].rejection = None, rejection
    for seq in one_by_one:
        arrival = by_seq[seq]
        data = arrival.deferred.data  # type: ignore[union-attr]
        arrival.read = None
        _read_into(arrival, data, run.organisations, run.settings, defer=False)
    return shared


def _write(run: _Run, items: list[_Arrival], shared: list[pl.DataFrame]) -> list[SubmissionOutcome]:
    """Validate ``items`` and record them in one transaction; on any failure it is
    rolled back and ``run.known`` is left as it was, so the files can be written again.
    ``shared``: rows of files read set-wise, keyed by ``file_key`` (``_Arrival.seq``)."""
    fates, first_of = _fates(items, run.known)
    loading = [i for i, (fate, _) in enumerate(fates) if fate == "loaded"]
    good, bad, counts = _validate(_batch_rows(items, loading, shared), run.rules)
    con = run.con
    con.execute("begin")
    try:
        ids = reserve_submission_ids(con, len(items))
        rows: list[dict] = []
        logged: list[SubmissionOutcome] = []
        for i, (arrival, fate) in enumerate(zip(items, fates, strict=True)):
            earlier = fate[1] if fate[1] is not None else ids[first_of.get(arrival.digest, i)]
            row, outcome = _log_entry(run, arrival, fate[0], ids[i], earlier, counts.get(i))
            rows.append(row)
            logged.append(outcome)
        log_submissions(con, rows, ids=ids)
        if good is not None and bad is not None:
            lineage = _lineage(items, loading, ids)
            _store_rows(
                con,
                good.join(lineage, on="file_index", how="inner"),
                bad.join(lineage, on="file_index", how="inner"),
                run.now,
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    run.known.update({items[i].digest: ids[i] for i in loading})
    return logged


def _fates(items: list[_Arrival], known: dict[str, int]) -> tuple[list[_Fate], dict[str, int]]:
    """Each file's fate, in order: a digest seen loaded before (or earlier in these items)
    is a duplicate; a file not read is rejected; every other file loads. Also the index of
    the item that first loads each digest (``first_of``), whose id a later duplicate of it
    in the same items names."""
    fates: list[_Fate] = []
    first_of: dict[str, int] = {}
    for i, arrival in enumerate(items):
        digest = arrival.digest
        if digest and (digest in known or digest in first_of):
            fates.append(("duplicate", known.get(digest)))
        elif arrival.rejection is not None or arrival.read is None:
            fates.append(("rejected", None))
        else:
            fates.append(("loaded", None))
            first_of[digest] = i
    return fates, first_of


def _batch_rows(
    items: list[_Arrival], loading: list[int], shared: list[pl.DataFrame]
) -> list[pl.DataFrame]:
    """The rows of the files that load, each tagged with its index in ``items``
    (``file_index``): a file read alone brings its own frame; the set-wise frames are
    cut to the loading files through their ``file_key``."""
    pieces = [
        file_rows.with_columns(pl.lit(i, pl.Int32).alias("file_index"))
        for i in loading
        if (file_rows := items[i].rows) is not None
    ]
    keyed = {items[i].seq: i for i in loading if items[i].rows is None}
    if keyed:
        index = pl.DataFrame(
            {"file_key": list(keyed), "file_index": list(keyed.values())},
            schema={"file_key": pl.Int64, "file_index": pl.Int32},
        )
        pieces += [
            frame.join(index, on="file_key", how="inner").drop("file_key") for frame in shared
        ]
    return pieces


def _validate(
    pieces: list[pl.DataFrame], rules: list[Rule]
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, _Counts]:
    """Type and check the batch's rows in one call (validation has a fixed cost per call):
    the good rows, the quarantined rows, and each file's counts and months for its log row.
    No rows: (None, None, {})."""
    counts: _Counts = {}
    if not pieces:
        return None, None, counts
    typed = pl.concat(pieces, how="diagonal_relaxed").sort(
        "file_index", "source_line", "raw_measure_code", maintain_order=True
    )
    good, bad = apply_rules(type_values(typed), rules)
    both = pl.concat(
        [
            good.select("file_index", "period", pl.lit(True).alias("good")),
            bad.select("file_index", "period", pl.lit(False).alias("good")),
        ]
    )
    for i, n_good, n_all, periods in (
        both.group_by("file_index")
        .agg(pl.col("good").sum(), pl.len(), pl.col("period").drop_nulls().unique().sort())
        .iter_rows()
    ):
        counts[i] = (n_good, n_all - n_good, periods)
    return good, bad, counts


def _log_entry(
    run: _Run,
    arrival: _Arrival,
    fate: str,
    sid: int,
    earlier: int,
    counts: tuple[int, int, list[date]] | None,
) -> tuple[dict, SubmissionOutcome]:
    """One file's submission-log row and the outcome returned for it. ``earlier``: for a
    duplicate, the submission id it repeats."""
    name = arrival.name
    base = {**arrival.base, "received_at": _received_at(arrival, run.now), "run_id": run.run_id}
    if fate == "duplicate":
        reason = f"identical to submission {earlier}"
        row = {**base, **_ZERO, "status": "duplicate", "reason": reason, "duplicate_of": earlier}
        return row, SubmissionOutcome(
            sid, name, arrival.source_path, "duplicate", 0, 0, 0, (), reason
        )
    if fate == "rejected":
        rejection = arrival.rejection
        reason = f"{rejection.rule}: {rejection.detail}" if rejection else "not read"
        row = {**base, **_ZERO, "status": "rejected", "reason": reason}
        return row, SubmissionOutcome(
            sid, name, arrival.source_path, "rejected", 0, 0, 0, (), reason
        )
    read = arrival.read
    assert read is not None
    n_good, n_bad, periods = counts or (0, 0, [])
    row = {
        **base,
        "layout": read.layout,
        "records_in_file": read.records_in_file,
        "records_without_rows": read.records_without_rows,
        "warnings": "; ".join(read.warnings) or None,
        "period_min": periods[0] if periods else None,
        "period_max": periods[-1] if periods else None,
        "rows_read": n_good + n_bad,
        "rows_loaded": n_good,
        "rows_quarantined": n_bad,
        "status": "loaded",
    }
    outcome = SubmissionOutcome(
        sid,
        name,
        arrival.source_path,
        "loaded",
        n_good + n_bad,
        n_good,
        n_bad,
        tuple(periods),
        warnings=read.warnings,
    )
    return row, outcome


def _lineage(items: list[_Arrival], loading: list[int], ids: list[int]) -> pl.DataFrame:
    """Per loading file index: its submission id, file name and digest, joined onto its
    rows as they are stored."""
    return pl.DataFrame(
        {
            "file_index": loading,
            "submission_id": [ids[i] for i in loading],
            "source_file": [items[i].name for i in loading],
            "sha256": [items[i].digest for i in loading],
        },
        schema={
            "file_index": pl.Int32,
            "submission_id": pl.Int64,
            "source_file": pl.String,
            "sha256": pl.String,
        },
    )


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
