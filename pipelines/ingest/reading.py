"""Turn a provider's bytes into rows of text, whatever tool and encoding produced them.

CSV and XLSX are read into the same shape: a list of the first rows (to find the header
under any title rows) and then an all-text frame below the header, with ``source_line``
(the 1-based line or sheet row an engineer would look at).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import fastexcel
import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.ingest.files import check_xlsx_container

_UTF8_BOM = b"\xef\xbb\xbf"
SNIFF_ROWS = 30


@dataclass(frozen=True)
class RawTable:
    """A file as text: ``head`` for header detection, ``read_below`` for the data."""

    head: list[list[str | None]]
    text: str | None = None  # CSV
    sheet: pl.DataFrame | None = None  # XLSX, every cell as text, no header

    def read_below(self, header_row: int, file_name: str) -> pl.DataFrame:
        """Rows under ``header_row`` with the header's names, plus ``source_line``."""
        if self.sheet is not None:
            names = _unique_names(self.head[header_row])
            body = self.sheet.slice(header_row + 1)
            body = body.select(body.columns[: len(names)])
            body.columns = names[: body.width]
        else:
            try:
                body = pl.read_csv(
                    io.StringIO(self.text or ""),
                    skip_rows=header_row,
                    infer_schema=False,
                    truncate_ragged_lines=True,
                )
            except pl.exceptions.NoDataError as exc:
                raise FileRejected(file_name, "empty_file", "file has no rows") from exc
            except pl.exceptions.ComputeError as exc:
                detail = str(exc).splitlines()[0]
                raise FileRejected(file_name, "unparseable_csv", detail) from exc
        first_line = header_row + 2
        return body.with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64) + first_line).alias("source_line")
        )


def _unique_names(row: list[str | None]) -> list[str]:
    names, seen = [], {}
    for i, cell in enumerate(row):
        name = (cell or "").strip() or f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            name = f"{name}_duplicated_{seen[name]}"
        else:
            seen[name] = 0
        names.append(name)
    return names


def decode(data: bytes, file_name: str) -> str:
    """UTF-8 (with or without BOM) first, then Windows-1252, the usual Excel-on-Windows export.

    cp1252 leaves five byte values undefined; a file using them is not text we can trust.
    """
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise FileRejected(
            file_name,
            "unreadable_encoding",
            f"not UTF-8 or Windows-1252 (byte 0x{data[exc.start]:02x} at offset {exc.start})",
        ) from exc


def read_csv_table(data: bytes, file_name: str) -> RawTable:
    if b"\x00" in data:
        raise FileRejected(file_name, "binary_content", "file contains NUL bytes; not a CSV")
    text = decode(data, file_name)
    if not text.strip():
        raise FileRejected(file_name, "empty_file", "file has no header and no rows")
    head_text = "\n".join(text.splitlines()[:SNIFF_ROWS])
    head = [[c or None for c in row] for row in csv.reader(io.StringIO(head_text))]
    return RawTable(head=head, text=text)


def read_xlsx_table(data: bytes, file_name: str, max_inflated_bytes: int) -> RawTable:
    """The first sheet, every cell as text (dates arrive as Excel serial numbers); the zip is
    judged first by the shared container rule (zip bombs, lying sizes)."""
    check_xlsx_container(data, file_name, max_inflated_bytes)
    try:
        sheet = (
            fastexcel.read_excel(data)
            .load_sheet(0, header_row=None, dtypes="string", skip_whitespace_tail_rows=True)
            .to_polars()
        )
    except Exception as exc:  # fastexcel raises its own hierarchy; any failure = unreadable
        raise FileRejected(file_name, "unreadable_xlsx", str(exc).splitlines()[0]) from exc
    if sheet.height == 0:
        raise FileRejected(file_name, "empty_file", "first worksheet is empty")
    head = [list(row) for row in sheet.head(SNIFF_ROWS).iter_rows()]
    return RawTable(head=head, sheet=sheet)


def read_table(data: bytes, file_name: str, suffix: str, max_inflated_bytes: int) -> RawTable:
    if suffix == ".xlsx":
        return read_xlsx_table(data, file_name, max_inflated_bytes)
    if suffix in (".csv", ".txt"):
        return read_csv_table(data, file_name)
    raise FileRejected(
        file_name, "unsupported_file_type", f"'{suffix}' files are not read; send CSV or XLSX"
    )
