"""The bad-input corpus for incident extracts, in the house style of ``tests/bad_inputs.py``:
each case is a file named after what is wrong with it, and every row case carries a good
event beside the bad one, so the test shows that no good row is lost.

``BASELINE`` is loaded first in every test: it stores revision 3 of event ``8000001`` (so a
revision 2 arriving later goes backwards) and events the cases must leave untouched.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import date

import xlsxwriter

TODAY = date(2025, 6, 1)
LFPSE_HEADER = (
    "Reference,Revision,TaxonomyVersion,SubmissionDate,T005,OccurredOrganisationCode,"
    "ReporterOrganisationCode,CL001,L003,L004,L006,A001,EntityId,OT001,OT002,P007,F001"
)
FIELDS = LFPSE_HEADER.split(",")
GOOD = {
    "Reference": "9000001",
    "Revision": "1",
    "TaxonomyVersion": "5",
    "SubmissionDate": "2024-03-05",
    "T005": "2024-03-01",
    "OccurredOrganisationCode": "RTD",
    "ReporterOrganisationCode": "RTD",
    "CL001": "1",
    "L003": "1",
    "L004": "4",
    "L006": "2",
    "A001": "10",
    "EntityId": "1",
    "OT001": "5",
    "OT002": "4",
    "P007": "9",
    "F001": "Patient slipped in the corridor",
}
DATIX_HEADER = (
    "recordid,inc_dincident,inc_dreported,inc_type,inc_category,inc_subcategory,inc_severity,"
    "inc_loctype,inc_locactual_type,inc_specialty,inc_name,con_nhsno,INC_NOTES"
)
DATIX_GOOD = {
    "recordid": "55001",
    "inc_dincident": "01/03/2024",
    "inc_dreported": "04/03/2024",
    "inc_type": "PSI",
    "inc_category": "FALL",
    "inc_subcategory": "FALL01",
    "inc_severity": "LOW",
    "inc_loctype": "INPAT",
    "inc_locactual_type": "WARD",
    "inc_specialty": "ELDERLY",
    "inc_name": "Winifred Attwood",
    "con_nhsno": "9434765919",
    "INC_NOTES": "Winifred found on floor",
}


def _csv_cell(value: str) -> str:
    return f'"{value}"' if "," in value else value


def lfpse_row(**changes: str) -> str:
    row = {**GOOD, **changes}
    return ",".join(_csv_cell(row[f]) for f in FIELDS)


def datix_row(**changes: str) -> str:
    row = {**DATIX_GOOD, **changes}
    return ",".join(_csv_cell(row[f]) for f in DATIX_HEADER.split(","))


BASELINE_NAME = "QHM_lfpse_baseline.csv"
BASELINE = "\n".join(
    [
        LFPSE_HEADER,
        lfpse_row(Reference="8000001", Revision="3"),
        lfpse_row(Reference="8000002", OccurredOrganisationCode="RR7"),
        lfpse_row(Reference="8000003", OccurredOrganisationCode="RTF", OT001="3"),
    ]
).encode()
BASELINE_EVENTS = 3


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    status: str  # loaded | rejected | duplicate
    rule: str | None = None
    bad_lines: dict[int, str] = field(default_factory=dict)  # line -> a rule it must carry
    loaded: int = 0
    reason: str = ""  # text the file's reason (rejected) must hold
    warning: str = ""
    secrets: tuple[str, ...] = ()  # values that must appear in no table


def _row_case(name: str, rule: str, *, submitter: str = "RTD", **changes: str) -> Case:
    body = "\n".join([LFPSE_HEADER, lfpse_row(), lfpse_row(**{"Reference": "9000002", **changes})])
    # Planted values that are not dates (dates are kept): they must be stored nowhere.
    secrets = tuple(v for v in changes.values() if len(v) > 6 and not re.match(r"^[\d/-]+$", v))
    return Case(
        f"{submitter}_{name}.csv", body.encode(), "loaded", rule, {3: rule}, 1, secrets=secrets
    )


def _datix_case(name: str, rule: str, **changes: str) -> Case:
    body = "\n".join([DATIX_HEADER, datix_row(), datix_row(recordid="55002", **changes)])
    return Case(f"RTD_{name}.csv", body.encode(), "loaded", rule, {3: rule}, 1)


def _xlsx(rows: list[list[str]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for i, row in enumerate(rows):
        sheet.write_row(i, 0, row)
    book.close()
    return buffer.getvalue()


def cases() -> list[Case]:
    two_patients = "\n".join(
        [
            LFPSE_HEADER,
            lfpse_row(),
            lfpse_row(Reference="9000003", EntityId="1"),
            lfpse_row(Reference="9000003", EntityId="2", OT001="9"),
        ]
    )
    twice = "\n".join([LFPSE_HEADER, lfpse_row(), lfpse_row()])
    unexpected = (
        DATIX_HEADER
        + ",Ref2,Extra Info\n"
        + datix_row()
        + ",943 476 5919,Seen by Dr Hargreaves at 14 Acacia Avenue\n"
        + datix_row(recordid="55002")
        + ",401 023 2137,Call her daughter on 07700 900461\n"
    )
    return [
        # -- rows: identifiers and revisions ------------------------------------------
        _row_case("missing_reference", "missing_reference", Reference=""),
        _row_case(
            "reference_is_an_email",
            "reference_not_an_identifier",
            Reference="jo.bloggs@example.nhs.uk",
        ),
        _row_case("revision_backwards", "revision_backwards", Reference="8000001", Revision="2"),
        _row_case("revision_not_a_number", "revision_not_a_number", Revision="two"),
        _row_case("old_taxonomy", "unsupported_taxonomy_version", TaxonomyVersion="4"),
        # -- rows: dates -----------------------------------------------------------------
        _row_case(
            "event_after_report",
            "event_after_report",
            T005="2024-03-10",
            SubmissionDate="2024-03-05",
        ),
        _row_case(
            "event_in_future", "event_in_future", T005="2030-01-01", SubmissionDate="2030-01-02"
        ),
        _row_case("impossible_date", "event_date_unreadable", T005="31/02/2024"),
        # -- rows: organisations ---------------------------------------------------------
        _row_case(
            "unknown_organisation",
            "unknown_organisation",
            submitter="QHM",
            OccurredOrganisationCode="ZZZ99",
        ),
        _row_case(
            "someone_elses_event", "organisation_not_submitter", OccurredOrganisationCode="RR7"
        ),
        # -- rows: codes -----------------------------------------------------------------
        _row_case("unknown_service_area", "unknown_service_area", L003="99"),
        _row_case("unknown_agent", "unknown_agents", A001="4 77"),
        _row_case("harm_outside_list", "harm_outside_list", OT001="7"),
        _row_case("psychological_harm_five", "psychological_harm_outside_list", OT002="5"),
        _row_case("unknown_event_type", "unmapped_event_type", CL001="9"),
        _row_case("exact_age_not_band", "age_not_a_band", P007="67"),
        # -- rows: personal data and free text in kept columns ----------------------------
        _row_case(
            "free_text_in_location",
            "free_text_in_location",
            L004="Bay 4 beside the nurses station",
        ),
        _row_case("nhs_number_in_specialty", "personal_data_in_specialty", L006="943 476 5919"),
        _row_case("postcode_in_location", "personal_data_in_location", L004="NE1 4LP"),
        _row_case(
            "email_in_event_type", "personal_data_in_event_type", CL001="mary.smith@example.com"
        ),
        # -- rows: whole events ------------------------------------------------------------
        Case(
            "RTD_one_patient_bad.csv",
            two_patients.encode(),
            "loaded",
            "harm_outside_list",
            {4: "harm_outside_list", 3: "event_incomplete"},
            1,
        ),
        Case(
            "RTD_duplicate_row.csv",
            twice.encode(),
            "loaded",
            "duplicate_row",
            {3: "duplicate_row"},
            1,
        ),
        # -- local (Datix-style) exports ----------------------------------------------------
        _datix_case("unmapped_category", "unmapped_category", inc_category="ZZZ"),
        _datix_case("unmapped_severity", "unmapped_physical_harm", inc_severity="BAD"),
        _datix_case("reported_before_incident", "event_after_report", inc_dreported="01/02/2024"),
        Case(
            "RTD_personal_data_under_unexpected_names.csv",
            unexpected.encode(),
            "loaded",
            loaded=2,
            warning="5 columns not in the datix_export allow-list dropped unread",
            secrets=(
                "943 476 5919",
                "401 023 2137",
                "Hargreaves",
                "Acacia Avenue",
                "07700 900461",
                "Winifred",
                "9434765919",
            ),
        ),
        # -- whole files ---------------------------------------------------------------------
        Case(
            "RTD_measure_return.csv",
            b"org_code,period,measure_code,numerator,denominator\nRTD,2024-03,FALLS_HARM,7,41000\n",
            "rejected",
            "unrecognised_layout",
            reason="lfpse_extract needs",
        ),
        Case(
            "RTD_two_reference_columns.csv",
            (LFPSE_HEADER + ",Reference\n" + lfpse_row() + ",9000001\n").encode(),
            "rejected",
            "ambiguous_column",
            reason="event_ref",
        ),
        Case(
            "ZZZ_lfpse.csv",
            "\n".join([LFPSE_HEADER, lfpse_row()]).encode(),
            "rejected",
            "unknown_submitter",
        ),
        Case("RTD_lfpse.pdf", b"%PDF-1.4 not an extract", "rejected", "unsupported_file_type"),
        Case("RTD_header_only.csv", (LFPSE_HEADER + "\n").encode(), "rejected", "empty_file"),
        Case(
            "RTD_lfpse\u202ecsv.exe.csv",
            "\n".join([LFPSE_HEADER, lfpse_row()]).encode(),
            "rejected",
            "unsafe_file_name",
        ),
        Case(
            "RTD_title_rows.xlsx",
            _xlsx(
                [
                    ["LFPSE extract for RTD"],
                    [],
                    LFPSE_HEADER.split(","),
                    [GOOD[f] for f in FIELDS],
                    [{**GOOD, "Reference": "9000002", "OT001": "8"}[f] for f in FIELDS],
                ]
            ),
            "loaded",
            "harm_outside_list",
            {5: "harm_outside_list"},
            1,
        ),
        Case("QHM_lfpse_baseline_again.csv", BASELINE, "duplicate"),
    ]


def kh03_xlsx(
    rows: list[list],
    *,
    with_header: bool = True,
    year: str = "2023-24",
    period_end: str = "March",
) -> bytes:
    """A KH03 in the published layout (title rows, group row, column row, England row),
    written by the test: ``rows`` are [org code, name, occupied G&A, LD, maternity, MI]
    (available = occupied; % occupied omitted), or full rows when they have 2 more cells."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet("NHS Trust by Sector")
    sheet.write_row(0, 0, ["Title:", "Average daily number of available and occupied beds"])
    sheet.write_row(3, 0, ["Period:", "January to March 2024"])
    sheet.write_row(11, 0, ["Provider Level Data"])
    sectors = ["Total", "General & Acute", "Learning Disabilities", "Maternity", "Mental Illness"]
    if with_header:
        sheet.write(12, 5, "Available")
        sheet.write(12, 11, "Occupied")
        sheet.write(12, 17, "% Occupied")
        sheet.write_row(13, 0, ["Year", "Period End", "Region Code", "Org Code", "Org Name"])
        for first in (5, 11, 17):
            sheet.write_row(13, first, sectors)
    sheet.write_row(14, 0, [year, period_end, None, None, "England"])
    for i, row in enumerate(rows, start=16):
        org, name, *beds = row
        quarter = row[2:4] if len(beds) > 4 else [year, period_end]
        occupied = beds[-4:]
        numbers = [b for b in occupied if isinstance(b, int | float)]
        total = sum(numbers) if len(numbers) == 4 else occupied[0]
        line = [*quarter, "Y63", org, name, total, *occupied, None, total, *occupied]
        sheet.write_row(i, 0, line)
    book.close()
    return buffer.getvalue()
