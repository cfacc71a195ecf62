"""An export's bytes as a grid of text cells, header rows included, from CSV or XLSX.

Survey exports carry one to three header rows, so nothing here assumes a header: the
layout is decided afterwards (:mod:`pipelines.surveys.layouts`). Every cell is text; an
empty cell is null. Columns are named ``c0, c1, ...`` by position only so they can be
addressed until the layout names them; nothing is ever matched by position.
"""

from __future__ import annotations

import io

import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.ingest.files import check_xlsx_container
from pipelines.ingest.reading import decode, normalise_line_endings


def _named(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.rename({old: f"c{i}" for i, old in enumerate(frame.columns)})


def read_xlsx_grid(
    data: bytes, file_name: str, max_unzipped_bytes: int, *, keep_empty_rows: bool = False
) -> pl.DataFrame:
    """First sheet of an XLSX as text cells (fastexcel, via polars), once the zip has passed
    the container rule measure returns pass too (zip bombs, lying sizes). With
    ``keep_empty_rows`` a blank row stays, so row n of the grid is row n of the sheet (a
    reason can name the line the provider sees)."""
    check_xlsx_container(data, file_name, max_unzipped_bytes)
    try:
        frame = pl.read_excel(
            io.BytesIO(data),
            engine="calamine",
            sheet_id=1,
            has_header=False,
            infer_schema_length=0,
            drop_empty_rows=not keep_empty_rows,
        )
    except pl.exceptions.NoDataError as exc:
        raise FileRejected(file_name, "empty_file", "the first sheet is empty") from exc
    except Exception as exc:  # fastexcel raises its own exception types for bad workbooks
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FileRejected(file_name, "unreadable_xlsx", detail[:200]) from exc
    return _named(frame.select(pl.all().cast(pl.String)))


def read_csv_grid(data: bytes, file_name: str) -> pl.DataFrame:
    """A CSV export as text cells: UTF-8 (BOM or not) or Windows-1252, quoted newlines kept,
    any line ending (a lone CR from an old Mac export would otherwise be one long row)."""
    text = normalise_line_endings(decode(data, file_name))
    if "\x00" in text:
        raise FileRejected(file_name, "binary_content", "file contains NUL bytes; not a CSV")
    if not text.strip():
        raise FileRejected(file_name, "empty_file", "file has no header and no rows")
    try:
        frame = pl.read_csv(
            io.StringIO(text), has_header=False, infer_schema=False, truncate_ragged_lines=True
        )
    except pl.exceptions.NoDataError as exc:
        raise FileRejected(file_name, "empty_file", "file has no header and no rows") from exc
    except pl.exceptions.ComputeError as exc:
        raise FileRejected(file_name, "unparseable_csv", str(exc).splitlines()[0]) from exc
    return _named(frame)


def read_grid(
    data: bytes, file_name: str, *, max_unzipped_bytes: int, keep_empty_rows: bool = False
) -> pl.DataFrame:
    """Dispatch on the file extension: ``.csv`` or ``.xlsx``; anything else is refused."""
    suffix = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if suffix == "xlsx":
        return read_xlsx_grid(data, file_name, max_unzipped_bytes, keep_empty_rows=keep_empty_rows)
    if suffix == "csv":
        return read_csv_grid(data, file_name)
    raise FileRejected(
        file_name, "unsupported_file_type", f"'.{suffix}' exports are not read; send CSV or XLSX"
    )
