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
from pipelines.surveys.matching import match_columns, wanted_context, wanted_question
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
    """Select, score and type the responses of one export (file rules raise FileRejected)."""
    instrument: Instrument = wave.instrument
    profile = layout.profile
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
            f"{profile.layout} export has no column for {', '.join(questions.missing)} of "
            f"instrument {instrument.instrument_id} (matched by text or export id)",
        )
    response_id = layout.field(profile.response_id)
    submitted_at = layout.field(profile.submitted_at)
    if response_id is None or submitted_at is None:
        raise FileRejected(
            file_name,
            "wrong_layout",
            f"{profile.layout} export lacks its response id or completion time column",
        )
    test_flag = layout.field(profile.test_flag)
    used = {*questions.found.values(), response_id.name, submitted_at.name}
    if test_flag is not None:
        used.add(test_flag.name)
    context = match_columns(
        layout,
        [
            wanted_context("organisation", wave.organisation_columns),
            wanted_context("staff_group", wave.staff_group_columns),
        ],
        exclude=used,
    )
    org_column = context.found.get("organisation")
    group_column = context.found.get("staff_group")

    body = grid.slice(profile.header_rows).with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + profile.header_rows + 1).alias("source_line")
    )
    # A row with no cell at all is spacing, not a response.
    body = body.filter(pl.any_horizontal(pl.col(grid.columns).is_not_null()))

    def text(column: str | None) -> pl.Expr:
        if column is None:
            return pl.lit(None, pl.String)
        return pl.col(column).str.strip_chars().replace("", None)

    selected = body.select(
        "source_line",
        text(response_id.name).alias("raw_response_id"),
        text(submitted_at.name).alias("raw_submitted_at"),
        text(test_flag.name if test_flag else None).alias("raw_test_flag"),
        text(org_column).alias("raw_organisation"),
        text(group_column).alias("raw_staff_group"),
        *[
            pl.col(questions.found[q.question_id]).alias(label_column(q.question_id))
            for q in instrument.questions
        ],
    )

    tool = profile.tool
    keys = [
        None if raw is None else response_key(wave.wave_id, submitter, tool, raw)
        for raw in selected["raw_response_id"].to_list()
    ]
    formats = wave.timestamp_formats.get(tool) or profile.timestamp_formats
    timestamps = _pick_timestamps(selected["raw_submitted_at"], formats, wave)
    org_map = _organisation_map(selected["raw_organisation"], organisations)
    file_group = wave.staff_group_for(file_name)

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

    group = pl.col("raw_staff_group")
    frame = (
        selected.with_columns(
            pl.Series("response_id", keys, dtype=pl.String),
            timestamps.alias("submitted_at"),
            pl.lit(submitter).alias("submitter_code"),
            pl.lit(org_column is not None).alias("organisation_from_column"),
            pl.col("raw_test_flag")
            .str.to_lowercase()
            .is_in(list(TEST_MARKERS))
            .fill_null(False)
            .alias("is_test"),
            pl.when(pl.lit(org_column is not None))
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
            pl.concat_str(unknown, separator="; ", ignore_nulls=True)
            .replace("", None)
            .alias("unknown_labels"),
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
    return TypedExport(
        frame=frame,
        layout=profile.layout,
        question_ids=tuple(q.question_id for q in instrument.questions),
    )
