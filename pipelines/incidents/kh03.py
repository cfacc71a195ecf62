"""KH03 bed occupancy files -> ``raw.kh03_beds``: the occupied bed days the incident rates
are divided by where the catalogue names KH03 (docs/incidents.md, "Occupied bed days").

NHS England publishes KH03 quarterly as an XLSX whose first sheet has title rows above a
two-row header: a group row (Available / Occupied / % Occupied, each over five sector
columns) and the column row (Year, Period End, Region Code, Org Code, Org Name, Total,
General & Acute, ...). Nothing is matched by position: the column row is found by the
contract's column names (``source_contracts/kh03/kh03.yml``), and a sector column is
read only when the group row above it says Occupied. The figures are average daily
occupied beds over the quarter, stored as published; bed days (average x days) are worked
out per month in ``stg_raw__kh03_bed_days``.

Files go through the same intake as every other source (:func:`take_in`): file rules,
hashing, duplicates, one transaction, one ``raw.submission_log`` row (``layout``
``incidents_kh03``).
A KH03 file is national, so it is not named after a sender.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import duckdb
import polars as pl
import yaml

from pipelines.incidents.contract import CONTRACTS_DIR, normalise_header
from pipelines.incidents.store import ensure_incident_tables
from pipelines.ingest.errors import FileRejected
from pipelines.ingest.intake import (
    IntakeOutcome,
    Judged,
    known_organisations,
    pending_landed,
    take_in,
)
from pipelines.months import add_months
from pipelines.settings import Settings
from pipelines.surveys.grid import read_xlsx_grid
from pipelines.warehouse import insert_frame

# Under the incident layouts' prefix: the incident asset's reconciliation check covers it
# and the measure-return check leaves it alone.
KH03_LAYOUT = "incidents_kh03"
# Beside the incident contracts, in a folder of its own: every *.yml of the incident folder
# is an extract layout (pipelines.incidents.contract.load_contracts).
KH03_CONTRACT = CONTRACTS_DIR.parent / "kh03" / "kh03.yml"
_ODS_CODE = re.compile(r"^[A-Z0-9]{3,5}$")
_FINANCIAL_YEAR = re.compile(r"^(\d{4})\s*[-/]\s*(\d{2})$")
# The national total row carries no organisation code.
_TOTAL_ROW_NAMES = {"england"}


@dataclass(frozen=True)
class Kh03Contract:
    header_search_rows: int
    file_suffixes: tuple[str, ...]
    columns: dict[str, tuple[str, ...]]  # field -> normalised header aliases
    group: tuple[str, ...]
    sectors: dict[str, tuple[str, ...]]
    quarter_start_months: dict[str, int]  # normalised Period End month -> quarter's first


def _group_label(text: str) -> str:
    """Group labels compare as written bar case and spacing: "% Occupied" is not
    "Occupied" (header normalisation would drop the % and make them one)."""
    return " ".join(str(text).lower().split())


@cache
def load_kh03_contract(path: Path = KH03_CONTRACT) -> Kh03Contract:
    spec = yaml.safe_load(path.read_text())

    def aliases(names: list[str]) -> tuple[str, ...]:
        return tuple(normalise_header(name) for name in names)

    return Kh03Contract(
        header_search_rows=int(spec["header_search_rows"]),
        file_suffixes=tuple(spec["file_suffixes"]),
        columns={field: aliases(names) for field, names in spec["columns"].items()},
        group=tuple(_group_label(name) for name in spec["group"]),
        sectors={sector: aliases(names) for sector, names in spec["sectors"].items()},
        quarter_start_months={
            normalise_header(month): int(first)
            for month, first in spec["quarter_end_months"].items()
        },
    )


@dataclass(frozen=True)
class Kh03Header:
    row: int  # 0-based row of the column row in the sheet
    columns: dict[str, int]  # field -> column position
    sectors: dict[str, int]  # sector -> column position of its Occupied figure


def find_header(grid: pl.DataFrame, contract: Kh03Contract, file_name: str) -> Kh03Header:
    """The column row (the first row holding every contract column) and, from the group
    row above it, the Occupied column of each sector. The group row's label spans its
    sectors (a merged cell is read as its first cell only), so it is carried rightwards."""
    rows = grid.head(contract.header_search_rows).rows()
    for index, row in enumerate(rows):
        cells = [normalise_header(cell) if cell is not None else "" for cell in row]
        columns = {
            field: cells.index(alias)
            for field, names in contract.columns.items()
            for alias in names
            if alias in cells
        }
        if set(columns) != set(contract.columns):
            continue
        groups: list[str] = []
        label = ""
        above = rows[index - 1] if index else ()
        for position in range(len(cells)):
            cell = above[position] if position < len(above) else None
            label = _group_label(cell) if cell is not None else label
            groups.append(label)
        sectors = {
            sector: position
            for sector, names in contract.sectors.items()
            for position, cell in enumerate(cells)
            if cell in names and groups[position] in contract.group
        }
        if set(sectors) != set(contract.sectors):
            missing = ", ".join(sorted(set(contract.sectors) - set(sectors)))
            raise FileRejected(
                file_name,
                "kh03_occupied_columns_missing",
                f"row {index + 1}: no Occupied column (group row above) for {missing}",
            )
        return Kh03Header(index, columns, sectors)
    raise FileRejected(
        file_name,
        "kh03_header_missing",
        f"no row among the first {contract.header_search_rows} of the first sheet holds the "
        "KH03 columns Year, Period End, Org Code and Org Name",
    )


def quarter_start(year: str | None, period_end: str | None, contract: Kh03Contract) -> date | None:
    """The first day of the quarter a row covers: financial year ``2020-21`` and Period End
    ``September`` -> 2020-07-01; March ends the year's last quarter (January of its second
    calendar year). None when either does not parse or the years do not follow on."""
    match = _FINANCIAL_YEAR.match((year or "").strip())
    first = contract.quarter_start_months.get(normalise_header(period_end or ""))
    if match is None or first is None:
        return None
    start_year = int(match.group(1))
    if (start_year + 1) % 100 != int(match.group(2)):
        return None
    return date(start_year + 1 if first < 4 else start_year, first, 1)


def _beds(text: str | None) -> float | None:
    try:
        value = float((text or "").replace(",", "").strip())
    except ValueError:
        return None
    return value if value >= 0 and value == value and value != float("inf") else None


@dataclass(frozen=True)
class Kh03Rows:
    good: pl.DataFrame  # org_code, quarter_start, sector, occupied_beds, source_line
    bad: pl.DataFrame  # source_line, raw_record, rules, reasons


GOOD_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "org_code": pl.String,
    "quarter_start": pl.Date,
    "sector": pl.String,
    "occupied_beds": pl.Float64,
    "source_line": pl.Int64,
}
BAD_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "source_line": pl.Int64,
    "raw_record": pl.String,
    "rules": pl.List(pl.String),
    "reasons": pl.String,
}


def judge_rows(
    grid: pl.DataFrame,
    header: Kh03Header,
    contract: Kh03Contract,
    *,
    file_name: str,
    known: set[str],
) -> Kh03Rows:
    """Every provider row below the header: a row breaking a rule is quarantined whole with
    every rule it breaks (``<file> line <n>: <rule>: <what>``); the England total row and
    blank rows are not records. KH03 is published aggregate data, so reasons may quote it."""
    good: list[dict] = []
    bad: list[dict] = []
    seen: set[tuple[str, date]] = set()
    for offset, row in enumerate(grid.slice(header.row + 1).rows()):
        line = header.row + 2 + offset

        def cell(position: int, row: tuple = row) -> str | None:
            value = row[position] if position < len(row) else None
            return value.strip() if isinstance(value, str) and value.strip() else None

        org = (cell(header.columns["org_code"]) or "").upper()
        name = cell(header.columns["org_name"]) or ""
        if not any(cell(p) for p in range(len(row))):
            continue
        if not org and name.lower() in _TOTAL_ROW_NAMES:
            continue
        problems: list[tuple[str, str]] = []
        start = quarter_start(
            cell(header.columns["year"]), cell(header.columns["period_end"]), contract
        )
        if start is None:
            problems.append(
                (
                    "quarter_unreadable",
                    f"Year {cell(header.columns['year'])!r} with Period End "
                    f"{cell(header.columns['period_end'])!r} is not a financial year "
                    "(2020-21) and the month a quarter ends (June, September, December, March)",
                )
            )
        if not org:
            problems.append(("missing_organisation", "no Org Code"))
        elif org not in known:
            shown = org if _ODS_CODE.match(org) else "(withheld: not an ODS code)"
            problems.append(
                ("unknown_organisation", f"Org Code {shown} is not in the organisation register")
            )
        figures = {sector: _beds(cell(position)) for sector, position in header.sectors.items()}
        for sector, value in figures.items():
            if value is None:
                problems.append(
                    (
                        "beds_not_a_number",
                        f"occupied beds ({sector}) {str(cell(header.sectors[sector]))[:20]!r} "
                        "is not a number of beds",
                    )
                )
        if org and start is not None:
            if (org, start) in seen:
                problems.append(("duplicate_row", f"{org} appears twice for the quarter"))
            seen.add((org, start))
        if problems:
            bad.append(
                {
                    "source_line": line,
                    "raw_record": json.dumps(
                        {"org_code": org if _ODS_CODE.match(org) else None, "line": line}
                    ),
                    "rules": [rule for rule, _ in problems],
                    "reasons": "; ".join(
                        f"{file_name} line {line}: {rule}: {what}" for rule, what in problems
                    ),
                }
            )
            continue
        for sector, value in figures.items():
            good.append(
                {
                    "org_code": org,
                    "quarter_start": start,
                    "sector": sector,
                    "occupied_beds": value,
                    "source_line": line,
                }
            )
    return Kh03Rows(pl.DataFrame(good, schema=GOOD_SCHEMA), pl.DataFrame(bad, schema=BAD_SCHEMA))


def read_kh03(data: bytes, file_name: str, *, known: set[str], max_unzipped_bytes: int) -> Kh03Rows:
    """A KH03 file's provider rows, judged (raises FileRejected for a file refused whole)."""
    contract = load_kh03_contract()
    suffix = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if suffix not in contract.file_suffixes:
        raise FileRejected(
            file_name, "unsupported_file_type", "KH03 is read as NHS England publishes it: XLSX"
        )
    grid = read_xlsx_grid(data, file_name, max_unzipped_bytes, keep_empty_rows=True)
    header = find_header(grid, contract, file_name)
    rows = judge_rows(grid, header, contract, file_name=file_name, known=known)
    if rows.good.height + rows.bad.height == 0:
        raise FileRejected(file_name, "empty_file", "the KH03 sheet has a header but no providers")
    return rows


def months_in_kh03(path: Path, *, max_unzipped_bytes: int) -> set[date]:
    """The months of the quarters a KH03 file holds (what a run must rebuild); empty when it
    cannot be read (ingest will say why)."""
    contract = load_kh03_contract()
    try:
        grid = read_xlsx_grid(
            path.read_bytes(), path.name, max_unzipped_bytes, keep_empty_rows=True
        )
        header = find_header(grid, contract, path.name)
    except Exception:  # any file: the run still ingests it and logs the reason
        return set()
    year, end = header.columns["year"], header.columns["period_end"]
    starts = {
        quarter_start(row[year], row[end], contract) for row in grid.slice(header.row + 1).rows()
    }
    return {add_months(start, i) for start in starts if start is not None for i in range(3)}


def judge_kh03(
    data: bytes, name: str, *, known: set[str], now: datetime, max_unzipped_bytes: int
) -> Judged:
    rows = read_kh03(data, name, known=known, max_unzipped_bytes=max_unzipped_bytes)
    providers = rows.good["source_line"].n_unique()

    def write(con: duckdb.DuckDBPyConnection, sid: int, digest: str) -> None:
        lineage = [
            pl.lit(sid, pl.Int64).alias("submission_id"),
            pl.lit(name).alias("source_file"),
            pl.lit(digest).alias("sha256"),
        ]
        insert_frame(con, "raw.kh03_beds", rows.good.with_columns(*lineage, loaded_at=pl.lit(now)))
        insert_frame(
            con,
            "raw.kh03_quarantine",
            rows.bad.with_columns(*lineage, quarantined_at=pl.lit(now)),
        )

    quarters = rows.good["quarter_start"]
    first: date | None = quarters.min() if quarters.len() else None  # type: ignore[assignment]
    last: date | None = quarters.max() if quarters.len() else None  # type: ignore[assignment]
    return Judged(
        layout=KH03_LAYOUT,
        rows_read=providers + rows.bad.height,
        rows_loaded=providers,
        rows_quarantined=rows.bad.height,
        write=write,
        log_extra={"period_min": first, "period_max": last},
    )


def ingest_kh03(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    *,
    landing_dir: Path | None = None,
    run_id: str | None = None,
    files: Iterable[tuple[Path, str]] | None = None,
) -> list[IntakeOutcome]:
    """Ingest every pending KH03 file under ``kh03_landing_dir`` in path order; a later
    file for the same organisation and quarter (a revised publication) supersedes an
    earlier one in ``stg_raw__kh03_bed_days``."""
    landing = landing_dir or settings.kh03_landing_dir
    if landing is None or not landing.exists():
        return []
    now = datetime.now(UTC).replace(tzinfo=None)
    ensure_incident_tables(con)
    known = set(known_organisations(con)["org_code"].to_list())
    loaded = dict(
        con.execute(
            "select sha256, min(submission_id) from raw.submission_log"
            " where status = 'loaded' and layout = ? group by 1",
            [KH03_LAYOUT],
        ).fetchall()
    )
    todo = (
        list(files)
        if files is not None
        else pending_landed(
            con,
            landing,
            layout_prefix=KH03_LAYOUT,
            max_file_bytes=settings.max_file_bytes,
            settle_seconds=settings.settle_seconds,
        )
    )

    def read(data: bytes, name: str) -> Judged:
        return judge_kh03(
            data,
            name,
            known=known,
            now=now,
            max_unzipped_bytes=settings.max_xlsx_inflated_bytes,
        )

    return [
        take_in(
            con,
            path,
            source_path,
            landing,
            layout_prefix=KH03_LAYOUT,
            read=read,
            max_file_bytes=settings.max_file_bytes,
            known=loaded,
            now=now,
            run_id=run_id,
            unreadable_rule="unreadable_kh03",
        )
        for path, source_path in todo
    ]
