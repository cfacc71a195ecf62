"""Survey exports pass the same file rules as measure returns (``pipelines.ingest.files``).

Each bad case is a file named after what is wrong with it. It is dropped into a survey wave
beside good exports and, byte for byte, into a measure landing folder; both ingests must log
it as rejected under the same rule with the same reason text, while the good exports load.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from bad_inputs import (
    MAX_FILE_BYTES,
    MAX_XLSX_INFLATED_BYTES,
    zip_bomb,
    zip_of_many_entries,
    zip_that_lies_about_sizes,
)
from survey_support import instrument, question_ids, spec, survey_exports, working_file, write_wave

from conftest import point_settings_at
from pipelines.ingest.measure_returns import SubmissionOutcome, ingest_landing
from pipelines.settings import Settings, load_settings
from pipelines.surveys.ingest import SurveyOutcome, ingest_surveys
from pipelines.surveys.reconcile import survey_reconciliation_problems


def _export(respondents: int, *, first: int = 1) -> bytes:
    """A real Qualtrics CSV export: ``respondents`` staff, all agreeing, in wave 2024-test."""
    people = [
        survey_exports.Respondent(
            response_id=str(first + i),
            submitted_at=datetime(2024, 3, 5, 9, i % 60),
            answers=dict.fromkeys(question_ids(), "Agree"),
        )
        for i in range(respondents)
    ]
    return survey_exports.qualtrics(instrument(), people, spec())


GOOD_EXPORT = _export(3)


@dataclass(frozen=True)
class FileCase:
    """``place(folder, outside)`` creates the file named ``name`` in ``folder``; ``outside``
    is a folder beyond the landing folder."""

    name: str
    rule: str
    place: Callable[[Path, Path], None]


def _bytes(name: str, body: bytes) -> Callable[[Path, Path], None]:
    return lambda folder, _outside: (folder / name).write_bytes(body)


def _link_out(name: str) -> Callable[[Path, Path], None]:
    def place(folder: Path, outside: Path) -> None:
        target = outside / f"target_of_{name}"
        target.write_bytes(GOOD_EXPORT)
        os.symlink(target, folder / name)

    return place


def _broken_link(name: str) -> Callable[[Path, Path], None]:
    return lambda folder, _outside: os.symlink(folder / "RTD_moved_away.csv", folder / name)


def _case(name: str, rule: str, place: Callable[[str], Callable[[Path, Path], None]]) -> FileCase:
    return FileCase(name, rule, place(name))


# An export over the size limit: a genuine survey, just a large one (never read).
OVERSIZED = _export(5_000)
assert len(OVERSIZED) > MAX_FILE_BYTES

BAD_CASES = [
    FileCase(
        "RTD_..\\..\\etc\\windows_path_parts.csv",
        "unsafe_file_name",
        _bytes("RTD_..\\..\\etc\\windows_path_parts.csv", GOOD_EXPORT),
    ),
    FileCase(
        "RTD_control\x07char.csv",
        "unsafe_file_name",
        _bytes("RTD_control\x07char.csv", GOOD_EXPORT),
    ),
    _case("RTD_link_out_of_landing.csv", "outside_landing_folder", _link_out),
    _case("RTD_broken_link.csv", "not_a_regular_file", _broken_link),
    FileCase("RTD_oversized.csv", "oversized_file", _bytes("RTD_oversized.csv", OVERSIZED)),
    FileCase("RTD_zip_bomb.xlsx", "xlsx_inflates_too_far", _bytes("RTD_zip_bomb.xlsx", zip_bomb())),
    FileCase(
        "RTD_zip_of_many_entries.xlsx",
        "xlsx_inflates_too_far",
        _bytes("RTD_zip_of_many_entries.xlsx", zip_of_many_entries()),
    ),
    FileCase(
        "RTD_zip_lies_about_sizes.xlsx",
        "unreadable_xlsx",
        _bytes("RTD_zip_lies_about_sizes.xlsx", zip_that_lies_about_sizes()),
    ),
]
# Refused from the directory entry alone: never opened, so no digest and (for a name or a
# link) not even a size.
REFUSED_UNREAD = {"unsafe_file_name", "outside_landing_folder", "not_a_regular_file"}


@dataclass
class Runs:
    survey: dict[str, SurveyOutcome]
    measure: dict[str, SubmissionOutcome]
    survey_con: duckdb.DuckDBPyConnection
    measure_con: duckdb.DuckDBPyConnection
    settings: Settings
    survey_landing: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("file_rules")
    outside = root / "outside"
    outside.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        point_settings_at(mp, root)
        mp.setenv("SAFETY_OBS_MAX_FILE_BYTES", str(MAX_FILE_BYTES))
        mp.setenv("SAFETY_OBS_MAX_XLSX_INFLATED_BYTES", str(MAX_XLSX_INFLATED_BYTES))
        settings = load_settings()
    survey_landing = root / "survey_landing"
    wave = write_wave(survey_landing / "2024-test")
    settings.landing_dir.mkdir()
    for case in BAD_CASES:
        case.place(wave, outside)
        case.place(settings.landing_dir, outside)
    # Good exports beside them: a CSV, an XLSX, and a link that stays inside landing (to a
    # hidden file, which is not ingested itself) is followed like any file.
    (wave / "RTF_good.csv").write_bytes(_export(4, first=100))
    forms = [
        survey_exports.Respondent(
            str(200 + i), datetime(2024, 3, 6, 10, i), dict.fromkeys(question_ids(), "Agree")
        )
        for i in range(2)
    ]
    (wave / "RX3_good.xlsx").write_bytes(
        survey_exports.msforms(instrument(), forms, spec(), xlsx=True)
    )
    (wave / ".upload_in_progress.csv").write_bytes(_export(2, first=300))
    os.symlink(wave / ".upload_in_progress.csv", wave / "RTD_link_within_landing.csv")

    survey_con = working_file(root / "survey.duckdb")
    measure_con = working_file(root / "measure.duckdb")
    survey = {
        o.file_name: o
        for o in ingest_surveys(survey_con, settings, landing_dir=survey_landing, run_id="t")
    }
    measure = {
        o.file_name: o for o in ingest_landing(measure_con, settings, today=date(2025, 6, 1))
    }
    yield Runs(survey, measure, survey_con, measure_con, settings, survey_landing)
    survey_con.close()
    measure_con.close()


@pytest.mark.parametrize("case", BAD_CASES, ids=[repr(c.name)[1:-1] for c in BAD_CASES])
def test_a_bad_survey_file_is_refused_like_a_measure_return(runs, case):
    survey, measure = runs.survey[case.name], runs.measure[case.name]
    assert survey.status == "rejected", survey.reason
    assert survey.reason.startswith(f"{case.rule}: "), survey.reason
    assert (survey.rows_read, survey.rows_loaded, survey.rows_quarantined) == (0, 0, 0)
    # One check, one wording: the measure-return ingest says exactly the same.
    assert measure.status == "rejected"
    assert survey.reason == measure.reason
    logged = runs.survey_con.execute(
        "select status, layout, reason, sha256, size_bytes from raw.submission_log"
        " where file_name = ?",
        [case.name],
    ).fetchone()
    status, layout, reason, sha256, size = logged
    assert (status, layout, reason) == ("rejected", "survey", measure.reason)
    if case.rule in REFUSED_UNREAD:
        assert (sha256, size) == ("", 0)
    elif case.rule == "oversized_file":
        assert sha256 == "" and size == len(OVERSIZED)  # measured, never read
    else:
        assert len(sha256) == 64


def test_the_reason_text_names_the_limit_or_the_problem(runs):
    reasons = {name: outcome.reason for name, outcome in runs.survey.items()}
    assert reasons["RTD_oversized.csv"] == (
        f"oversized_file: {len(OVERSIZED)} bytes exceeds the limit of {MAX_FILE_BYTES}"
    )
    assert reasons["RTD_link_out_of_landing.csv"] == (
        "outside_landing_folder: a link to a file outside landing"
    )
    assert reasons["RTD_zip_bomb.xlsx"] == (
        f"xlsx_inflates_too_far: declares 50000000 bytes uncompressed, over the limit of "
        f"{MAX_XLSX_INFLATED_BYTES}"
    )
    assert reasons["RTD_zip_of_many_entries.xlsx"] == (
        "xlsx_inflates_too_far: 10001 zip entries, over the limit of 10000"
    )
    assert reasons["RTD_control\x07char.csv"].startswith("unsafe_file_name: file names may hold")


def test_good_exports_beside_them_load_in_full(runs):
    loaded = {
        name: outcome.rows_loaded
        for name, outcome in runs.survey.items()
        if outcome.status == "loaded"
    }
    assert loaded == {"RTF_good.csv": 4, "RX3_good.xlsx": 2, "RTD_link_within_landing.csv": 2}
    assert ".upload_in_progress.csv" not in runs.survey
    assert len(runs.survey) == len(BAD_CASES) + 3
    assert survey_reconciliation_problems(runs.survey_con) == []
    # Nothing of a refused file reached the survey tables.
    responses = runs.survey_con.execute(
        "select source_file, count(*) from raw.survey_responses group by 1 order by 1"
    ).fetchall()
    assert responses == [
        ("RTD_link_within_landing.csv", 2),
        ("RTF_good.csv", 4),
        ("RX3_good.xlsx", 2),
    ]


def test_a_second_ingest_passes_refused_files_by(runs, monkeypatch):
    """Refused files are logged under their path (with no digest when never opened), so the
    next run neither judges nor reads them again."""
    monkeypatch.setattr(
        "pipelines.surveys.ingest._ingest_one",
        lambda *args, **kwargs: pytest.fail(f"judged again: {args[1]}"),
    )
    again = ingest_surveys(
        runs.survey_con, runs.settings, landing_dir=runs.survey_landing, run_id="again"
    )
    assert again == []
