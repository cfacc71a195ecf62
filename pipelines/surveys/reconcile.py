"""No response lost: every survey file's counts add up and match the rows in raw.

For each survey submission: rows read = loaded + quarantined (responses); the loaded count
equals its rows in ``raw.survey_responses``, the quarantined count its rows in
``raw.survey_quarantine``; and every loaded response has exactly one answer row per
question of its wave's instrument.
"""

from __future__ import annotations

import duckdb

from pipelines.surveys.store import SURVEY_LAYOUT_PREFIX


def survey_reconciliation_problems(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        """
        with loaded as (
            select submission_id, count(*) as n from raw.survey_responses group by 1
        ), quarantined as (
            select submission_id, count(*) as n from raw.survey_quarantine group by 1
        ), answers as (
            select submission_id, count(*) as n from raw.survey_answers group by 1
        ), expected_answers as (
            select r.submission_id, sum(q.questions) as n
            from raw.survey_responses r
            join raw.survey_waves w using (wave_id)
            join (
                select instrument_id, count(*) as questions
                from raw.survey_questions group by 1
            ) q using (instrument_id)
            group by 1
        )
        select log.file_name, log.rows_read, log.rows_loaded, log.rows_quarantined,
               coalesce(loaded.n, 0), coalesce(quarantined.n, 0),
               coalesce(answers.n, 0), coalesce(expected_answers.n, 0)
        from raw.submission_log as log
        left join loaded using (submission_id)
        left join quarantined using (submission_id)
        left join answers using (submission_id)
        left join expected_answers using (submission_id)
        where log.layout like ?
          and (log.rows_read <> log.rows_loaded + log.rows_quarantined
               or log.rows_loaded <> coalesce(loaded.n, 0)
               or log.rows_quarantined <> coalesce(quarantined.n, 0)
               or coalesce(answers.n, 0) <> coalesce(expected_answers.n, 0))
        order by log.submission_id
        """,
        [f"{SURVEY_LAYOUT_PREFIX}%"],
    ).fetchall()
    return [
        f"{name}: read {read}, logged loaded {lo} / quarantined {q}, raw has {rl} / {rq}; "
        f"answers {a} of {ea} expected"
        for name, read, lo, q, rl, rq, a, ea in rows
    ]
