"""The reading corpus: files whose bytes are not what their name says, or are what Excel
writes in another locale or encoding, each named after what is odd about it.

In the style of ``bad_inputs.py`` (a good row beside the bad one wherever the file is read
at all), kept apart from it so that its file count stays the other corpus's own. Each case
also names the text its reason must hold: the point of these cases is that the provider is
told what the file is, not only that it failed.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

import xlsxwriter

HEADER = "org_code,period,measure_code,numerator,denominator\n"
GOOD = "RTD,2024-03,FALLS_HARM,7,41000\n"


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    status: str  # loaded | rejected
    rule: str | None = None  # the file rule (rejected) or the rule the bad row breaks
    reason_has: str = ""  # text the file's reason (rejected) or the row's reasons must hold
    bad_lines: dict[int, str] = field(default_factory=dict)  # line -> rule it must carry
    loaded: int = 0


def _row_case(name: str, bad_row: str, rule: str, reason_has: str) -> Case:
    body = HEADER + GOOD + bad_row + "\n"
    return Case(f"RTD_{name}.csv", body.encode(), "loaded", rule, reason_has, {3: rule}, 1)


def workbook(sheets: dict[str, list[list[object]]], errors: dict[str, str] | None = None) -> bytes:
    """An XLSX with the given sheets; ``errors`` maps ``Sheet!D3``-style cells to an error
    formula result (a formula whose cached value is the error, as Excel saves it: without
    the recalculate-on-opening flag xlsxwriter sets, which marks a script's placeholder
    results and is refused as ``formula_without_value``)."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            sheet.write_row(r, 0, row)
        for ref, value in (errors or {}).items():
            sheet_name, cell = ref.split("!")
            if sheet_name == name:
                sheet.write_formula(cell, "=1/0", None, value)
    book.close()
    return _as_excel_saves(buf.getvalue()) if errors else buf.getvalue()


def _as_excel_saves(data: bytes) -> bytes:
    """The workbook without xlsxwriter's ``fullCalcOnLoad``: results stored, as Excel
    leaves a workbook it has calculated and saved."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            member = source.read(item.filename)
            if item.filename == "xl/workbook.xml":
                member = member.replace(b' fullCalcOnLoad="1"', b"")
            target.writestr(item, member)
    return out.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


# Workbooks use the wide monthly template (the long layout is a CSV contract).
WIDE = ["Organisation code", "Month", "Falls with moderate or severe harm", "Occupied bed days"]
GOOD_ROW = ["RTD", "2024-03", 7, 41000]
INSTRUCTIONS = [["How to fill in this return"], ["One row per measure and month"]]

ROW_CASES = [
    _row_case(
        "org_code_zero_width_space",
        "RTD\u200b,2024-03,PU_CAT2PLUS,2,100",
        "org_code_invisible_character",
        "org_code 'RTD\\u200b' contains an invisible character U+200B ZERO WIDTH SPACE",
    ),
    _row_case(
        "measure_code_no_break_space_inside",
        "RTD,2024-03,PU_CAT2\u00a0PLUS,2,100",
        "measure_code_invisible_character",
        "measure_code 'PU_CAT2\\u00a0PLUS' contains an invisible character U+00A0 NO-BREAK SPACE",
    ),
    _row_case(
        "org_code_bom_inside_field",
        "\ufeffRTD,2024-03,PU_CAT2PLUS,2,100",
        "org_code_invisible_character",
        "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    ),
    _row_case(
        "numerator_div0",
        "RTD,2024-03,PU_CAT2PLUS,#DIV/0!,100",
        "numerator_spreadsheet_error",
        "numerator is the spreadsheet error '#DIV/0!'",
    ),
    _row_case(
        "denominator_na",
        "RTD,2024-03,PU_CAT2PLUS,2,#N/A",
        "denominator_spreadsheet_error",
        "denominator is the spreadsheet error '#N/A'",
    ),
    _row_case(
        "numerator_ref_error",
        "RTD,2024-03,PU_CAT2PLUS,#REF!,100",
        "numerator_spreadsheet_error",
        "'#REF!'",
    ),
    Case(
        "RTD_xlsx_div0_cell.xlsx",
        workbook(
            {"Return": [WIDE, GOOD_ROW, ["RTD", "2024-04", None, 100]]},
            {"Return!C3": "#DIV/0!"},
        ),
        "loaded",
        "numerator_spreadsheet_error",
        "numerator is the spreadsheet error '#DIV/0!'",
        {3: "numerator_spreadsheet_error"},
        loaded=1,
    ),
]

FILE_CASES = [
    Case(
        "RTD_legacy_xls_renamed.xlsx",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512,
        "rejected",
        "unsupported_file_type",
        "legacy Excel 97-2003 workbook (.xls) named .xlsx: save it as .xlsx or CSV",
    ),
    Case(
        "RTD_pdf_named_csv.csv",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        "rejected",
        "unsupported_file_type",
        "a PDF document named .csv",
    ),
    Case(
        "RTD_web_page_named_xlsx.xlsx",
        b"<html><body><table><tr><td>org_code</td></tr></table></body></html>",
        "rejected",
        "unsupported_file_type",
        "a web page (HTML) named .xlsx",
    ),
    Case(
        "RTD_csv_named_xlsx.xlsx",
        (HEADER + GOOD.replace("2024-03", "2024-02")).encode(),
        "rejected",
        "unsupported_file_type",
        "a text file (CSV?) named .xlsx: rename it .csv",
    ),
    Case(
        "RTD_xlsx_named_csv.csv",
        workbook({"Return": [WIDE, GOOD_ROW]}),
        "rejected",
        "unsupported_file_type",
        "Excel workbook (.xlsx) named .csv: rename it .xlsx",
    ),
    Case(
        "RTD_zip_named_csv.csv",
        _zip({"returns/RTD.csv": (HEADER + GOOD).encode()}),
        "rejected",
        "unsupported_file_type",
        "a ZIP archive named .csv",
    ),
    Case(
        "RTD_no_sheet_has_the_header.xlsx",
        workbook({"Instructions": INSTRUCTIONS, "Notes": [["Contact", "safety@example.nhs.uk"]]}),
        "rejected",
        "wrong_layout",
        "sheet 'Instructions' starts ['How to fill in this return']; "
        "sheet 'Notes' starts ['Contact', 'safety@example.nhs.uk']",
    ),
    Case(
        "RTD_semicolon_wrong_layout.csv",
        b"name;value\nfalls;7\n",
        "rejected",
        "wrong_layout",
        "semicolon-separated starts ['name', 'value']",
    ),
    Case(
        "RTD_right_to_left_override\u202egpj.csv",
        (HEADER + GOOD).encode(),
        "rejected",
        "unsafe_file_name",
        "letters (accented letters too)",
    ),
    Case("RTD_nul_bytes.csv", b"org\0code\0\0", "rejected", "binary_content", "not UTF-16 text"),
]

# Files that must load in full: what Excel and other tools write in other settings.
ODD_BUT_GOOD = [
    Case(
        "RTD_excel_unicode_text.csv",  # Excel "Unicode text": UTF-16LE, BOM, tab-separated
        ("\ufeff" + (HEADER + GOOD).replace(",", "\t")).encode("utf-16-le"),
        "loaded",
        loaded=1,
    ),
    Case(
        "RTD_utf16_big_endian.csv",
        ("\ufeff" + HEADER + GOOD).encode("utf-16-be"),
        "loaded",
        loaded=1,
    ),
    Case(
        "RTD_semicolon_separated.csv",  # Excel's CSV in a European locale
        (HEADER + GOOD + "RTD;2024-03;PU_CAT2PLUS;2;100\n").replace(",", ";").encode(),
        "loaded",
        loaded=2,
    ),
    Case(
        "RTD_tab_separated.csv",
        ("Monthly return\n" + HEADER + GOOD).replace(",", "\t").encode(),
        "loaded",
        loaded=1,
    ),
    Case("RTD_pipe_separated.csv", (HEADER + GOOD).replace(",", "|").encode(), "loaded", loaded=1),
    Case(
        "RTD_instructions_sheet_first.xlsx",
        workbook({"Instructions": INSTRUCTIONS, "Data": [WIDE, GOOD_ROW]}),
        "loaded",
        loaded=1,
    ),
    Case("RTD_H\u00f4pital_accented_name.csv", (HEADER + GOOD).encode(), "loaded", loaded=1),
    Case(  # the same accent decomposed (as a Mac writes it): logged under its NFC name
        "RTD_Ho\u0302pital_decomposed_accent.csv",
        (HEADER + GOOD.replace("2024-03", "2024-01")).encode(),
        "loaded",
        loaded=1,
    ),
    Case(
        "RTD_no_break_space_padding.csv",  # padding, not inside: the same code
        (HEADER + "\u00a0RTD\u00a0,2024-03,FALLS_HARM,7,41000\n").encode(),
        "loaded",
        loaded=1,
    ),
]

CORPUS = ROW_CASES + FILE_CASES + ODD_BUT_GOOD
