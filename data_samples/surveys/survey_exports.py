"""Write survey exports the way Qualtrics, SurveyMonkey and Microsoft Forms do.

Used by ``generate_surveys.py`` (the committed sample) and by the tests, so that both
exercise the same header quirks: Qualtrics' three header rows with ImportId JSON (and the
legacy two-row variant with a BOM), SurveyMonkey's question row with blank cells across a
matrix and its sub-answer row, Microsoft Forms' single row led by ID / Start time /
Completion time / Email / Name. Every export also carries what ingest must drop: names,
e-mail addresses, IP addresses and free-text comments.

Output is deterministic: same respondents, same bytes (XLSX files carry a fixed creation
time).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import xlsxwriter

from pipelines.surveys.instrument import Instrument, Question

# Matrix stems by domain, as a survey designer would word them.
STEMS = {
    "teamwork": "Thinking about the team you work in, how far do you agree or disagree?",
    "communication": "How far do you agree or disagree with the following about communication?",
    "just_culture": "When things go wrong in your organisation...",
    "psychological_safety": "Thinking about speaking up at work...",
    "diversity_inclusion": "Thinking about fairness and inclusion...",
    "civility": "Thinking about how people behave towards each other...",
}
COMMENT_QUESTION = "Is there anything else you would like to tell us about safety culture?"
FIXED_CREATED = datetime(2024, 1, 1)


@dataclass(frozen=True)
class Respondent:
    response_id: str
    submitted_at: datetime
    answers: dict[str, str]  # question id -> answer label as typed ("" = skipped)
    name: str = ""
    email: str = ""
    ip_address: str = ""
    comment: str = ""
    organisation: str | None = None  # the answer to the wave's organisation question
    staff_group: str | None = None  # the answer to the wave's staff-group question
    status: str = "IP Address"  # Qualtrics Response Type ("Survey Preview" for a preview)


@dataclass(frozen=True)
class ExportSpec:
    """What varies between exports of the same answers."""

    order: Sequence[str]  # question ids in column order (never the instrument's order)
    organisation_question: str | None = None
    staff_group_question: str | None = None
    text_overrides: dict[str, str] | None = None  # question id -> wording on this survey


def _text(question: Question, spec: ExportSpec) -> str:
    return (spec.text_overrides or {}).get(question.question_id, question.text)


def _questions(instrument: Instrument, spec: ExportSpec) -> list[Question]:
    by_id = {q.question_id: q for q in instrument.questions}
    return [by_id[q] for q in spec.order]


def _csv(rows: list[list[str]], *, bom: bool, crlf: bool = True) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n" if crlf else "\n")
    writer.writerows(rows)
    return (("\ufeff" if bom else "") + buffer.getvalue()).encode("utf-8")


def _xlsx(rows: list[list[object]]) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True})
    workbook.set_properties({"created": FIXED_CREATED})
    sheet = workbook.add_worksheet("Sheet1")
    stamp = workbook.add_format({"num_format": "dd/mm/yyyy hh:mm:ss"})
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            if isinstance(value, datetime):
                sheet.write_datetime(r, c, value, stamp)
            elif isinstance(value, int | float):
                sheet.write_number(r, c, value)
            elif value not in ("", None):
                sheet.write_string(r, c, str(value))
    workbook.close()
    return buffer.getvalue()


def qualtrics(instrument: Instrument, respondents: Sequence[Respondent], spec: ExportSpec) -> bytes:
    """Qualtrics CSV ("Use choice text"): short names, question text, ImportId JSON; BOM."""
    meta = [
        ("StartDate", "Start Date", '{"ImportId":"startDate","timeZone":"Europe/London"}'),
        ("EndDate", "End Date", '{"ImportId":"endDate","timeZone":"Europe/London"}'),
        ("Status", "Response Type", '{"ImportId":"status"}'),
        ("IPAddress", "IP Address", '{"ImportId":"ipAddress"}'),
        ("Progress", "Progress", '{"ImportId":"progress"}'),
        ("Duration (in seconds)", "Duration (in seconds)", '{"ImportId":"duration"}'),
        ("Finished", "Finished", '{"ImportId":"finished"}'),
        ("RecordedDate", "Recorded Date", '{"ImportId":"recordedDate","timeZone":"Europe/London"}'),
        ("ResponseId", "Response ID", '{"ImportId":"_recordId"}'),
        ("RecipientLastName", "Recipient Last Name", '{"ImportId":"recipientLastName"}'),
        ("RecipientFirstName", "Recipient First Name", '{"ImportId":"recipientFirstName"}'),
        ("RecipientEmail", "Recipient Email", '{"ImportId":"recipientEmail"}'),
        ("ExternalReference", "External Data Reference", '{"ImportId":"externalDataReference"}'),
        ("DistributionChannel", "Distribution Channel", '{"ImportId":"distributionChannel"}'),
        ("UserLanguage", "User Language", '{"ImportId":"userLanguage"}'),
    ]
    header = [list(col) for col in meta]
    if spec.organisation_question:
        header.append(["Q1", spec.organisation_question, '{"ImportId":"QID1"}'])
    if spec.staff_group_question:
        header.append(["Q2", spec.staff_group_question, '{"ImportId":"QID2"}'])
        header.append(
            [
                "Q2_7_TEXT",
                f"{spec.staff_group_question} - Other (please specify) - Text",
                '{"ImportId":"QID2_7_TEXT"}',
            ]
        )
    questions = _questions(instrument, spec)
    for q in questions:
        import_id = q.export_ids[0]
        short = "Q" + import_id.removeprefix("QID")
        header.append(
            [short, f"{STEMS[q.domain]} - {_text(q, spec)}", f'{{"ImportId":"{import_id}"}}']
        )
    header.append(["Q10", COMMENT_QUESTION, '{"ImportId":"QID10_TEXT"}'])
    rows = [[h[i] for h in header] for i in range(3)]
    for r in respondents:
        stamp = r.submitted_at.strftime("%Y-%m-%d %H:%M:%S")
        first, _, last = r.name.partition(" ")
        row = [
            stamp, stamp, r.status, r.ip_address, "100", "412", "True", stamp, r.response_id,
            last, first, r.email, "", "preview" if "Preview" in r.status else "email", "EN-GB",
        ]  # fmt: skip
        if spec.organisation_question:
            row.append(r.organisation or "")
        if spec.staff_group_question:
            row += [r.staff_group or "", ""]
        row += [r.answers.get(q.question_id, "") for q in questions]
        row.append(r.comment)
        rows.append(row)
    return _csv(rows, bom=True)


def qualtrics_legacy(
    instrument: Instrument, respondents: Sequence[Respondent], spec: ExportSpec
) -> bytes:
    """Legacy Qualtrics CSV: ``V1..V10`` and short names, then text; BOM, CRLF."""
    meta = [
        "ResponseID", "ResponseSet", "Name", "ExternalDataReference", "EmailAddress",
        "IPAddress", "Status", "StartDate", "EndDate", "Finished",
    ]  # fmt: skip
    top = [f"V{i}" for i in range(1, len(meta) + 1)]
    second = list(meta)
    if spec.organisation_question:
        top.append("Q1")
        second.append(spec.organisation_question)
    if spec.staff_group_question:
        top.append("Q2")
        second.append(spec.staff_group_question)
    questions = _questions(instrument, spec)
    for q in questions:
        top.append("Q" + q.export_ids[0].removeprefix("QID"))
        second.append(f"{STEMS[q.domain]}-{_text(q, spec)}")
    top.append("Q10")
    second.append(COMMENT_QUESTION)
    rows = [top, second]
    for r in respondents:
        stamp = r.submitted_at.strftime("%Y-%m-%d %H:%M:%S")
        row = [
            r.response_id, "Default Response Set", r.name, "", r.email, r.ip_address,
            "1" if "Preview" in r.status else "0", stamp, stamp, "1",
        ]  # fmt: skip
        if spec.organisation_question:
            row.append(r.organisation or "")
        if spec.staff_group_question:
            row.append(r.staff_group or "")
        row += [r.answers.get(q.question_id, "") for q in questions]
        row.append(r.comment)
        rows.append(row)
    return _csv(rows, bom=True)


def surveymonkey(
    instrument: Instrument,
    respondents: Sequence[Respondent],
    spec: ExportSpec,
    *,
    xlsx: bool,
) -> bytes:
    """SurveyMonkey "All responses data", expanded: question row (written once over a
    matrix), then sub-answer row. US dates in CSV; real date cells in XLSX."""
    top = [
        "Respondent ID", "Collector ID", "Start Date", "End Date", "IP Address",
        "Email Address", "First Name", "Last Name", "Custom Data 1",
    ]  # fmt: skip
    second = [""] * len(top)
    if spec.organisation_question:
        top.append(spec.organisation_question)
        second.append("Response")
    if spec.staff_group_question:
        top += [spec.staff_group_question, ""]
        second += ["Response", "Other (please specify)"]
    questions = _questions(instrument, spec)
    domain = None
    for q in questions:
        top.append(STEMS[q.domain] if q.domain != domain else "")
        second.append(_text(q, spec))
        domain = q.domain
    top.append(COMMENT_QUESTION)
    second.append("Open-Ended Response")
    rows: list[list[object]] = [top, second]
    for r in respondents:
        first, _, last = r.name.partition(" ")
        stamp: object = r.submitted_at if xlsx else r.submitted_at.strftime("%m/%d/%Y %I:%M:%S %p")
        row: list[object] = [
            int(r.response_id) if xlsx else r.response_id, 412345678, stamp, stamp,
            r.ip_address, r.email, first, last, "",
        ]  # fmt: skip
        if spec.organisation_question:
            row.append(r.organisation or "")
        if spec.staff_group_question:
            row += [r.staff_group or "", ""]
        row += [r.answers.get(q.question_id, "") for q in questions]
        row.append(r.comment)
        rows.append(row)
    return _xlsx(rows) if xlsx else _csv(rows, bom=False)


def msforms(
    instrument: Instrument,
    respondents: Sequence[Respondent],
    spec: ExportSpec,
    *,
    xlsx: bool,
) -> bytes:
    """Microsoft Forms: ID, Start time, Completion time, Email, Name, then one column per
    question (trailing spaces and curly apostrophes as Forms leaves them)."""
    header = ["ID", "Start time", "Completion time", "Email", "Name", "Last modified time"]
    if spec.organisation_question:
        header.append(spec.organisation_question + " ")
    if spec.staff_group_question:
        header.append(spec.staff_group_question)
    questions = _questions(instrument, spec)
    header += [_text(q, spec).replace("'", "\u2019") + " " for q in questions]
    header.append(COMMENT_QUESTION)
    rows: list[list[object]] = [header]
    for r in respondents:
        stamp: object = r.submitted_at if xlsx else r.submitted_at.strftime("%d/%m/%Y %H:%M:%S")
        row: list[object] = [
            int(r.response_id) if xlsx else r.response_id, stamp, stamp,
            r.email or "anonymous", r.name, "",
        ]  # fmt: skip
        if spec.organisation_question:
            row.append(r.organisation or "")
        if spec.staff_group_question:
            row.append(r.staff_group or "")
        row += [r.answers.get(q.question_id, "") for q in questions]
        row.append(r.comment)
        rows.append(row)
    return _xlsx(rows) if xlsx else _csv(rows, bom=False)
