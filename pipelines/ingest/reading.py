"""Turn a provider's bytes into an all-text frame, whatever encoding their system used."""

from __future__ import annotations

import io

import polars as pl

from pipelines.ingest.errors import FileRejected

_UTF8_BOM = b"\xef\xbb\xbf"


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


def read_text_csv(text: str, file_name: str) -> pl.DataFrame:
    """Every cell as text, plus ``source_line``: the 1-based line in the file, header = line 1."""
    if "\x00" in text:
        raise FileRejected(file_name, "binary_content", "file contains NUL bytes; not a CSV")
    try:
        frame = pl.read_csv(
            io.StringIO(text),
            infer_schema=False,
            truncate_ragged_lines=True,
        )
    except pl.exceptions.NoDataError as exc:
        raise FileRejected(file_name, "empty_file", "file has no header and no rows") from exc
    except pl.exceptions.ComputeError as exc:
        raise FileRejected(file_name, "unparseable_csv", str(exc).splitlines()[0]) from exc
    return frame.with_columns((pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias("source_line"))
