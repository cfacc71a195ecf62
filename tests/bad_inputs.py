"""The bad-input corpus: each case is a file named after what is wrong with it.

Every case but the file-level ones carries one good row beside the bad one, so the test
can show that no good row is lost. Built at test time (deterministic) rather than committed,
because some cases (a zip bomb, an oversized file) are large or dangerous to keep in git.

Most files are read by the shipped contracts (en-GB numbers, day-first dates). Three
providers have a contract of their own here (``EXTRA_CONTRACTS``), as a deployment would
declare a provider's spreadsheet settings: RTF writes German-style numbers, RVW's layout
declares neither a number locale nor a date order, and R0B's workbooks may carry hidden
rows, loaded with a warning.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import xlsxwriter
import yaml

from pipelines.ingest.contracts import CONTRACTS_DIR

HEADER = "org_code,period,measure_code,numerator,denominator\n"
GOOD = "RTD,2024-03,FALLS_HARM,7,41000\n"
MAX_FILE_BYTES = 1_000_000
MAX_XLSX_INFLATED_BYTES = 2_000_000


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    status: str  # loaded | rejected | duplicate
    rule: str | None = None  # the file rule (rejected) or the rule the bad row breaks
    bad_lines: dict[int, str] = field(default_factory=dict)  # line -> rule it must carry
    loaded: int = 0
    reason: str = ""  # text the file's reason (rejected) or each bad line's reasons must hold
    warning: str = ""  # text the submission log's warnings must hold (loaded files)


def _row_case(
    name: str, bad_row: str, rule: str, *, submitter: str = "RTD", reason: str = ""
) -> Case:
    body = HEADER + GOOD.replace("RTD", submitter) + bad_row + "\n"
    return Case(
        f"{submitter}_{name}.csv", body.encode(), "loaded", rule, {3: rule}, loaded=1, reason=reason
    )


def _refused(name: str, body: bytes, rule: str, reason: str) -> Case:
    """A file refused whole by ``rule``, its reason holding ``reason``."""
    return Case(name, body, "rejected", rule, reason=reason)


def _loads(name: str, body: bytes, rows: int = 1) -> Case:
    """A file read as it is meant, every one of its ``rows`` rows loaded."""
    return Case(name, body, "loaded", loaded=rows)


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def zip_bomb() -> bytes:
    """50 MB of zeros in one worksheet entry: about 50 KB on disk, far over the test limit."""
    return _zip({"xl/worksheets/sheet1.xml": b"\0" * 50_000_000})


def zip_of_many_entries() -> bytes:
    """10,001 empty entries (stored, short names: under the test's file size limit): cheap
    to declare, costly to list and open; refused from the directory alone."""
    members = {"xl/worksheets/sheet1.xml": b""} | {str(i): b"" for i in range(10_000)}
    return _zip(members, zipfile.ZIP_STORED)


def zip_that_lies_about_sizes() -> bytes:
    """A workbook-shaped zip whose directory says its worksheet inflates to 100 bytes when it
    inflates to 200,000: a reader trusting the directory would be fooled."""
    data = bytearray(_zip({"xl/worksheets/sheet1.xml": b"\0" * 200_000}))
    for signature, size_offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (at := data.find(signature, start)) != -1:
            if data[at + size_offset : at + size_offset + 4] == (200_000).to_bytes(4, "little"):
                data[at + size_offset : at + size_offset + 4] = (100).to_bytes(4, "little")
            start = at + 4
    return bytes(data)


ROW_CASES = [
    _row_case("unknown_organisation", "R99,2024-03,FALLS_HARM,1,100", "unknown_organisation"),
    _row_case(
        "formula_in_org_code",
        '"=HYPERLINK(""http://x"")",2024-03,FALLS_HARM,1,9',
        "unknown_organisation",
    ),
    _row_case("unknown_measure", "RTD,2024-03,FALLS_WITH_HARM,1,100", "unknown_measure"),
    _row_case("invalid_period_month_13", "RTD,2024-13,PU_CAT2PLUS,1,100", "invalid_period"),
    _row_case("invalid_period_slash_format", "RTD,2024/03,PU_CAT2PLUS,1,100", "invalid_period"),
    _row_case("period_in_future", "RTD,2031-01,PU_CAT2PLUS,1,100", "period_in_future"),
    _row_case(
        "period_before_catalogue", "RTD,2018-03,PU_CAT2PLUS,1,100", "period_before_catalogue_start"
    ),
    _row_case("numerator_suppressed_lt5", "RTD,2024-03,PU_CAT2PLUS,<5,100", "numerator_suppressed"),
    _row_case("numerator_suppressed_star", "RTD,2024-03,PU_CAT2PLUS,*,100", "numerator_suppressed"),
    _row_case("numerator_suppressed_c", "RTD,2024-03,PU_CAT2PLUS,c,100", "numerator_suppressed"),
    _row_case("denominator_suppressed", "RTD,2024-03,PU_CAT2PLUS,3,*", "denominator_suppressed"),
    _row_case("numerator_negative", "RTD,2024-03,PU_CAT2PLUS,-2,100", "numerator_negative"),
    _row_case("denominator_negative", "RTD,2024-03,PU_CAT2PLUS,2,-100", "denominator_negative"),
    _row_case(
        "numerator_fraction", "RTD,2024-03,PU_CAT2PLUS,2.5,100", "numerator_not_a_whole_number"
    ),
    _row_case("numerator_text", "RTD,2024-03,PU_CAT2PLUS,two,100", "numerator_not_a_whole_number"),
    _row_case(
        "denominator_text", "RTD,2024-03,PU_CAT2PLUS,2,n/a", "denominator_not_a_whole_number"
    ),
    _row_case("numerator_blank", "RTD,2024-03,PU_CAT2PLUS,,100", "numerator_missing"),
    _row_case("denominator_blank", "RTD,2024-03,PU_CAT2PLUS,2,", "denominator_missing"),
    _row_case(
        "numerator_exceeds_denominator",
        "RTD,2024-03,SEPSIS_ABX_1H,81,80",
        "numerator_exceeds_denominator",
    ),
    _row_case("org_code_blank", ",2024-03,PU_CAT2PLUS,2,100", "org_code_missing"),
    _row_case("measure_code_blank", "RTD,2024-03,,2,100", "measure_code_missing"),
    _row_case("period_blank", "RTD,,PU_CAT2PLUS,2,100", "period_missing"),
    _row_case(
        "another_providers_row", "RTF,2024-03,FALLS_HARM,2,30000", "organisation_outside_submitter"
    ),
    _row_case(
        "practice_closed_before_period",
        "A81632,2024-03,OPIOID_HIGH_DOSE,3,100",
        "organisation_not_open_in_period",
        submitter="QHM",
    ),
    _row_case(
        "practice_opened_after_period",
        "Y08035,2023-06,OPIOID_HIGH_DOSE,3,100",
        "organisation_not_open_in_period",
        submitter="QHM",
    ),
    Case(
        "RTD_duplicate_key_in_file.csv",
        (HEADER + GOOD + "RTD,2024-03,PU_CAT2PLUS,2,100\nRTD,2024-03,PU_CAT2PLUS,3,100\n").encode(),
        "loaded",
        "duplicate_key_in_file",
        {3: "duplicate_key_in_file", 4: "duplicate_key_in_file"},
        loaded=1,
    ),
]

FILE_CASES = [
    Case("RTD_empty_file.csv", b"", "rejected", "empty_file"),
    Case("RTD_whitespace_only.csv", b"  \n\n \n", "rejected", "empty_file"),
    Case("RTD_header_only.csv", HEADER.encode(), "rejected", "empty_file"),
    Case("RTD_blank_lines_only.csv", (HEADER + ",,,,\n,,,,\n").encode(), "rejected", "empty_file"),
    Case("RTD_wrong_layout.csv", b"name,value\nfalls,7\n", "rejected", "wrong_layout"),
    Case(
        "RTD_wide_without_measure_pairs.csv",
        b"Organisation code,Month,Falls with moderate or severe harm\nRTD,2024-03,4\n",
        "rejected",
        "wrong_layout",
    ),
    Case("RTD_binary_content.csv", bytes(range(256)) * 4, "rejected", "binary_content"),
    Case(
        "RTD_undecodable_bytes.csv",
        HEADER.encode() + b"RTD,2024-03,FALLS_HARM,\x81\x8d,1\n",
        "rejected",
        "unreadable_encoding",
    ),
    Case("RTD_not_a_zip.xlsx", b"PK\x03\x04 this is not a workbook", "rejected", "unreadable_xlsx"),
    Case(
        "RTD_zip_without_worksheet.xlsx", _zip({"hello.txt": b"hi"}), "rejected", "unreadable_xlsx"
    ),
    Case("RTD_zip_bomb.xlsx", zip_bomb(), "rejected", "xlsx_inflates_too_far"),
    Case(
        "RTD_zip_of_many_entries.xlsx",
        zip_of_many_entries(),
        "rejected",
        "xlsx_inflates_too_far",
    ),
    Case(
        "RTD_zip_lies_about_sizes.xlsx", zip_that_lies_about_sizes(), "rejected", "unreadable_xlsx"
    ),
    Case("RTD_oversized.csv", (HEADER + GOOD * 40_000).encode(), "rejected", "oversized_file"),
    Case("RTD_unsupported_type.pdf", b"%PDF-1.4\n", "rejected", "unsupported_file_type"),
    Case("ZZZ_unknown_submitter.csv", (HEADER + GOOD).encode(), "rejected", "unknown_submitter"),
    Case("nounderscore.csv", (HEADER + GOOD).encode(), "rejected", "unknown_submitter"),
    Case(
        "RTD_..\\..\\etc\\windows_path_parts.csv",
        (HEADER + GOOD).encode(),
        "rejected",
        "unsafe_file_name",
    ),
    Case("RTD_control\x07char.csv", (HEADER + GOOD).encode(), "rejected", "unsafe_file_name"),
]

# Files that must load in full despite looking odd.
ODD_BUT_GOOD = [
    _loads(
        "RTD_lowercase_padded_codes.csv",
        (HEADER + " rtd , 2024-03 , falls_harm ,7,41000\n").encode(),
    ),
    _loads(
        "RTD_thousands_separators.csv",
        (HEADER + 'RTD,2024-03,FALLS_HARM,7,"41,000"\n').encode(),
    ),
    _loads(
        "RTD_bom_and_aliases.csv",
        (
            "\ufeffOrganisation Code,Reporting Month,Indicator,Num,Denom\n"
            "RTD,Mar-24,FALLS_HARM,7,41000\n"
        ).encode(),
    ),
    _loads(
        "RTD_ragged_extra_columns.csv",
        (HEADER + "RTD,2024-03,FALLS_HARM,7,41000,extra\n").encode(),
    ),
    _loads(
        "RTD_title_rows_above_header.csv",
        ("Monthly safety return\nSubmitted by RTD\n" + HEADER + GOOD).encode(),
    ),
    _loads(
        "RTD_crlf_line_endings.csv",
        (HEADER + GOOD).replace("\n", "\r\n").encode(),
    ),
]

# --- Misreads (issue 12): values with two readings, columns with two sources, cells the
# provider cannot see, formulas never calculated, files cut off. Nothing is read by guess.

WIDE_HEADER = (
    "Organisation code,Month,Falls with moderate or severe harm,"
    "New category 2-4 pressure ulcers,Occupied bed days"
)


def _wide_xlsx(
    rows: list[tuple[str, datetime, int, int, int]],
    *,
    hidden_rows: tuple[int, ...] = (),
    hidden_columns: tuple[int, ...] = (),
    first_sheet_hidden: bool = False,
    hidden_lookup_sheet: bool = False,
    formula_cell: tuple[int, int, str] | None = None,
    error_cell: tuple[int, int] | None = None,
    offset: tuple[int, int] = (0, 0),
) -> bytes:
    """The collaborative's wide template as Excel writes it: two title rows, the header, one
    row per organisation and month. ``hidden_rows`` are 0-based data row indexes."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True})
    if first_sheet_hidden:
        old = book.add_worksheet("Old return")
        old.write_row(0, 0, WIDE_HEADER.split(","))
        old.write_row(1, 0, ["RTD", "2023-03", 99, 99, 9999])
    sheet = book.add_worksheet("Return")
    top, left = offset
    sheet.write(top, left, "North East and North Cumbria Patient Safety Collaborative")
    sheet.write(top + 1, left, "Monthly safety return")
    sheet.write_row(top + 2, left, WIDE_HEADER.split(","))
    month = book.add_format({"num_format": "mmm-yy"})
    for i, (org, period, falls, ulcers, bed_days) in enumerate(rows):
        r = top + 3 + i
        sheet.write(r, left, org)
        sheet.write_datetime(r, left + 1, period, month)
        sheet.write_row(r, left + 2, [falls, ulcers, bed_days])
        if i in hidden_rows:
            sheet.set_row(r, None, None, {"hidden": True})
    for c in hidden_columns:
        sheet.set_column(left + c, left + c, None, None, {"hidden": True})
    if formula_cell:
        r, c, formula = formula_cell
        sheet.write_formula(top + 3 + r, left + c, formula)
    if error_cell:
        r, c = error_cell
        sheet.write_formula(top + 3 + r, left + c, "=1/0", None, "#DIV/0!")
    if hidden_lookup_sheet:
        lookup = book.add_worksheet("Lookup")
        lookup.write_column(0, 0, ["RTD", "RTF", "RVW"])
        lookup.hide()
    if first_sheet_hidden:
        sheet.activate()
        old.hide()
    book.close()
    return buf.getvalue()


def _rewritten(workbook: bytes, *, keep_results: bool) -> bytes:
    """xlsxwriter stores 0 as every formula's result and asks Excel to recalculate on
    opening. ``keep_results``: the workbook as Excel saves it after calculating (results
    stored, no recalculation asked); otherwise as openpyxl or a hand-rolled writer leaves
    it (formulas with no stored result, nothing asked)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(workbook)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.startswith("xl/worksheets/") and not keep_results:
                data = re.sub(rb"(</f>)<v>[^<]*</v>", rb"\1", data)
            if item.filename == "xl/workbook.xml":
                data = data.replace(b' fullCalcOnLoad="1"', b"")
            target.writestr(item, data)
    return out.getvalue()


MARCH = datetime(2024, 3, 1)
APRIL = datetime(2024, 4, 1)
_TWO_MONTHS = [("RTD", MARCH, 7, 52, 41000), ("RTD", APRIL, 5, 47, 39500)]

MISREAD_ROW_CASES = [
    _row_case(
        "numerator_decimal_comma",
        'RTD,2024-03,PU_CAT2PLUS,"2,5",100',
        "numerator_separator_not_in_locale",
        reason="numerator '2,5' uses ',' as a decimal separator, which the source contract's "
        "number format en-GB (decimal '.', thousands ',') does not",
    ),
    _row_case(
        "denominator_thousands_point",
        "RTD,2024-03,PU_CAT2PLUS,3,41.000",
        "denominator_ambiguous_separator",
        reason="denominator '41.000' could be 41.000 or 41000",
    ),
    _row_case(
        "numerator_thousands_point",
        "RTD,2024-03,PU_CAT2PLUS,1.000,41000",
        "numerator_ambiguous_separator",
        reason="numerator '1.000' could be 1.000 or 1000",
    ),
    _row_case(
        "numerator_scientific_notation",
        "RTD,2024-03,PU_CAT2PLUS,1.23E+08,41000",
        "numerator_scientific_notation",
        reason="numerator '1.23E+08' is in scientific notation",
    ),
    _row_case(
        "denominator_scientific_notation",
        "RTD,2024-03,PU_CAT2PLUS,3,4.1E+04",
        "denominator_scientific_notation",
        reason="denominator '4.1E+04' is in scientific notation",
    ),
    _row_case(
        "numerator_ten_to_the_fourteen",
        "RTD,2024-03,PU_CAT2PLUS,100000000000000,41000",
        "numerator_above_max_count",
        reason="numerator 100000000000000 is above the measure catalogue's max_count of "
        "500000 for PU_CAT2PLUS",
    ),
    _row_case(
        "denominator_above_max_count",
        "RTD,2024-03,NEWS2_ON_TIME,400,20000000",
        "denominator_above_max_count",
        reason="denominator 20000000 is above the measure catalogue's max_count of 2000000",
    ),
    _row_case(
        "numerator_too_many_digits",
        "RTD,2024-03,PU_CAT2PLUS,1234567890123456789012,41000",
        "numerator_above_max_count",
        reason="numerator '1234567890123456789012' has more than 18 digits",
    ),
    _row_case(
        "falls_over_zero_bed_days",
        "RTD,2024-03,PU_CAT2PLUS,3,0",
        "numerator_over_zero_denominator",
        reason="numerator 3 over a denominator of 0",
    ),
    _row_case(
        "rate_above_max_value",
        "RTD,2024-03,PU_CAT2PLUS,50,40",
        "value_above_max_value",
        reason="value 1250.0 (50 x 1000 / 40) is above the measure catalogue's max_value "
        "of 1000.0 for PU_CAT2PLUS",
    ),
    _row_case(
        "period_month_first_against_declared_order",
        "RTD,3/13/2024,PU_CAT2PLUS,1,100",
        "invalid_period",
        reason="period '3/13/2024' is not a recognised month (day first, as the source "
        "contract declares DMY)",
    ),
    Case(
        "RTD_period_ambiguous_in_a_month_first_file.csv",
        (
            HEADER + GOOD + "RTD,3/1/2024,PU_CAT2PLUS,1,100\nRTD,3/13/2024,NEWS2_ON_TIME,1,100\n"
        ).encode(),
        "loaded",
        "period_ambiguous_date_order",
        {3: "period_ambiguous_date_order", 4: "invalid_period"},
        loaded=1,
        reason="could be January 2024 (day first) or March 2024 (month first); the contract "
        "declares DMY, but '3/13/2024' (line 4) is month first",
    ),
    _row_case(
        "period_day_or_month_undeclared",
        "RVW,01/03/2024,PU_CAT2PLUS,1,100",
        "period_ambiguous_date_order",
        submitter="RVW",
        reason="period '01/03/2024' could be March 2024 (day first) or January 2024 (month "
        "first); no date order is declared for this layout",
    ),
    _row_case(
        "numerator_thousands_comma_undeclared",
        'RVW,2024-03,PU_CAT2PLUS,"1,000",41000',
        "numerator_ambiguous_separator",
        submitter="RVW",
        reason="numerator '1,000' could be 1.000 or 1000: ',' may be a decimal or a thousands "
        "separator, and the source contract does not settle it (number format: none declared)",
    ),
    _row_case(
        "numerator_thousands_comma_in_de_DE",
        'RTF,2024-03,PU_CAT2PLUS,"1,000",41.000',
        "numerator_ambiguous_separator",
        submitter="RTF",
        reason="numerator '1,000' could be 1.000 or 1000",
    ),
    Case(
        "RTD_error_value_in_numerator.xlsx",
        _rewritten(_wide_xlsx(_TWO_MONTHS, error_cell=(1, 2)), keep_results=True),
        "loaded",
        "numerator_spreadsheet_error",
        {5: "numerator_spreadsheet_error"},
        loaded=3,
        reason="numerator is the spreadsheet error '#DIV/0!'",
    ),
]

MISREAD_FILE_CASES = [
    _refused(
        "RTD_numerator_column_twice.csv",
        (HEADER.strip() + ",numerator\n" + GOOD.strip() + ",9\n").encode(),
        "duplicate_column",
        "more than one column for numerator: 'numerator' (column 4) and 'numerator' (column 6)",
    ),
    _refused(
        "RTD_two_aliases_for_the_numerator.csv",
        (HEADER.strip() + ",Count\n" + GOOD.strip() + ",9\n").encode(),
        "duplicate_column",
        "more than one column for numerator: 'numerator' (column 4) and 'Count' (column 6)",
    ),
    _refused(
        "RTD_wide_two_alias_pairs_for_falls.csv",
        (WIDE_HEADER + ",Falls harm,Bed days\nRTD,2024-03,7,52,41000,9,40000\n").encode(),
        "duplicate_column",
        "FALLS_HARM numerator: 'Falls with moderate or severe harm' (column 3) and "
        "'Falls harm' (column 6)",
    ),
    _refused(
        "RTD_cut_off_in_a_quoted_field.csv",
        (HEADER + GOOD + 'RTD,2024-03,PU_CAT2PLUS,3,"41,0').encode(),
        "truncated_file",
        "the record starting on line 3 opens a quoted field that never closes",
    ),
    _refused(
        "RTD_cut_off_mid_record.csv",
        (HEADER + GOOD + "RTD,2024-03,PU_CAT2PLUS,3").encode(),
        "truncated_file",
        "its last line has 4 of the 5 fields the header needs, and no line end",
    ),
    _refused(
        "RTD_hidden_row.xlsx",
        _wide_xlsx(_TWO_MONTHS, hidden_rows=(1,)),
        "hidden_rows",
        "row 5 holds data but is hidden",
    ),
    _refused(
        "RTD_hidden_first_sheet.xlsx",
        _wide_xlsx(_TWO_MONTHS, first_sheet_hidden=True),
        "hidden_sheet",
        "the sheet read, 'Old return', is hidden",
    ),
    _refused(
        "RTD_hidden_numerator_column.xlsx",
        _wide_xlsx(_TWO_MONTHS, hidden_columns=(2,)),
        "hidden_columns",
        "column C ('Falls with moderate or severe harm') is read but hidden",
    ),
    _refused(
        "RTD_formula_without_cached_value.xlsx",
        _rewritten(_wide_xlsx(_TWO_MONTHS, formula_cell=(1, 3, "=40+7")), keep_results=False),
        "formula_without_value",
        "cell D5 holds a formula with no stored result",
    ),
    _refused(
        "RTD_formula_written_by_a_script.xlsx",
        _wide_xlsx(_TWO_MONTHS, formula_cell=(0, 4, "=41000")),
        "formula_without_value",
        "cell E4 holds a formula whose stored result no spreadsheet calculated",
    ),
]

MISREAD_GOOD_CASES = [
    _loads(
        "RTD_thousands_comma_en_GB.csv",
        (HEADER + 'RTD,2024-03,FALLS_HARM,"1,000","41,000"\n').encode(),
    ),
    _loads(
        "RTF_de_DE_decimal_comma_and_thousands_point.csv",
        (
            HEADER + 'RTF,2024-03,FALLS_HARM,"3,0",30.100\nRTF,2024-03,PU_CAT2PLUS,12,"30.100"\n'
        ).encode(),
        rows=2,
    ),
    _loads(
        "RVW_day_first_settled_by_the_file.csv",
        (
            HEADER + "RVW,01/02/2024,FALLS_HARM,4,20000\nRVW,15/03/2024,FALLS_HARM,5,20000\n"
        ).encode(),
        rows=2,
    ),
    _loads(
        "RTD_lone_cr_line_endings.csv",
        (HEADER + GOOD + "RTD,2024-03,PU_CAT2PLUS,30,41000\n").replace("\n", "\r").encode(),
        rows=2,
    ),
    _loads(
        "RTD_mixed_line_endings.csv",
        (
            HEADER.replace("\n", "\r\n")
            + "RTD,2024-03,FALLS_HARM,7,41000\n"
            + "RTD,2024-03,PU_CAT2PLUS,30,41000\r"
            + "RTD,2024-03,NEWS2_ON_TIME,455,500\r\n"
        ).encode(),
        rows=3,
    ),
    _loads(
        "RTD_title_cell_with_a_line_break.csv",
        ('"Monthly safety return\nThe Newcastle upon Tyne Hospitals"\n' + HEADER + GOOD).encode(),
    ),
    _loads(
        "RTD_no_line_end_after_a_complete_record.csv",
        (HEADER + GOOD.strip()).encode(),
    ),
    Case(
        "RTD_hidden_lookup_sheet_not_read.xlsx",
        _wide_xlsx(_TWO_MONTHS, hidden_lookup_sheet=True),
        "loaded",
        loaded=4,
        warning="hidden_sheets_not_read: 'Lookup'",
    ),
    Case(
        "R0B_hidden_row_loaded_with_warning.xlsx",
        _wide_xlsx([("R0B", MARCH, 7, 52, 41000), ("R0B", APRIL, 5, 47, 39500)], hidden_rows=(1,)),
        "loaded",
        loaded=4,
        warning="hidden_cells: row 5 holds data but is hidden",
    ),
    _loads(
        "RTD_template_away_from_the_corner.xlsx",
        _wide_xlsx(_TWO_MONTHS, offset=(3, 2)),
        rows=4,
    ),
]


def _contract(base: str, **changes) -> str:
    spec = yaml.safe_load((CONTRACTS_DIR / base).read_text(encoding="utf-8"))
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return yaml.safe_dump(spec, sort_keys=False)


# Provider-specific contracts the corpus run installs beside the shipped ones.
EXTRA_CONTRACTS = {
    "long_return_rtf_de_de.yml": _contract(
        "long_measure_return.yml",
        name="long_return_rtf_de_de",
        submitters=["RTF"],
        number_locale="de-DE",
    ),
    "long_return_rvw_undeclared.yml": _contract(
        "long_measure_return.yml",
        name="long_return_rvw_undeclared",
        submitters=["RVW"],
        number_locale=None,
        date_order=None,
    ),
    "wide_return_r0b_hidden_rows_allowed.yml": _contract(
        "wide_nenc_monthly_return.yml",
        name="wide_return_r0b_hidden_rows_allowed",
        submitters=["R0B"],
        hidden_cells="load_with_warning",
    ),
}


def install_contracts(directory: Path) -> Path:
    """The shipped contracts plus ``EXTRA_CONTRACTS`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for path in CONTRACTS_DIR.glob("*.yml"):
        (directory / path.name).write_bytes(path.read_bytes())
    for name, text in EXTRA_CONTRACTS.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


MISREAD_CASES = MISREAD_ROW_CASES + MISREAD_FILE_CASES + MISREAD_GOOD_CASES

CORPUS = ROW_CASES + FILE_CASES + ODD_BUT_GOOD + MISREAD_CASES
