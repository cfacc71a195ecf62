"""An export's bytes as a grid of text cells, header rows included, from CSV or XLSX.

Survey exports carry one to three header rows, so nothing here assumes a header: the
layout is decided afterwards (:mod:`pipelines.surveys.layouts`). Every cell is text; an
empty cell is null. Columns are named ``c0, c1, ...`` by position only so they can be
addressed until the layout names them; nothing is ever matched by position.
"""

from __future__ import annotations

import io
import zipfile
import zlib

import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.ingest.reading import decode

_MAX_ZIP_ENTRIES = 10_000
_READ_CHUNK = 1 << 20


def check_xlsx_container(data: bytes, file_name: str, max_unzipped_bytes: int) -> None:
    """Refuse an XLSX that is not a sound zip or would expand beyond ``max_unzipped_bytes``.

    First the sizes the central directory declares are added up, before anything is
    inflated: a zip bomb is refused at the cost of reading its directory. Then every entry
    is inflated once, in chunks, by Python's zipfile, which stops at the declared size and
    checks the CRC: a file that lies about its sizes is refused here instead of being
    handed to the spreadsheet reader, which trusts them.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise FileRejected(file_name, "unreadable_xlsx", f"not a valid XLSX (zip): {exc}") from exc
    with archive:
        entries = archive.infolist()
        if len(entries) > _MAX_ZIP_ENTRIES:
            raise FileRejected(
                file_name, "zip_bomb", f"{len(entries)} zip entries; at most {_MAX_ZIP_ENTRIES}"
            )
        declared = sum(entry.file_size for entry in entries)
        if declared > max_unzipped_bytes:
            raise FileRejected(
                file_name,
                "zip_bomb",
                f"XLSX declares {declared} bytes uncompressed, over the limit of "
                f"{max_unzipped_bytes}",
            )
        try:
            for entry in entries:
                with archive.open(entry) as member:
                    while member.read(_READ_CHUNK):
                        pass
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise FileRejected(
                file_name, "unreadable_xlsx", f"zip entry does not match its directory: {exc}"
            ) from exc


def _named(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.rename({old: f"c{i}" for i, old in enumerate(frame.columns)})


def read_xlsx_grid(data: bytes, file_name: str, max_unzipped_bytes: int) -> pl.DataFrame:
    """First sheet of an XLSX as text cells (fastexcel, via polars)."""
    check_xlsx_container(data, file_name, max_unzipped_bytes)
    try:
        frame = pl.read_excel(
            io.BytesIO(data),
            engine="calamine",
            sheet_id=1,
            has_header=False,
            infer_schema_length=0,
        )
    except pl.exceptions.NoDataError as exc:
        raise FileRejected(file_name, "empty_file", "the first sheet is empty") from exc
    except Exception as exc:  # fastexcel raises its own exception types for bad workbooks
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FileRejected(file_name, "unreadable_xlsx", detail[:200]) from exc
    return _named(frame.select(pl.all().cast(pl.String)))


def read_csv_grid(data: bytes, file_name: str) -> pl.DataFrame:
    """A CSV export as text cells: UTF-8 (BOM or not) or Windows-1252, quoted newlines kept."""
    text = decode(data, file_name)
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


def read_grid(data: bytes, file_name: str, *, max_unzipped_bytes: int) -> pl.DataFrame:
    """Dispatch on the file extension: ``.csv`` or ``.xlsx``; anything else is refused."""
    suffix = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
    if suffix == "xlsx":
        return read_xlsx_grid(data, file_name, max_unzipped_bytes)
    if suffix == "csv":
        return read_csv_grid(data, file_name)
    raise FileRejected(
        file_name, "unsupported_file_type", f"'.{suffix}' exports are not read; send CSV or XLSX"
    )
