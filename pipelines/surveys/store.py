"""The survey tables of the raw layer, and how one export is written to them.

Survey files share ``raw.submission_log`` with measure returns (``layout`` starts with
``survey``); everything else has its own table. ``raw.survey_answers`` is respondent-level
and never leaves the working file: dbt aggregates it and suppresses small groups.
No table here has a column for a name, an e-mail address, an IP address or free text.
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import polars as pl

from pipelines.surveys.instrument import Instrument
from pipelines.surveys.normalise import safe_label_expr, safe_organisation_expr
from pipelines.surveys.responses import label_column, score_column
from pipelines.surveys.waves import Wave
from pipelines.warehouse import insert_frame, quarantine_table

SURVEY_LAYOUT_PREFIX = "survey"

SURVEY_RAW_DDL = """
create schema if not exists raw;

create table if not exists raw.survey_waves (
    wave_id         varchar primary key,
    wave_name       varchar not null,
    instrument_id   varchar not null,
    opens_on        date not null,
    closes_on       date not null,
    contract_path   varchar not null,
    sha256          varchar not null,
    loaded_at       timestamp not null
);

create table if not exists raw.survey_questions (
    instrument_id   varchar not null,
    question_id     varchar not null,
    question_text   varchar not null,
    domain_code     varchar not null,
    domain_name     varchar not null,
    domain_order    integer not null,
    is_reversed     boolean not null,
    question_order  integer not null,
    scale_min       integer not null,   -- scores run scale_min..scale_max (1..5)
    scale_max       integer not null,
    positive_from   integer not null,   -- scores at or above are "positive"
    loaded_at       timestamp not null,
    primary key (instrument_id, question_id)
);

-- One row per accepted response. response_id is a pseudonymous hash (see
-- pipelines.surveys.responses.response_key); a later export of the same response
-- supersedes it (superseded_by = the later submission).
create table if not exists raw.survey_responses (
    submission_id   bigint not null,
    response_id     varchar not null,
    wave_id         varchar not null,
    org_code        varchar not null,
    staff_group     varchar,
    layout          varchar not null,
    submitted_at    timestamp not null,
    superseded_by   bigint,
    source_file     varchar not null,
    sha256          varchar not null,
    source_line     bigint not null,
    loaded_at       timestamp not null
);

-- One row per response and instrument question: score 1-5 after reverse scoring, null
-- when the question was skipped or answered "don't know" / "not applicable".
create table if not exists raw.survey_answers (
    submission_id   bigint not null,
    response_id     varchar not null,
    org_code        varchar not null,
    staff_group     varchar,
    wave_id         varchar not null,
    question_id     varchar not null,
    score           smallint
);

-- Responses refused at ingest: same columns as raw.quarantine. raw_record holds the
-- hashed response id and the matched cells only (long or e-mail-like text withheld).
""" + quarantine_table("raw.survey_quarantine")


def ensure_survey_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SURVEY_RAW_DDL)


def replace_instruments(
    con: duckdb.DuckDBPyConnection, instruments: dict[str, Instrument], now: datetime
) -> int:
    """The question-to-domain map of every instrument in the repository, replaced per
    instrument (it is code). An instrument whose file was removed keeps its questions:
    waves already loaded still need them."""
    rows = [
        (
            instrument.instrument_id,
            question.question_id,
            question.text,
            question.domain,
            instrument.domains[question.domain],
            list(instrument.domains).index(question.domain) + 1,
            question.reverse,
            position + 1,
            instrument.scale_min,
            instrument.scale_max,
            instrument.positive_from,
            now,
        )
        for instrument in instruments.values()
        for position, question in enumerate(instrument.questions)
    ]
    for instrument_id in instruments:
        con.execute("delete from raw.survey_questions where instrument_id = ?", [instrument_id])
    if rows:
        con.executemany(
            "insert into raw.survey_questions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
    return len(rows)


def upsert_waves(con: duckdb.DuckDBPyConnection, waves: list[Wave], now: datetime) -> None:
    """Waves as their contracts say now; a wave whose folder was removed is kept."""
    for wave in waves:
        con.execute("delete from raw.survey_waves where wave_id = ?", [wave.wave_id])
        con.execute(
            "insert into raw.survey_waves values (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                wave.wave_id,
                wave.name,
                wave.instrument.instrument_id,
                wave.opens_on,
                wave.closes_on,
                wave.contract_path,
                wave.sha256,
                now,
            ],
        )


def write_responses(
    con: duckdb.DuckDBPyConnection,
    *,
    submission_id: int,
    good: pl.DataFrame,
    bad: pl.DataFrame,
    question_ids: tuple[str, ...],
    layout: str,
    source_file: str,
    sha256: str,
    now: datetime,
) -> None:
    """Loaded responses, their answers and quarantined responses of one submission.

    Runs inside the caller's transaction. Only named, non-identifying columns are
    selected from the typed frames: nothing else the export held can reach a table.
    """
    lineage = {
        "submission_id": pl.lit(submission_id, pl.Int64),
        "source_file": pl.lit(source_file),
        "sha256": pl.lit(sha256),
    }
    responses = good.select(
        lineage["submission_id"].alias("submission_id"),
        "response_id",
        "wave_id",
        "org_code",
        "staff_group",
        pl.lit(layout).alias("layout"),
        "submitted_at",
        pl.lit(None, pl.Int64).alias("superseded_by"),
        lineage["source_file"].alias("source_file"),
        lineage["sha256"].alias("sha256"),
        "source_line",
        pl.lit(now).alias("loaded_at"),
    )
    _supersede(con, responses, submission_id)
    insert_frame(con, "raw.survey_responses", responses)
    insert_frame(con, "raw.survey_answers", _answers(good, lineage, question_ids))
    if bad.height:
        insert_frame(con, "raw.survey_quarantine", _quarantined(bad, lineage, question_ids, now))


def _supersede(con: duckdb.DuckDBPyConnection, responses: pl.DataFrame, submission_id: int) -> None:
    """A response exported again (same wave and response id) supersedes the stored one:
    the latest export of a response wins, as the latest return of a month does."""
    if not responses.height:
        return
    con.register("incoming_survey_keys", responses.select("wave_id", "response_id").to_arrow())
    try:
        con.execute(
            """
            update raw.survey_responses as r set superseded_by = ?
            from incoming_survey_keys i
            where r.superseded_by is null
              and r.wave_id = i.wave_id and r.response_id = i.response_id
            """,
            [submission_id],
        )
    finally:
        con.unregister("incoming_survey_keys")


def _answers(
    good: pl.DataFrame, lineage: dict[str, pl.Expr], question_ids: tuple[str, ...]
) -> pl.DataFrame:
    """One row per loaded response and question with its score (respondent-level: dbt
    aggregates it and suppresses small groups)."""
    return good.select(
        lineage["submission_id"].alias("submission_id"),
        "response_id",
        "org_code",
        "staff_group",
        "wave_id",
        *[pl.col(score_column(q)).alias(q) for q in question_ids],
    ).unpivot(
        index=["submission_id", "response_id", "org_code", "staff_group", "wave_id"],
        on=list(question_ids),
        variable_name="question_id",
        value_name="score",
    )


def _quarantined(
    bad: pl.DataFrame, lineage: dict[str, pl.Expr], question_ids: tuple[str, ...], now: datetime
) -> pl.DataFrame:
    """Refused responses with their reasons; ``raw_record`` holds the hashed response id
    and the matched cells only, long or e-mail-like text withheld."""
    record = pl.struct(
        pl.col("response_id"),
        safe_organisation_expr("raw_organisation").alias("organisation"),
        safe_label_expr("raw_staff_group").alias("staff_group"),
        safe_label_expr("raw_submitted_at").alias("submitted_at"),
        safe_label_expr("raw_test_flag").alias("test_flag"),
        pl.struct([safe_label_expr(label_column(q)).alias(q) for q in question_ids]).alias(
            "answers"
        ),
    )
    return bad.select(
        lineage["submission_id"].alias("submission_id"),
        lineage["source_file"].alias("source_file"),
        lineage["sha256"].alias("sha256"),
        "source_line",
        record.struct.json_encode().alias("raw_record"),
        "rules",
        "reasons",
        pl.lit(now).alias("quarantined_at"),
    )
