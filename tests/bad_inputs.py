"""The bad-input corpus: each case is a file named after what is wrong with it.

Every case but the file-level ones carries one good row beside the bad one, so the test
can show that no good row is lost. Built at test time (deterministic) rather than committed,
because some cases (a zip bomb, an oversized file) are large or dangerous to keep in git.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

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


def _row_case(name: str, bad_row: str, rule: str, *, submitter: str = "RTD") -> Case:
    body = HEADER + GOOD.replace("RTD", submitter) + bad_row + "\n"
    return Case(f"{submitter}_{name}.csv", body.encode(), "loaded", rule, {3: rule}, loaded=1)


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
    Case(
        "RTD_lowercase_padded_codes.csv",
        (HEADER + " rtd , 2024-03 , falls_harm ,7,41000\n").encode(),
        "loaded",
        loaded=1,
    ),
    Case(
        "RTD_thousands_separators.csv",
        (HEADER + 'RTD,2024-03,FALLS_HARM,7,"41,000"\n').encode(),
        "loaded",
        loaded=1,
    ),
    Case(
        "RTD_bom_and_aliases.csv",
        (
            "\ufeffOrganisation Code,Reporting Month,Indicator,Num,Denom\n"
            "RTD,Mar-24,FALLS_HARM,7,41000\n"
        ).encode(),
        "loaded",
        loaded=1,
    ),
    Case(
        "RTD_ragged_extra_columns.csv",
        (HEADER + "RTD,2024-03,FALLS_HARM,7,41000,extra\n").encode(),
        "loaded",
        loaded=1,
    ),
    Case(
        "RTD_title_rows_above_header.csv",
        ("Monthly safety return\nSubmitted by RTD\n" + HEADER + GOOD).encode(),
        "loaded",
        loaded=1,
    ),
    Case(
        "RTD_crlf_line_endings.csv",
        (HEADER + GOOD).replace("\n", "\r\n").encode(),
        "loaded",
        loaded=1,
    ),
]

CORPUS = ROW_CASES + FILE_CASES + ODD_BUT_GOOD
