"""Turn a provider's bytes into rows of text, whatever tool and encoding produced them.

CSV and XLSX are read into the same shape: a list of the first rows (to find the header
under any title rows) and then an all-text frame below the header, columns named by
position (``c0``, ``c1``, ...), with ``source_line`` (the 1-based line or sheet row an
engineer would look at).

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
from pipelines.ingest.xlsx_facts import SheetFacts, read_sheet_facts

_UTF8_BOM = b"\xef\xbb\xbf"
SNIFF_ROWS = 30


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
    facts: SheetFacts | None = None  # XLSX: hidden rows, formulas, errors (from the XML)

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
        reader = csv.reader(lines, strict=strict)
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


def normalise_line_endings(text: str) -> str:
    """CRLF (Windows), LF (Unix) and a lone CR (classic Mac OS, some exports) all end a line,
    even mixed in one file; the parser is given plain LF. A CR inside a quoted field
    becomes LF too, which changes no value we read."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_csv_table(data: bytes, file_name: str) -> RawTable:
    if b"\x00" in data:
        raise FileRejected(file_name, "binary_content", "file contains NUL bytes; not a CSV")
    text = normalise_line_endings(decode(data, file_name))
    if not text.strip():
        raise FileRejected(file_name, "empty_file", "file has no header and no rows")
    head_text = "\n".join(text.split("\n", SNIFF_ROWS)[:SNIFF_ROWS])
    reader = csv.reader(io.StringIO(head_text))
    head, starts, line = [], [], 0
    try:
        for row in reader:
            head.append([c or None for c in row])
            starts.append(line)
            line = reader.line_num
    except csv.Error:
        pass  # a quoted field running past the sniffed lines: the rows before it are the head
    return RawTable(head=head, text=text, head_lines=tuple(starts))


def check_xlsx_container(data: bytes, file_name: str, max_inflated_bytes: int) -> None:
    """XLSX is a zip: refuse one that is not, or that would inflate past the limit (a zip
    bomb), judged from the central directory before anything is decompressed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except zipfile.BadZipFile as exc:
        raise FileRejected(file_name, "unreadable_xlsx", f"not a valid XLSX (zip): {exc}") from exc
    inflated = sum(member.file_size for member in members)
    if inflated > max_inflated_bytes:
        raise FileRejected(
            file_name,
            "xlsx_inflates_too_far",
            f"declares {inflated} bytes uncompressed, over the limit of {max_inflated_bytes}",
        )
    if not any(m.filename.startswith("xl/worksheets/") for m in members):
        raise FileRejected(file_name, "unreadable_xlsx", "zip holds no Excel worksheet")


def read_xlsx_table(data: bytes, file_name: str, max_inflated_bytes: int) -> RawTable:
    """The first sheet, every cell as text (dates arrive as Excel serial numbers), from its
    first row (``skip_rows=0``: frame row i is sheet row i + 1), and the sheet's facts."""
    check_xlsx_container(data, file_name, max_inflated_bytes)
    try:
        sheet = (
            fastexcel.read_excel(data)
            .load_sheet(
                0, header_row=None, skip_rows=0, dtypes="string", skip_whitespace_tail_rows=True
            )
            .to_polars()
        )
    except Exception as exc:  # fastexcel raises its own hierarchy; any failure = unreadable
        raise FileRejected(file_name, "unreadable_xlsx", str(exc).splitlines()[0]) from exc
    if sheet.height == 0:
        raise FileRejected(file_name, "empty_file", "first worksheet is empty")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            facts = read_sheet_facts(archive, file_name)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        # A member that does not inflate to what the zip directory says (fastexcel may
        # not have needed it): the workbook is damaged.
        raise FileRejected(file_name, "unreadable_xlsx", f"damaged workbook part: {exc}") from exc
    if facts.last_col and sheet.width != facts.last_col - facts.first_col + 1:
        raise FileRejected(
            file_name,
            "unreadable_xlsx",
            f"the sheet's cells span columns {facts.first_col}-{facts.last_col} but "
            f"{sheet.width} columns were read",
        )
    head = [list(row) for row in sheet.head(SNIFF_ROWS).iter_rows()]
    return RawTable(head=head, sheet=sheet, facts=facts)


def read_table(data: bytes, file_name: str, suffix: str, max_inflated_bytes: int) -> RawTable:
    if suffix == ".xlsx":
        return read_xlsx_table(data, file_name, max_inflated_bytes)
    if suffix in (".csv", ".txt"):
        return read_csv_table(data, file_name)
    raise FileRejected(
        file_name, "unsupported_file_type", f"'{suffix}' files are not read; send CSV or XLSX"
    )
