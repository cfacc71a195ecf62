"""One export -> one typed row per response, ready for the row rules.

This is where personal data is dropped. Only the columns matched by name are selected out
of the grid: the response id (hashed at once), the completion time, a test-response flag,
the organisation and staff group (when a wave contract names those columns) and the
instrument questions. Names, e-mail addresses, IP addresses, locations, free-text answers
and every other column are never selected: they stay in the grid, which the caller drops
with the file's bytes, and reach no frame that is written anywhere.

Answer labels are scored here (reverse-scored questions turned round); labels that are
not on the scale are kept, shortened or withheld, only to explain the quarantine.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.surveys.instrument import Instrument
from pipelines.surveys.layouts import ExportLayout
from pipelines.surveys.matching import MatchResult, match_columns, wanted_context, wanted_question
from pipelines.surveys.normalise import label_key_expr, safe_label_expr, text_key
from pipelines.surveys.waves import Wave

# Qualtrics marks previews, tests and spam in Status (text or numeric code) or
# DistributionChannel; such rows are not real responses.
TEST_MARKERS = frozenset(
    {"survey preview", "survey test", "spam", "preview spam", "preview", "test", "1", "2", "8", "9"}
)
_MAX_STAFF_GROUP_CHARS = 60


@dataclass(frozen=True)
class TypedExport:
    frame: pl.DataFrame
    layout: str
    question_ids: tuple[str, ...]


def response_key(wave_id: str, submitter: str, tool: str, raw_id: str) -> str:
    """Stable pseudonymous id of a response: the same response re-exported later gets the
    same key (so it supersedes), but the tool's own respondent id is not stored."""
    digest = hashlib.sha256(f"{wave_id}|{submitter}|{tool}|{raw_id}".encode())
    return digest.hexdigest()[:32]


def score_column(question_id: str) -> str:
    return f"score_{question_id}"


def label_column(question_id: str) -> str:
    return f"raw_{question_id}"


def _pick_timestamps(raw: pl.Series, formats: tuple[str, ...], wave: Wave) -> pl.Series:
    """Parse with the one format that reads this file best: most values parsed, then most
    inside the wave window (which settles day/month order when every day is 12 or less)."""
    text = raw.str.strip_chars()
    best: tuple[int, int] | None = None
    chosen = pl.Series(raw.name, [None] * raw.len(), dtype=pl.Datetime("us"))
    for fmt in formats:
        parsed = text.str.to_datetime(fmt, strict=False, time_unit="us")
        parsed = parsed.set(~parsed.dt.year().is_between(2000, 2100).fill_null(False), None)
        in_window = parsed.dt.date().is_between(wave.opens_on, wave.closes_on).sum()
        score = (int(parsed.is_not_null().sum()), int(in_window))
        if best is None or score > best:
            best, chosen = score, parsed
    return chosen


def _organisation_map(values: pl.Series, organisations: pl.DataFrame) -> dict[str, str]:
    """Organisation cells -> ODS code, matched on the code or on the registered name."""
    by_code = set(organisations["org_code"].to_list())
    by_name = {
        text_key(name): code
        for code, name in organisations.select("org_code", "org_name").iter_rows()
        if name
    }
    mapping = {}
    for value in values.drop_nulls().unique().to_list():
        code = value.strip().upper()
        if code in by_code:
            mapping[value] = code
        elif text_key(value) in by_name:
            mapping[value] = by_name[text_key(value)]
    return mapping


def type_export(
    grid: pl.DataFrame,
    layout: ExportLayout,
    *,
    file_name: str,
    wave: Wave,
    submitter: str,
    organisations: pl.DataFrame,
) -> TypedExport:
    """Select, score and type the responses of one export (file rules raise FileRejected).

    The steps, one function each: find the instrument's questions (:func:`_question_columns`)
    and the response's own columns (:func:`_response_columns`), then the context columns
    the wave names among the rest (:func:`_context_columns`); select only those
    (:func:`_selected_rows`: personal data stays behind in the grid), score the answers
    (:func:`_scored`) and type the rest (:func:`_typed_rows`).
    """
    instrument: Instrument = wave.instrument
    questions = _question_columns(layout, instrument, file_name)
    response_id, submitted_at, test_flag = _response_columns(layout, file_name)
    used = {*questions.found.values(), response_id, submitted_at}
    if test_flag is not None:
        used.add(test_flag)
    org_column, group_column = _context_columns(layout, wave, used)
    selected = _selected_rows(
        grid,
        layout.profile.header_rows,
        [response_id, submitted_at, test_flag, org_column, group_column],
        {q.question_id: questions.found[q.question_id] for q in instrument.questions},
    )
    frame = _typed_rows(
        selected,
        file_name=file_name,
        layout=layout,
        wave=wave,
        submitter=submitter,
        organisations=organisations,
        org_from_column=org_column is not None,
    )
    return TypedExport(
        frame=frame,
        layout=layout.profile.layout,
        question_ids=tuple(q.question_id for q in instrument.questions),
    )


def _question_columns(layout: ExportLayout, instrument: Instrument, file_name: str) -> MatchResult:
    """One column per instrument question, matched by text or export id; an export missing
    a question, or with a question two columns could be, is refused (scoring a guess
    would be wrong silently)."""
    questions = match_columns(layout, [wanted_question(q) for q in instrument.questions])
    if questions.ambiguous:
        raise FileRejected(
            file_name,
            "ambiguous_columns",
            f"questions {', '.join(questions.ambiguous)} each match more than one column",
        )
    if questions.missing:
        raise FileRejected(
            file_name,
            "missing_questions",
            f"{layout.profile.layout} export has no column for {', '.join(questions.missing)} "
            f"of instrument {instrument.instrument_id} (matched by text or export id)",
        )
    return questions


def _response_columns(layout: ExportLayout, file_name: str) -> tuple[str, str, str | None]:
    """The tool's response id and completion time columns (required: without them a
    response cannot be deduplicated or dated) and its test-response flag, if any."""
    profile = layout.profile
    response_id = layout.field(profile.response_id)
    submitted_at = layout.field(profile.submitted_at)
    if response_id is None or submitted_at is None:
        raise FileRejected(
            file_name,
            "wrong_layout",
            f"{profile.layout} export lacks its response id or completion time column",
        )
    test_flag = layout.field(profile.test_flag)
    return response_id.name, submitted_at.name, test_flag.name if test_flag else None


def _context_columns(
    layout: ExportLayout, wave: Wave, used: set[str]
) -> tuple[str | None, str | None]:
    """The organisation and staff group columns the wave contract names, among the columns
    not already taken by a question or the response's own columns."""
    context = match_columns(
        layout,
        [
            wanted_context("organisation", wave.organisation_columns),
            wanted_context("staff_group", wave.staff_group_columns),
        ],
        exclude=used,
    )
    return context.found.get("organisation"), context.found.get("staff_group")


def _selected_rows(
    grid: pl.DataFrame,
    header_rows: int,
    columns: list[str | None],
    questions: dict[str, str],
) -> pl.DataFrame:
    """Only the matched columns of the rows below the header, as trimmed text (blank ->
    null), each row with its line in the file; a row with no cell at all is spacing, not
    a response. ``columns``: response id, completion time, test flag, organisation, staff
    group (None: not in this export); ``questions``: question id -> grid column."""
    body = grid.slice(header_rows).with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + header_rows + 1).alias("source_line")
    )
    body = body.filter(pl.any_horizontal(pl.col(grid.columns).is_not_null()))

    def text(column: str | None) -> pl.Expr:
        if column is None:
            return pl.lit(None, pl.String)
        return pl.col(column).str.strip_chars().replace("", None)

    names = ["response_id", "submitted_at", "test_flag", "organisation", "staff_group"]
    return body.select(
        "source_line",
        *[text(column).alias(f"raw_{name}") for name, column in zip(names, columns, strict=True)],
        *[pl.col(column).alias(label_column(q)) for q, column in questions.items()],
    )


def _scored(instrument: Instrument) -> tuple[list[pl.Expr], pl.Expr]:
    """Each question's score column (reverse-scored questions turned round) and one column
    naming the labels that are not on the scale (shortened or withheld, for the quarantine)."""
    scored = []
    unknown = []
    for question in instrument.questions:
        raw = label_column(question.question_id)
        label = label_key_expr(raw)
        score = label.replace_strict(instrument.scores, default=None, return_dtype=pl.Int16)
        if question.reverse:
            score = instrument.scale_min + instrument.scale_max - score
        scored.append(score.alias(score_column(question.question_id)))
        known = (
            label.is_null()
            | (label == "")
            | label.is_in(list(instrument.missing))
            | label.is_in(list(instrument.scores))
        )
        unknown.append(
            pl.when(~known).then(
                pl.format("{} '{}'", pl.lit(question.question_id), safe_label_expr(raw))
            )
        )
    unknown_labels = (
        pl.concat_str(unknown, separator="; ", ignore_nulls=True)
        .replace("", None)
        .alias("unknown_labels")
    )
    return scored, unknown_labels


def _typed_rows(
    selected: pl.DataFrame,
    *,
    file_name: str,
    layout: ExportLayout,
    wave: Wave,
    submitter: str,
    organisations: pl.DataFrame,
    org_from_column: bool,
) -> pl.DataFrame:
    """The selected rows typed: response ids hashed, completion times read with the tool's
    formats, the organisation (its column's value, else the submitter) joined to the
    register, a staff group that could name a person withheld, answers scored, and the
    wave's dates beside each row."""
    profile = layout.profile
    tool = profile.tool
    keys = [
        None if raw is None else response_key(wave.wave_id, submitter, tool, raw)
        for raw in selected["raw_response_id"].to_list()
    ]
    formats = wave.timestamp_formats.get(tool) or profile.timestamp_formats
    timestamps = _pick_timestamps(selected["raw_submitted_at"], formats, wave)
    org_map = _organisation_map(selected["raw_organisation"], organisations)
    file_group = wave.staff_group_for(file_name)
    scored, unknown_labels = _scored(wave.instrument)
    group = pl.col("raw_staff_group")
    return (
        selected.with_columns(
            pl.Series("response_id", keys, dtype=pl.String),
            timestamps.alias("submitted_at"),
            pl.lit(submitter).alias("submitter_code"),
            pl.lit(org_from_column).alias("organisation_from_column"),
            pl.col("raw_test_flag")
            .str.to_lowercase()
            .is_in(list(TEST_MARKERS))
            .fill_null(False)
            .alias("is_test"),
            pl.when(pl.lit(org_from_column))
            .then(pl.col("raw_organisation").replace_strict(org_map, default=None))
            .otherwise(pl.lit(submitter))
            .alias("org_code"),
            pl.when(group.is_not_null())
            .then(
                pl.when(
                    (group.str.len_chars() <= _MAX_STAFF_GROUP_CHARS) & ~group.str.contains("@")
                ).then(group)
            )
            .otherwise(pl.lit(file_group, pl.String))
            .alias("staff_group"),
            *scored,
            unknown_labels,
        )
        .join(
            organisations.select(
                "org_code",
                pl.col("icb_code").alias("org_icb_code"),
                pl.lit(True).alias("org_known"),
            ),
            on="org_code",
            how="left",
        )
        .with_columns(
            pl.col("org_known").fill_null(False),
            pl.lit(wave.wave_id).alias("wave_id"),
            pl.lit(wave.opens_on).alias("wave_opens_on"),
            pl.lit(wave.closes_on).alias("wave_closes_on"),
        )
        .sort("source_line")
    )
