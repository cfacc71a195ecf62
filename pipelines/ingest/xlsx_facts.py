"""What an XLSX sheet holds beyond its cell values: hidden rows, columns and sheets,
formulas whose results were never calculated, error cells, and where every value sits.

fastexcel (calamine) reads the values, and tells whether a sheet is visible, but not
whether a row is hidden, whether a formula's result was cached, or which cells hold an
Excel error (it reads those as empty). Those facts live in the workbook's XML, so this
module reads the parts it needs (workbook, its relationships, shared strings, the sheet)
from the zip with the standard library, streaming the sheet. Hand-rolled because no
dependency of the project exposes them; openpyxl would, but would read the whole workbook
into Python objects a second time.

The XML is only ever parsed after the container check (zip bomb limits) has passed, and
a part declaring a DOCTYPE is refused: no spreadsheet writer emits one, and refusing it
rules out entity-expansion tricks whatever the XML parser's own protections.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from xml.etree import ElementTree

from pipelines.ingest.errors import FileRejected

_CELL_REF = re.compile(r"^([A-Z]+)(\d+)$")
_TRUE = ("1", "true")

# Cell kinds kept per cell (blank cells are not kept).
VALUE = "value"
ERROR = "error"  # an Excel error such as #DIV/0!, which fastexcel reads as empty
FORMULA = "formula"  # a formula with a cached result
FORMULA_UNCACHED = "formula_uncached"  # a formula whose result was never stored


@dataclass(frozen=True)
class Cell:
    kind: str
    text: str = ""  # errors only: the error code as Excel shows it
    formula: bool = False


# Shared instances: a sheet's cells hold references, not one object per cell.
_VALUE = Cell(VALUE)
_FORMULA = Cell(FORMULA, formula=True)
_UNCACHED = Cell(FORMULA_UNCACHED, formula=True)


@dataclass
class SheetFacts:
    """One sheet (the first, or the one named) as the XML describes it, in sheet
    coordinates (1-based rows and columns, as a spreadsheet shows them)."""

    sheet_name: str
    sheet_state: str  # visible | hidden | veryHidden
    hidden_sheets: list[str]  # other sheets the provider cannot see
    recalculate_on_load: bool  # the writer asked Excel to recalculate: cached values untrusted
    first_col: int = 1  # the sheet column of fastexcel's first column
    last_col: int = 0
    hidden_rows: set[int] = field(default_factory=set)
    hidden_cols: set[int] = field(default_factory=set)
    cells: dict[int, dict[int, Cell]] = field(default_factory=dict)  # non-blank cells only

    def sheet_col(self, position: int) -> int:
        return self.first_col + position

    def data_rows(self, header_row: int) -> Iterator[tuple[int, dict[int, Cell]]]:
        """Rows under the header (``header_row`` is 0-based, as read; sheet row = +1)."""
        for row in sorted(self.cells):
            if row > header_row + 1:
                yield row, self.cells[row]

    def records(self, header_row: int, positions: Iterable[int]) -> list[int]:
        """Sheet rows under the header with a value or an error in a column read."""
        cols = {self.sheet_col(p) for p in positions}
        return [
            row
            for row, cells in self.data_rows(header_row)
            if any(cells[c].kind != FORMULA_UNCACHED for c in cols & cells.keys())
        ]

    def uncached_formulas(self, header_row: int, positions: Iterable[int]) -> list[str]:
        """Cells read whose formula result cannot be trusted: never cached, or cached by a
        writer that asked Excel to recalculate everything on opening (a script's 0)."""
        cols = {self.sheet_col(p) for p in positions}
        found = []
        for row, cells in self.data_rows(header_row):
            for col in sorted(cols & cells.keys()):
                cell = cells[col]
                if cell.kind == FORMULA_UNCACHED or (cell.formula and self.recalculate_on_load):
                    found.append(f"{column_letters(col)}{row}")
        return found

    def errors(self, header_row: int, positions: Iterable[int]) -> list[tuple[int, int, str]]:
        """(sheet row, position read, error text) of every error cell read."""
        wanted = {self.sheet_col(p): p for p in positions}
        return [
            (row, wanted[col], cells[col].text)
            for row, cells in self.data_rows(header_row)
            for col in sorted(wanted.keys() & cells.keys())
            if cells[col].kind == ERROR
        ]


def column_letters(col: int) -> str:
    letters = ""
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _column_number(letters: str) -> int:
    number = 0
    for char in letters:
        number = number * 26 + ord(char) - 64
    return number


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(element: ElementTree.Element, name: str) -> str | None:
    """An attribute by local name, whatever its namespace (transitional or strict OOXML)."""
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return None


def _read_part(archive: zipfile.ZipFile, name: str, file_name: str) -> bytes:
    try:
        data = archive.read(name)
    except KeyError as exc:
        raise FileRejected(
            file_name, "unreadable_xlsx", f"workbook part {name} is missing"
        ) from exc
    _refuse_doctype(data[:4096], name, file_name)
    return data


def _refuse_doctype(prolog: bytes, name: str, file_name: str) -> None:
    if b"<!DOCTYPE" in prolog.upper():
        raise FileRejected(file_name, "unreadable_xlsx", f"{name} declares a DOCTYPE")


def _parse(data: bytes, name: str, file_name: str) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        raise FileRejected(file_name, "unreadable_xlsx", f"{name}: {exc}") from exc


def shared_string_blanks(archive: zipfile.ZipFile, file_name: str) -> list[bool]:
    """For each shared string, whether it is blank (empty or whitespace only)."""
    name = "xl/sharedStrings.xml"
    if name not in archive.namelist():
        return []
    with archive.open(name) as stream:
        _refuse_doctype(stream.read(4096), name, file_name)
    blanks = []
    with archive.open(name) as stream:
        try:
            for _, element in ElementTree.iterparse(stream, events=("end",)):
                if _local(element.tag) == "si":
                    blanks.append(not _shown_text(element).strip())
                    element.clear()
        except ElementTree.ParseError as exc:
            raise FileRejected(file_name, "unreadable_xlsx", f"{name}: {exc}") from exc
    return blanks


def _shown_text(string_item: ElementTree.Element) -> str:
    """A string's text: its ``<t>``, or its runs' ``<t>``; phonetic guides (``<rPh>``) are
    not shown in the cell."""
    parts = []
    for child in string_item:
        tag = _local(child.tag)
        if tag == "t":
            parts.append(child.text or "")
        elif tag == "r":
            parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
    return "".join(parts)


def _workbook(
    archive: zipfile.ZipFile, file_name: str, sheet_name: str | None = None
) -> tuple[str, str, str, list[str], bool]:
    """(part name, sheet name, state) of the sheet named ``sheet_name``, or of the
    workbook's first sheet (the one fastexcel reads as index 0, sheets in workbook order);
    the other sheets that are hidden; and whether the writer asked for every formula to be
    recalculated on opening."""
    workbook = _parse(_read_part(archive, "xl/workbook.xml", file_name), "workbook", file_name)
    sheets = [e for e in workbook.iter() if _local(e.tag) == "sheet"]
    if not sheets:
        raise FileRejected(file_name, "unreadable_xlsx", "the workbook lists no sheets")
    rels = _parse(
        _read_part(archive, "xl/_rels/workbook.xml.rels", file_name), "relationships", file_name
    )
    targets = {
        rel.get("Id"): rel.get("Target", "")
        for rel in rels.iter()
        if _local(rel.tag) == "Relationship"
    }
    index = 0
    if sheet_name is not None:
        named = [i for i, s in enumerate(sheets) if s.get("name", "") == sheet_name]
        if not named:
            raise FileRejected(
                file_name, "unreadable_xlsx", f"the workbook lists no sheet {sheet_name!r}"
            )
        index = named[0]
    sheet = sheets[index]
    target = targets.get(_attr(sheet, "id"))
    if not target:
        raise FileRejected(
            file_name, "unreadable_xlsx", f"sheet {sheet.get('name', '')!r} has no worksheet part"
        )
    part = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
    hidden = [
        s.get("name", "")
        for i, s in enumerate(sheets)
        if i != index and s.get("state", "visible") != "visible"
    ]
    recalculate = any(
        _local(e.tag) == "calcPr" and (e.get("fullCalcOnLoad") or "").lower() in _TRUE
        for e in workbook.iter()
    )
    name, state = sheet.get("name", ""), sheet.get("state", "visible")
    return posixpath.normpath(part), name, state, hidden, recalculate


def read_sheet_facts(
    archive: zipfile.ZipFile,
    file_name: str,
    sheet_name: str | None = None,
    *,
    blank_strings: list[bool] | None = None,
) -> SheetFacts:
    """Scan one sheet's XML once (streaming) for the facts above: the sheet named
    ``sheet_name`` (a workbook's sheets are read one by one to choose the data sheet), or
    the first. ``blank_strings`` (:func:`shared_string_blanks`) may be passed in so a
    workbook's shared strings are scanned once for all its sheets."""
    part, name, state, hidden_sheets, recalculate = _workbook(archive, file_name, sheet_name)
    facts = SheetFacts(name, state, hidden_sheets, recalculate)
    if blank_strings is None:
        blank_strings = shared_string_blanks(archive, file_name)
    if part not in archive.namelist():
        raise FileRejected(file_name, "unreadable_xlsx", f"worksheet part {part} is missing")
    with archive.open(part) as stream:
        _refuse_doctype(stream.read(4096), part, file_name)
    rows_hidden_by_default = False
    first_col = last_col = None
    row_number = 0
    with archive.open(part) as stream:
        try:
            for event, element in ElementTree.iterparse(stream, events=("start", "end")):
                tag = _local(element.tag)
                if event == "start":
                    if tag == "row":
                        row_number = int(element.get("r") or row_number + 1)
                        col_number = 0
                        if _row_hidden(element, rows_hidden_by_default):
                            facts.hidden_rows.add(row_number)
                    continue
                if tag == "sheetFormatPr":
                    rows_hidden_by_default = (element.get("zeroHeight") or "") in _TRUE
                elif tag == "col" and (
                    (element.get("hidden") or "") in _TRUE or element.get("width") == "0"
                ):
                    low, high = int(element.get("min", "1")), int(element.get("max", "1"))
                    facts.hidden_cols.update(range(low, min(high, 16384) + 1))
                elif tag == "c":
                    ref = _CELL_REF.match(element.get("r") or "")
                    col_number = _column_number(ref.group(1)) if ref else col_number + 1
                    cell, has_value = _cell(element, blank_strings)
                    if has_value:
                        first_col = col_number if first_col is None else min(first_col, col_number)
                        last_col = col_number if last_col is None else max(last_col, col_number)
                    if cell is not None:
                        facts.cells.setdefault(row_number, {})[col_number] = cell
                    element.clear()
                elif tag == "row":
                    element.clear()
        except (ElementTree.ParseError, ValueError) as exc:
            # ValueError: a row number, cell reference or height that is not a number.
            raise FileRejected(file_name, "unreadable_xlsx", f"{part}: {exc}") from exc
    facts.first_col = first_col or 1
    facts.last_col = last_col or 0
    return facts


def _row_hidden(row: ElementTree.Element, hidden_by_default: bool) -> bool:
    """Hidden rows: ``hidden``, a zero height (which hides a row just as well), or a sheet
    whose rows are hidden unless given a height."""
    if (row.get("hidden") or "") in _TRUE:
        return True
    height = row.get("ht")
    if height is not None and float(height) == 0:
        return True
    return hidden_by_default and height is None


def _cell(element: ElementTree.Element, blank_strings: list[bool]) -> tuple[Cell | None, bool]:
    """(the cell's kind, or None when blank; whether calamine sees a value there)."""
    kind = element.get("t", "n")
    value = formula = inline = None
    for child in element:
        tag = _local(child.tag)
        if tag == "v":
            value = child.text or ""
        elif tag == "f":
            formula = child
        elif tag == "is":
            inline = "".join(t.text or "" for t in child.iter() if _local(t.tag) == "t")
    has_value = value is not None or inline is not None
    if formula is not None and not value:
        return _UNCACHED, has_value
    if kind == "e":
        return Cell(ERROR, value or "", formula=formula is not None), has_value
    if kind == "inlineStr":
        text = inline or ""
    elif kind == "s":
        try:
            blank = blank_strings[int(value or "")]
        except (ValueError, IndexError):
            blank = False
        text = "" if blank else "text"
    else:
        text = value or ""
    if not text.strip():
        return None, has_value
    return (_FORMULA if formula is not None else _VALUE), has_value
