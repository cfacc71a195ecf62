"""An incident extract's bytes -> a frame of the allow-listed fields only.

The grid reader is the one survey exports use (CSV in any encoding and line ending, XLSX
through fastexcel after the shared zip-bomb rule). The header row is found by the contract
(title rows above it are skipped); then only the columns the contract keeps are selected.
Every other column is dropped here, unread beyond its header: nothing downstream can see
it, so no later step needs to remember to drop it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from pipelines.incidents.contract import IncidentContract, load_contracts, normalise_header
from pipelines.ingest.errors import FileRejected
from pipelines.surveys.grid import read_grid


@dataclass(frozen=True)
class KeptExtract:
    contract: IncidentContract
    # raw_<field> text columns for the kept fields (absent fields are null) and source_line
    frame: pl.DataFrame
    columns_dropped: int


def _match(contract: IncidentContract, header: list[str]) -> dict[str, list[int]] | None:
    """Field -> column positions when the row holds every required field, else None."""
    found: dict[str, list[int]] = {}
    for position, cell in enumerate(header):
        for field, aliases in contract.keep.items():
            if cell and cell in aliases:
                found.setdefault(field, []).append(position)
    if not set(contract.required) <= set(found):
        return None
    return found


def detect(grid: pl.DataFrame, file_name: str) -> tuple[IncidentContract, int, dict[str, int]]:
    """(contract, header row index, field -> column) of the first contract whose required
    columns one of the first rows holds; a field under two columns is refused (which one
    would be kept is a guess)."""
    contracts = load_contracts()
    search = max(c.header_search_rows for c in contracts)
    rows = grid.head(search).rows()
    for contract in contracts:
        suffix = "." + file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
        if suffix not in contract.file_suffixes:
            continue
        for index, row in enumerate(rows[: contract.header_search_rows]):
            header = [normalise_header(cell) if cell is not None else "" for cell in row]
            found = _match(contract, header)
            if found is None:
                continue
            doubled = sorted(field for field, cols in found.items() if len(cols) > 1)
            if doubled:
                raise FileRejected(
                    file_name,
                    "ambiguous_column",
                    f"row {index + 1}: more than one column is headed as {', '.join(doubled)} "
                    f"({contract.name}); keep one",
                )
            return contract, index, {field: cols[0] for field, cols in found.items()}
    needs = "; ".join(f"{c.name} needs {', '.join(c.required)}" for c in contracts)
    raise FileRejected(
        file_name,
        "unrecognised_layout",
        f"no row among the first {search} holds the columns of an incident contract ({needs})",
    )


def read_extract(data: bytes, file_name: str, *, max_unzipped_bytes: int) -> KeptExtract:
    """The allow-listed fields of an extract as text (``raw_<field>``) with the file's
    line number (``source_line``, 1-based, title and header rows counted)."""
    grid = read_grid(data, file_name, max_unzipped_bytes=max_unzipped_bytes, keep_empty_rows=True)
    contract, header_row, columns = detect(grid, file_name)
    body = grid.slice(header_row + 1)
    kept = body.select(
        pl.int_range(header_row + 2, header_row + 2 + body.height, dtype=pl.Int64).alias(
            "source_line"
        ),
        *[
            (
                pl.col(f"c{columns[field]}").cast(pl.String)
                if field in columns
                else pl.lit(None, pl.String)
            ).alias(f"raw_{field}")
            for field in contract.keep
        ],
    )
    # Rows with every kept cell blank (a spreadsheet's trailing rows) are not records.
    cells = [pl.col(f"raw_{f}").str.strip_chars().fill_null("") != "" for f in contract.keep]
    kept = kept.filter(pl.any_horizontal(cells))
    if kept.height == 0:
        raise FileRejected(file_name, "empty_file", "the extract has a header row but no records")
    return KeptExtract(contract, kept, columns_dropped=grid.width - len(columns))
