"""Which survey tool wrote an export, and what each of its columns is called.

Three tools, four layouts, told apart by their header rows (never by file name):

* Qualtrics: three header rows: short names (``Q4_1``), question text (a matrix reads
  ``<stem> - <statement>``), then ImportId JSON (``{"ImportId":"QID4_1"}``).
* Qualtrics legacy: two header rows, ``V1, V2, ... Q4_1`` then text with ``ResponseID``;
  often UTF-8 with a BOM.
* SurveyMonkey: two header rows: the question (written once above a matrix, blank
  cells after it), then the sub-answer: the matrix statement, ``Response`` or
  ``Open-Ended Response``.
* Microsoft Forms: one header row, ``ID, Start time, Completion time, Email, Name`` then
  one column per question.

Each column gets the header keys it can be found by (short names, ImportIds) and the
question texts it may carry. Free-text columns (open-ended answers, "Other (please
specify)", Qualtrics ``_TEXT`` entries) are marked so they can never be matched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl

from pipelines.ingest.contracts import header_key
from pipelines.ingest.errors import FileRejected
from pipelines.surveys.normalise import text_key

ISO_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class ToolProfile:
    """How one layout names its metadata; keys are :func:`header_key` forms."""

    layout: str  # recorded in raw.submission_log.layout
    tool: str  # qualtrics | surveymonkey | msforms: keys timestamp_formats, response ids
    header_rows: int
    response_id: tuple[str, ...]
    submitted_at: tuple[str, ...]
    test_flag: tuple[str, ...]
    timestamp_formats: tuple[str, ...]


QUALTRICS = ToolProfile(
    layout="survey_qualtrics",
    tool="qualtrics",
    header_rows=3,
    response_id=("responseid", "recordid"),
    submitted_at=("recordeddate", "enddate"),
    test_flag=("status", "distributionchannel"),
    timestamp_formats=(*ISO_FORMATS, "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M"),
)
QUALTRICS_LEGACY = ToolProfile(
    layout="survey_qualtrics_legacy",
    tool="qualtrics",
    header_rows=2,
    response_id=("responseid",),
    submitted_at=("enddate",),
    test_flag=("status",),
    timestamp_formats=QUALTRICS.timestamp_formats,
)
SURVEYMONKEY = ToolProfile(
    layout="survey_surveymonkey",
    tool="surveymonkey",
    header_rows=2,
    response_id=("respondentid",),
    submitted_at=("enddate",),
    test_flag=(),
    timestamp_formats=(
        "%m/%d/%Y %I:%M:%S %p",
        "%d/%m/%Y %I:%M:%S %p",
        "%m/%d/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M:%S",
        *ISO_FORMATS,
    ),
)
MSFORMS = ToolProfile(
    layout="survey_msforms",
    tool="msforms",
    header_rows=1,
    response_id=("id",),
    submitted_at=("completiontime",),
    test_flag=(),
    timestamp_formats=(
        "%d/%m/%Y %H:%M:%S",
        "%m/%d/%y %H:%M:%S",
        "%m/%d/%Y %H:%M:%S",
        "%d/%m/%Y %H:%M",
        "%m/%d/%Y %I:%M:%S %p",
        *ISO_FORMATS,
    ),
)

_SURVEYMONKEY_PLAIN = {"", "response"}
_FREE_TEXT_MARKERS = ("openendedresponse", "pleasespecify", "othertext", "comment")


@dataclass(frozen=True)
class ExportColumn:
    name: str  # position name in the grid (c0, c1, ...); never used for matching
    keys: frozenset[str]  # header keys: short names, ImportIds, the header text itself
    texts: tuple[str, ...]  # text_key forms of the question text this column may carry
    free_text: bool


@dataclass(frozen=True)
class ExportLayout:
    profile: ToolProfile
    columns: tuple[ExportColumn, ...]

    def field(self, keys: tuple[str, ...]) -> ExportColumn | None:
        """The metadata column known by the first of ``keys`` that any column carries."""
        for key in keys:
            for column in self.columns:
                if key in column.keys and not column.free_text:
                    return column
        return None


def _import_id(cell: str) -> str | None:
    text = cell.strip()
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("ImportId"), str):
        return value["ImportId"]
    return None


def _cells(grid: pl.DataFrame, rows: int) -> list[list[str]]:
    return [["" if c is None else str(c) for c in grid.row(i)] for i in range(rows)]


def _is_free_text(*labels: str) -> bool:
    keys = [header_key(label) for label in labels if label]
    return any(marker in key for key in keys for marker in _FREE_TEXT_MARKERS) or any(
        label.upper().endswith("_TEXT") for label in labels if label
    )


def _qualtrics(grid: pl.DataFrame, legacy: bool) -> ExportLayout:
    profile = QUALTRICS_LEGACY if legacy else QUALTRICS
    rows = _cells(grid, profile.header_rows)
    columns = []
    for i, name in enumerate(grid.columns):
        short, text = rows[0][i], rows[1][i]
        import_id = None if legacy else _import_id(rows[2][i])
        labels = [short, text, *([import_id] if import_id else [])]
        columns.append(
            ExportColumn(
                name=name,
                keys=frozenset(header_key(label) for label in labels if label),
                texts=(text_key(text),) if text.strip() else (),
                free_text=_is_free_text(short, import_id or ""),
            )
        )
    return ExportLayout(profile, tuple(columns))


def _surveymonkey(grid: pl.DataFrame) -> ExportLayout:
    rows = _cells(grid, 2)
    columns = []
    stem = ""
    for i, name in enumerate(grid.columns):
        top, sub = rows[0][i].strip(), rows[1][i].strip()
        if top:
            stem = top
        elif not sub:
            stem = ""  # a blank column ends a matrix
        sub_key = header_key(sub)
        if sub_key in _SURVEYMONKEY_PLAIN:
            texts: tuple[str, ...] = (text_key(stem),) if stem else ()
        else:
            texts = (text_key(sub), text_key(f"{stem} {sub}"))
        columns.append(
            ExportColumn(
                name=name,
                keys=frozenset(header_key(label) for label in (top, sub) if label),
                texts=tuple(t for t in texts if t),
                free_text=_is_free_text(sub) or sub_key.startswith("other"),
            )
        )
    return ExportLayout(SURVEYMONKEY, tuple(columns))


def _msforms(grid: pl.DataFrame) -> ExportLayout:
    [row] = _cells(grid, 1)
    columns = tuple(
        ExportColumn(
            name=name,
            keys=frozenset({header_key(row[i])} if row[i] else ()),
            texts=(text_key(row[i]),) if row[i].strip() else (),
            free_text=False,
        )
        for i, name in enumerate(grid.columns)
    )
    return ExportLayout(MSFORMS, columns)


def detect_layout(grid: pl.DataFrame, file_name: str) -> ExportLayout:
    """Recognise the tool from the header rows; anything else is a ``wrong_layout``.

    The refusal names what was looked for, never the cells found: a file without headers
    would otherwise copy a respondent's answers into the submission log.
    """
    rows = _cells(grid, min(3, grid.height))
    keys = [{header_key(c) for c in row if c} for row in rows]
    if len(rows) == 3 and any(_import_id(c) for c in rows[2]):
        return _qualtrics(grid, legacy=False)
    if len(rows) >= 2 and "responseid" in keys[1] | keys[0]:
        return _qualtrics(grid, legacy=True)
    if len(rows) >= 2 and "respondentid" in keys[0]:
        return _surveymonkey(grid)
    if rows and {"id", "starttime", "completiontime"} <= keys[0]:
        return _msforms(grid)
    raise FileRejected(
        file_name,
        "wrong_layout",
        "not a recognised survey export: expected Qualtrics (ResponseId and an ImportId "
        "row, or legacy ResponseID), SurveyMonkey (Respondent ID and a sub-answer row) or "
        "Microsoft Forms (ID, Start time, Completion time) header rows",
    )
