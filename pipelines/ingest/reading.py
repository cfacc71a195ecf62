"""Turn a provider's bytes into rows of text, whatever tool and encoding produced them.

CSV and XLSX are read into the same shape: a list of the first rows (to find the header
under any title rows) and then an all-text frame below the header, with ``source_line``
(the 1-based line or sheet row an engineer would look at).

Before either, the bytes are asked what they are (:func:`real_format`): a legacy ``.xls``
renamed ``.xlsx`` or a PDF named ``.csv`` is refused naming what it is, so the provider
knows what to do, instead of a reader's error. Text may be UTF-16 (Excel's "Unicode text")
and separated by commas, semicolons (Excel's CSV in many European locales), tabs or pipes:
the separator is sniffed (:func:`sniff_delimiter`) and named in any layout message.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
import zipfile
from dataclasses import dataclass
from xml.etree import ElementTree

import fastexcel
import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.ingest.files import check_xlsx_container

_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = {b"\xff\xfe": "utf-16-le", b"\xfe\xff": "utf-16-be"}
SNIFF_ROWS = 30
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}

# Leading bytes of formats providers send by mistake, with what to tell them.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Excel 97-2003 workbook (.xls)"),
    (b"%PDF", "PDF document"),
    (b"\x1f\x8b", "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!", "RAR archive"),
    (b"\x89PNG", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"{\\rtf", "RTF document"),
)


@dataclass(frozen=True)
class RawTable:
    """A file as text: ``head`` for header detection, ``read_below`` for the data."""

    head: list[list[str | None]]
    text: str | None = None  # CSV
    sheet: pl.DataFrame | None = None  # XLSX, every cell as text, no header
    delimiter: str = ","  # CSV: the sniffed field separator
    sheet_name: str | None = None  # XLSX: which worksheet this is

    def describe(self) -> str:
        """How the file was read, for messages: "semicolon-separated", "sheet 'Data'"."""
        if self.sheet is not None:
            return f"sheet {self.sheet_name!r}"
        return f"{DELIMITERS.get(self.delimiter, repr(self.delimiter))}-separated"

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
                    separator=self.delimiter,
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


def utf16_encoding(data: bytes) -> str | None:
    """The UTF-16 flavour of ``data``, if it is UTF-16 text: by its byte-order mark (Excel's
    "Unicode text" writes one), or, without one, by the NUL high bytes of ASCII text."""
    for bom, encoding in _UTF16_BOMS.items():
        if data.startswith(bom):
            return encoding
    sample = data[:4096]
    if len(sample) >= 4 and len(sample) % 2 == 0:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) == len(odd) and even.count(0) == 0:
            return "utf-16-le"
        if even.count(0) == len(even) and odd.count(0) == 0:
            return "utf-16-be"
    return None


def real_format(data: bytes) -> str | None:
    """What the bytes are, when they are a known format that is not CSV text: the name a
    provider would recognise, or None (text, or an XLSX zip, or unknown)."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data.startswith(b"PK\x03\x04"):
        return "Excel workbook (.xlsx)" if b"xl/" in data[:65536] else "ZIP archive"
    start = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html", b"<table")):
        return "web page (HTML)"
    if start.startswith(b"<?xml"):
        return "XML document"
    return None


def sniff_delimiter(lines: list[str]) -> str:
    """The field separator that splits the most lines into the same number (>1) of fields.

    Title rows hold no separator and do not vote; a decimal comma inside a semicolon file
    splits only some lines, so commas lose to the semicolon that splits every line alike.
    Ties go to the comma, then ``;``, tab, ``|`` (the order of :data:`DELIMITERS`).
    """
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter) if len(row) > 1]
        if not counts:
            continue
        modal = max(set(counts), key=lambda n: (counts.count(n), n))
        score = (counts.count(modal), modal)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def read_csv_table(data: bytes, file_name: str) -> RawTable:
    encoding = utf16_encoding(data)
    if encoding is not None:
        try:
            text = data.decode(encoding).removeprefix("\ufeff")
        except UnicodeDecodeError as exc:
            raise FileRejected(
                file_name, "unreadable_encoding", f"starts as {encoding} text but is not: {exc}"
            ) from exc
        if "\x00" in text:
            raise FileRejected(file_name, "binary_content", "file contains NUL characters")
    else:
        if b"\x00" in data:
            raise FileRejected(
                file_name,
                "binary_content",
                "file contains NUL bytes and is not UTF-16 text; not a CSV",
            )
        text = decode(data, file_name)
    if not text.strip():
        raise FileRejected(file_name, "empty_file", "file has no header and no rows")
    lines = text.splitlines()[:SNIFF_ROWS]
    delimiter = sniff_delimiter(lines)
    head = [[c or None for c in row] for row in csv.reader(lines, delimiter=delimiter)]
    return RawTable(head=head, text=text, delimiter=delimiter)


_MAIN_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_CELL_REF = re.compile(r"([A-Z]+)(\d+)")


def _cell_position(ref: str) -> tuple[int, int] | None:
    match = _CELL_REF.fullmatch(ref or "")
    if not match:
        return None
    column = 0
    for letter in match[1]:
        column = column * 26 + ord(letter) - 64
    return int(match[2]) - 1, column - 1


def _sheet_error_cells(data: bytes) -> dict[str, list[tuple[int, int, str]]]:
    """Per sheet name, the cells holding an Excel error value (``#DIV/0!``...) as (row,
    column, value) relative to the sheet's first used cell, as the reader's frame is.

    The spreadsheet reader gives such cells as empty, which would make a failed formula
    "blank"; they are read from the sheet XML instead (only sheets that hold one).
    """
    found: dict[str, list[tuple[int, int, str]]] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        if "xl/workbook.xml" not in names or "xl/_rels/workbook.xml.rels" not in names:
            return found
        targets = {
            rel.get("Id"): rel.get("Target", "")
            for rel in ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
        }
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        for sheet in workbook.iter(f"{_MAIN_NS}sheet"):
            target = targets.get(sheet.get(f"{_REL_NS}id"), "")
            path = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
            path = posixpath.normpath(path)
            if path not in names:
                continue
            xml = archive.read(path)
            if b't="e"' not in xml:
                continue
            used, errors = [], []
            for cell in ElementTree.fromstring(xml).iter(f"{_MAIN_NS}c"):
                position = _cell_position(cell.get("r", ""))
                value = cell.find(f"{_MAIN_NS}v")
                if position is None or (value is None and cell.find(f"{_MAIN_NS}is") is None):
                    continue
                used.append(position)
                if cell.get("t") == "e" and value is not None and value.text:
                    errors.append((*position, value.text))
            if errors:
                top = min(r for r, _ in used)
                left = min(c for _, c in used)
                found[sheet.get("name", "")] = [(r - top, c - left, v) for r, c, v in errors]
    return found


def _with_error_values(sheet: pl.DataFrame, cells: list[tuple[int, int, str]]) -> pl.DataFrame:
    columns = {name: sheet[name].to_list() for name in sheet.columns}
    for row, column, value in cells:
        if 0 <= row < sheet.height and 0 <= column < sheet.width:
            columns[sheet.columns[column]][row] = value
    return pl.DataFrame(columns, schema=sheet.schema)


def read_xlsx_tables(data: bytes, file_name: str, max_inflated_bytes: int) -> list[RawTable]:
    """Every non-empty worksheet, in workbook order, every cell as text (dates arrive as
    Excel serial numbers): the caller picks the one whose header a contract reads, so an
    instructions sheet in front of the data is no longer "the file". The zip is judged first
    by the shared container rule (zip bombs, lying sizes)."""
    check_xlsx_container(data, file_name, max_inflated_bytes)
    tables = []
    try:
        reader = fastexcel.read_excel(data)
        error_cells = _sheet_error_cells(data)
        for index, name in enumerate(reader.sheet_names):
            sheet = reader.load_sheet(
                index, header_row=None, dtypes="string", skip_whitespace_tail_rows=True
            ).to_polars()
            if name in error_cells:
                sheet = _with_error_values(sheet, error_cells[name])
            if sheet.height:
                head = [list(row) for row in sheet.head(SNIFF_ROWS).iter_rows()]
                tables.append(RawTable(head=head, sheet=sheet, sheet_name=name))
    except Exception as exc:  # fastexcel raises its own hierarchy; any failure = unreadable
        raise FileRejected(file_name, "unreadable_xlsx", str(exc).splitlines()[0]) from exc
    if not tables:
        raise FileRejected(file_name, "empty_file", "every worksheet is empty")
    return tables


def read_xlsx_table(data: bytes, file_name: str, max_inflated_bytes: int) -> RawTable:
    """The first non-empty worksheet (see :func:`read_xlsx_tables` to choose among them)."""
    return read_xlsx_tables(data, file_name, max_inflated_bytes)[0]


def _looks_like_text(sample: bytes) -> bool:
    """Printable text in any of the encodings we read (a CSV saved under an .xlsx name)."""
    encoding = utf16_encoding(sample)
    try:
        text = sample.decode(encoding) if encoding else decode(sample, "")
    except (UnicodeDecodeError, FileRejected):
        return False
    return all(c.isprintable() or c in "\r\n\t\ufeff" for c in text)


def _misnamed(file_name: str, suffix: str, what: str) -> FileRejected:
    advice = {
        "Excel workbook (.xlsx)": "rename it .xlsx",
        "legacy Excel 97-2003 workbook (.xls)": "save it as .xlsx or CSV",
        "text file (CSV?)": "rename it .csv",
    }.get(what, "send CSV or XLSX")
    return FileRejected(
        file_name,
        "unsupported_file_type",
        f"a {what} named {suffix or 'without extension'}: {advice}",
    )


def read_tables(
    data: bytes, file_name: str, suffix: str, max_inflated_bytes: int
) -> list[RawTable]:
    """The candidate tables of a file: one for a CSV, one per non-empty worksheet for an
    XLSX. A file whose bytes are another format than its name says is refused naming it."""
    what = real_format(data)
    if suffix == ".xlsx":
        if what is not None and what != "Excel workbook (.xlsx)" and what != "ZIP archive":
            raise _misnamed(file_name, suffix, what)
        if what is None and data and _looks_like_text(data[:4096]):
            raise _misnamed(file_name, suffix, "text file (CSV?)")
        return read_xlsx_tables(data, file_name, max_inflated_bytes)
    if suffix in (".csv", ".txt"):
        if what is not None:
            raise _misnamed(file_name, suffix, what)
        return [read_csv_table(data, file_name)]
    raise FileRejected(
        file_name,
        "unsupported_file_type",
        f"'{suffix}' files are not read; send CSV or XLSX"
        + (f" (this one is a {what})" if what else ""),
    )


def read_table(data: bytes, file_name: str, suffix: str, max_inflated_bytes: int) -> RawTable:
    """The first candidate table of a file (:func:`read_tables`)."""
    return read_tables(data, file_name, suffix, max_inflated_bytes)[0]
