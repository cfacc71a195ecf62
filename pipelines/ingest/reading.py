"""Turn a provider's bytes into rows of text, whatever tool and encoding produced them.

CSV and XLSX are read into the same shape: a list of the first rows (to find the header
under any title rows) and then an all-text frame below the header, columns named by
position (``c0``, ``c1``, ...), with ``source_line`` (the 1-based line or sheet row an
engineer would look at).

Before either, the bytes are asked what they are (:func:`real_format`): a legacy ``.xls``
renamed ``.xlsx`` or a PDF named ``.csv`` is refused naming what it is, so the provider
knows what to do, instead of a reader's error. Text may be UTF-16 (Excel's "Unicode text")
and separated by commas, semicolons (Excel's CSV in many European locales), tabs or pipes:
the separator is sniffed (:func:`sniff_delimiter`) and named in any layout message.
Line endings (CRLF, LF, a lone CR, or a mix) are normalised after decoding.

Every table can also count its data records a second, independent way (Python's csv
module over the text; the sheet's XML for XLSX), so a record the parser loses shows up in
the reconciliation instead of vanishing.
"""

from __future__ import annotations

import csv
import io
import zipfile
import zlib
from dataclasses import dataclass
from operator import itemgetter

import fastexcel
import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.ingest.files import check_xlsx_container
from pipelines.ingest.xlsx_facts import SheetFacts, read_sheet_facts, shared_string_blanks

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


def column_name(position: int) -> str:
    """The name of the column at ``position`` (0-based) in a frame from ``read_below``."""
    return f"c{position}"


@dataclass(frozen=True)
class RawTable:
    """A file as text: ``head`` for header detection, ``read_below`` for the data."""

    head: list[list[str | None]]
    text: str | None = None  # CSV, line endings normalised to \n
    head_lines: tuple[int, ...] = ()  # CSV: the 0-based line each head record starts on
    sheet: pl.DataFrame | None = None  # XLSX, every cell as text, no header
    delimiter: str = ","  # CSV: the sniffed field separator
    sheet_name: str | None = None  # XLSX: which worksheet this is
    facts: SheetFacts | None = None  # XLSX: hidden rows, formulas, errors (from the XML)

    def describe(self) -> str:
        """How the file was read, for messages: "semicolon-separated", "sheet 'Data'"."""
        if self.sheet is not None:
            return f"sheet {self.sheet_name!r}"
        return f"{DELIMITERS.get(self.delimiter, repr(self.delimiter))}-separated"

    def header_line(self, header_row: int) -> int:
        """0-based physical line (CSV) or sheet row (XLSX) of the header."""
        return self.head_lines[header_row] if self.text is not None else header_row

    def read_below(self, header_row: int, file_name: str) -> pl.DataFrame:
        """Rows under ``header_row``, columns named by position, plus ``source_line``."""
        if self.sheet is not None:
            body = self.sheet.slice(header_row + 1)
            body.columns = [column_name(i) for i in range(body.width)]
            body = self._with_error_text(body, header_row)
        else:
            try:
                body = pl.read_csv(
                    io.StringIO(self.text or ""),
                    separator=self.delimiter,
                    skip_lines=self.header_line(header_row),
                    infer_schema=False,
                    truncate_ragged_lines=True,
                )
            except pl.exceptions.NoDataError as exc:
                raise FileRejected(file_name, "empty_file", "file has no rows") from exc
            except pl.exceptions.ComputeError as exc:
                detail = str(exc).splitlines()[0]
                raise FileRejected(file_name, "unparseable_csv", detail) from exc
            body.columns = [column_name(i) for i in range(body.width)]
        first_line = self.header_line(header_row) + 2
        return body.with_columns(
            (pl.int_range(pl.len(), dtype=pl.Int64) + first_line).alias("source_line")
        )

    def _with_error_text(self, body: pl.DataFrame, header_row: int) -> pl.DataFrame:
        """fastexcel reads an error cell (``#DIV/0!``, ``#REF!``) as empty; put the error
        back, so the row is refused for what the provider sees instead of read as blank."""
        if self.facts is None:
            return body
        for row, position, text in self.facts.errors(header_row, range(body.width)):
            index = row - header_row - 2
            if index >= body.height:  # a last row of errors only: fastexcel trimmed it
                padding = pl.DataFrame(schema=body.schema).clear(index + 1 - body.height)
                body = pl.concat([body, padding])
            if index >= 0:
                name = column_name(position)
                body = body.with_columns(
                    pl.when(pl.int_range(pl.len()) == index)
                    .then(pl.lit(text))
                    .otherwise(pl.col(name))
                    .alias(name)
                )
        return body

    def scan_records(self, header_row: int, positions: list[int]) -> tuple[int, str | None]:
        """(data records under the header with a value in any column read, why the file
        looks cut off or None), found without the parser ``read_below`` uses: the sheet's
        XML for XLSX, Python's csv module for CSV.

        A CSV looks cut off when a quoted field never closes, or when its last line stops
        before the last column read and has no line end."""
        if self.facts is not None:
            return len(self.facts.records(header_row, positions)), None
        skip = self.header_line(header_row) + 1
        try:
            records, last = self._count(skip, positions, strict=True)
        except _Unclosed as unclosed:
            return unclosed.records, (
                f"the record starting on line {unclosed.line} opens a quoted field that never "
                "closes: the file ends inside it"
            )
        except csv.Error:
            # An irregularity strict mode refuses and the parser tolerates (a stray quote
            # inside a field): count the way a lenient reader does.
            records, last = self._count(skip, positions, strict=False)
        needed = max(positions, default=-1) + 1
        if last and not (self.text or "").endswith("\n") and len(last) < needed:
            return records, (
                f"its last line has {len(last)} of the {needed} fields the header needs, "
                "and no line end"
            )
        return records, None

    def _count(self, skip: int, positions: list[int], *, strict: bool) -> tuple[int, list[str]]:
        """(records with a value in a column read, the last non-empty record)."""
        lines = io.StringIO(self.text or "")
        for _ in range(skip):
            lines.readline()
        reader = csv.reader(lines, delimiter=self.delimiter, strict=strict)
        records, last, start = 0, [], skip + 1
        width = max(positions, default=-1) + 1
        pick = itemgetter(*positions, 0)  # 0: always a tuple, whatever len(positions)
        try:
            for record in reader:
                if record:
                    last = record
                values = (
                    pick(record)[:-1]
                    if len(record) >= width
                    else ([record[p] for p in positions if p < len(record)])
                )
                if "".join(values).strip():
                    records += 1
                start = skip + reader.line_num + 1
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise _Unclosed(records, start) from exc
            raise
        return records, last


class _Unclosed(Exception):
    """The text ends inside a quoted field."""

    def __init__(self, records: int, line: int) -> None:
        super().__init__(f"quoted field from line {line} never closes")
        self.records = records
        self.line = line


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


def normalise_line_endings(text: str) -> str:
    """CRLF (Windows), LF (Unix) and a lone CR (classic Mac OS, some exports) all end a line,
    even mixed in one file; the parser is given plain LF. A CR inside a quoted field
    becomes LF too, which changes no value we read."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_csv_table(data: bytes, file_name: str) -> RawTable:
    """Decode (UTF-16, UTF-8 or Windows-1252), normalise line endings, sniff the separator,
    then read the head records with the line each starts on (a quoted field may hold a
    line break, so records and lines differ)."""
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
    text = normalise_line_endings(text)
    if not text.strip():
        raise FileRejected(file_name, "empty_file", "file has no header and no rows")
    head_lines = text.split("\n", SNIFF_ROWS)[:SNIFF_ROWS]
    delimiter = sniff_delimiter(head_lines)
    reader = csv.reader(io.StringIO("\n".join(head_lines)), delimiter=delimiter)
    head, starts, line = [], [], 0
    try:
        for row in reader:
            head.append([c or None for c in row])
            starts.append(line)
            line = reader.line_num
    except csv.Error:
        pass  # a quoted field running past the sniffed lines: the rows before it are the head
    return RawTable(head=head, text=text, head_lines=tuple(starts), delimiter=delimiter)


def read_xlsx_tables(data: bytes, file_name: str, max_inflated_bytes: int) -> list[RawTable]:
    """Every non-empty worksheet, in workbook order, every cell as text (dates arrive as
    Excel serial numbers) from its first row (``skip_rows=0``: frame row i is sheet row
    i + 1), each with its own sheet facts (hidden rows and columns, formulas, error cells,
    from the XML): the caller picks the one whose header a contract reads, so an
    instructions sheet in front of the data is no longer "the file". The zip is judged first
    by the shared container rule (zip bombs, lying sizes)."""
    check_xlsx_container(data, file_name, max_inflated_bytes)
    sheets = []
    try:
        reader = fastexcel.read_excel(data)
        for index, name in enumerate(reader.sheet_names):
            sheet = reader.load_sheet(
                index,
                header_row=None,
                skip_rows=0,
                dtypes="string",
                skip_whitespace_tail_rows=True,
            ).to_polars()
            if sheet.height:
                sheets.append((name, sheet))
    except Exception as exc:  # fastexcel raises its own hierarchy; any failure = unreadable
        raise FileRejected(file_name, "unreadable_xlsx", str(exc).splitlines()[0]) from exc
    if not sheets:
        raise FileRejected(file_name, "empty_file", "every worksheet is empty")
    tables = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            blank_strings = shared_string_blanks(archive, file_name)
            for name, sheet in sheets:
                facts = read_sheet_facts(archive, file_name, name, blank_strings=blank_strings)
                if facts.last_col and sheet.width != facts.last_col - facts.first_col + 1:
                    raise FileRejected(
                        file_name,
                        "unreadable_xlsx",
                        f"sheet {name!r}: its cells span columns {facts.first_col}-"
                        f"{facts.last_col} but {sheet.width} columns were read",
                    )
                head = [list(row) for row in sheet.head(SNIFF_ROWS).iter_rows()]
                tables.append(RawTable(head=head, sheet=sheet, sheet_name=name, facts=facts))
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # A member that does not inflate to what the zip directory says (fastexcel may
        # not have needed it): the workbook is damaged.
        raise FileRejected(file_name, "unreadable_xlsx", f"damaged workbook part: {exc}") from exc
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
