"""Reading exports: instruments, layouts, column matching by name and timestamps."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from survey_support import instrument, question_ids, spec, survey_exports

from pipelines.ingest.errors import FileRejected
from pipelines.surveys.grid import read_grid
from pipelines.surveys.instrument import (
    INSTRUMENTS_DIR,
    InstrumentError,
    load_instrument_file,
    load_instruments,
)
from pipelines.surveys.layouts import detect_layout
from pipelines.surveys.matching import match_columns, wanted_question
from pipelines.surveys.normalise import label_key, text_key
from pipelines.surveys.responses import type_export
from pipelines.surveys.waves import Wave, WaveContractError, parse_wave

RESPONDENTS = [
    survey_exports.Respondent(
        "11", datetime(2024, 3, 5, 10, 0), dict.fromkeys(question_ids(), "Agree"), email="a@b.cd"
    )
]


def test_labels_and_texts_compare_without_case_spacing_or_curly_quotes():
    assert label_key("  Don\u2019t   KNOW\u00a0") == label_key("don't know") == "don't know"
    assert text_key("\ufeffStaff in my team  support one another.") == text_key(
        "staff in my team support one another"
    )


def test_every_instrument_file_loads_and_a_second_one_is_just_another_file(tmp_path):
    v1 = (INSTRUMENTS_DIR / "nhs_safety_culture_v1.yml").read_text(encoding="utf-8")
    (tmp_path / "a.yml").write_text(v1, encoding="utf-8")
    (tmp_path / "b.yml").write_text(v1.replace("id: nhs_safety_culture_v1", "id: v2"), "utf-8")
    assert sorted(load_instruments(tmp_path)) == ["nhs_safety_culture_v1", "v2"]
    current = instrument()
    assert set(current.domains) == {
        "teamwork",
        "communication",
        "just_culture",
        "psychological_safety",
        "diversity_inclusion",
        "civility",
    }
    assert {q.domain for q in current.questions} == set(current.domains)
    assert any(q.reverse for q in current.questions)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    domain: civility\n", "    domain: kindness\n"), "unknown domain 'kindness'"),
        (("    1: [Strongly disagree]", "    1: [Strongly disagree, Agree]"), "given twice"),
        (("  missing: [", "  missing: [Agree, "), "both scored and missing"),
        (
            ("text: I feel valued", "text: Staff are blamed when things go wrong. #"),
            "is also JC3's",
        ),
        (("positive_from: 4", "positive_from: 9"), "outside the scale"),
    ],
)
def test_a_broken_instrument_is_refused_with_the_reason(tmp_path, change, message):
    text = (INSTRUMENTS_DIR / "nhs_safety_culture_v1.yml").read_text(encoding="utf-8")
    assert change[0] in text
    path = tmp_path / "broken.yml"
    path.write_text(text.replace(change[0], change[1], 1), encoding="utf-8")
    with pytest.raises(InstrumentError, match=message):
        load_instrument_file(path)


@pytest.mark.parametrize(
    ("name", "write", "layout"),
    [
        ("x.csv", lambda i, r, s: survey_exports.qualtrics(i, r, s), "survey_qualtrics"),
        ("x.csv", survey_exports.qualtrics_legacy, "survey_qualtrics_legacy"),
        (
            "x.xlsx",
            lambda i, r, s: survey_exports.surveymonkey(i, r, s, xlsx=True),
            "survey_surveymonkey",
        ),
        ("x.csv", lambda i, r, s: survey_exports.msforms(i, r, s, xlsx=False), "survey_msforms"),
    ],
)
def test_each_tool_is_recognised_from_its_header_rows(name, write, layout):
    grid = read_grid(write(instrument(), RESPONDENTS, spec()), name, max_unzipped_bytes=10**7)
    assert detect_layout(grid, name).profile.layout == layout


def _grid(rows: list[list[str | None]]) -> pl.DataFrame:
    return pl.DataFrame({f"c{i}": [row[i] for row in rows] for i in range(len(rows[0]))})


def test_matrix_headers_match_on_the_statement_and_free_text_never_matches():
    questions = instrument().questions
    stem = "Thinking about your team, how far do you agree?"
    header = ["Respondent ID", "End Date"]
    sub = ["", ""]
    for q in questions:
        header.append(stem if q.question_id == questions[0].question_id else "")
        sub.append(q.text.upper().rstrip("."))
    # A free-text box under a question's own text must not be taken for that question.
    header += [questions[1].text, ""]
    sub += ["Open-Ended Response", "Other (please specify)"]
    layout = detect_layout(_grid([header, sub]), "x.csv")
    result = match_columns(layout, [wanted_question(q) for q in questions])
    assert result.missing == [] and result.ambiguous == []
    assert result.found[questions[1].question_id] == f"c{2 + 1}"


def test_two_columns_carrying_one_question_is_ambiguous_not_a_guess():
    qs = instrument().questions
    header = ["ID", "Start time", "Completion time", *[q.text for q in qs], qs[0].text + " "]
    grid = _grid([header, ["1", "x", "05/03/2024 10:00:00", *["Agree"] * (len(qs) + 1)]])
    layout = detect_layout(grid, "RTD_x.csv")
    with pytest.raises(FileRejected) as rejected:
        type_export(
            grid,
            layout,
            file_name="RTD_x.csv",
            wave=_wave(),
            submitter="RTD",
            organisations=pl.DataFrame(
                {"org_code": ["RTD"], "org_name": ["X"], "icb_code": ["QHM"]}
            ),
        )
    assert rejected.value.rule == "ambiguous_columns" and qs[0].question_id in rejected.value.detail


def _wave(**overrides: str) -> Wave:
    text = (
        "id: w\nname: W\ninstrument: nhs_safety_culture_v1\n"
        "opens_on: 2024-03-01\ncloses_on: 2024-03-31\n"
    )
    for key, value in overrides.items():
        text += f"{key}: {value}\n"
    return parse_wave(text.encode(), "w/wave.yml", load_instruments())


def test_day_month_order_is_settled_by_the_wave_window():
    """03/01/2024 is 3 January in the UK and 1 March in the US: in a March wave, March
    (Microsoft Forms tries the UK order first)."""
    answers = ["Agree"] * len(question_ids())
    header = ["ID", "Start time", "Completion time", *[q.text for q in instrument().questions]]
    body = [[str(i), "", f"03/0{i}/2024 10:00:00", *answers] for i in range(1, 4)]
    grid = _grid([header, *body])
    typed = type_export(
        grid,
        detect_layout(grid, "RTD_x.csv"),
        file_name="RTD_x.csv",
        wave=_wave(),
        submitter="RTD",
        organisations=pl.DataFrame({"org_code": ["RTD"], "org_name": ["X"], "icb_code": ["QHM"]}),
    )
    assert typed.frame["submitted_at"].dt.date().to_list() == [
        date(2024, 3, 1),
        date(2024, 3, 2),
        date(2024, 3, 3),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"id: w\n", "missing name, instrument"),
        (b"[unclosed", "not readable YAML"),
        (
            b"id: 'bad id!'\nname: x\ninstrument: nhs_safety_culture_v1\n"
            b"opens_on: 2024-03-01\ncloses_on: 2024-03-02\n",
            "must be letters",
        ),
        (
            b"id: w\nname: x\ninstrument: nope\nopens_on: 2024-03-01\ncloses_on: 2024-03-02\n",
            "instrument 'nope'",
        ),
        (
            b"id: w\nname: x\ninstrument: nhs_safety_culture_v1\n"
            b"opens_on: 2024-03-01\ncloses_on: soon\n",
            "not a date",
        ),
    ],
)
def test_a_broken_wave_contract_says_what_is_wrong(text, message):
    with pytest.raises(WaveContractError, match=message):
        parse_wave(text, "w/wave.yml", load_instruments())


def test_the_landing_folder_comes_from_the_environment(monkeypatch, tmp_path: Path):
    from pipelines.surveys.config import LANDING_ENV, survey_landing_dir

    monkeypatch.delenv(LANDING_ENV, raising=False)
    assert survey_landing_dir().parts[-3:] == ("data_samples", "surveys", "landing")
    monkeypatch.setenv(LANDING_ENV, str(tmp_path))
    assert survey_landing_dir() == tmp_path.resolve()


@pytest.mark.parametrize("ending", ["\r", "mixed"])
def test_a_survey_export_reads_the_same_whatever_its_line_endings(ending):
    """A lone CR (classic Mac, some exporters) or a mix of endings is a line end, as in the
    measure returns: the grid equals the LF export's, row for row."""
    from conftest import SAMPLES

    lf = (SAMPLES / "surveys" / "landing" / "2025-spring" / "RR7_culture_survey.csv").read_bytes()
    lf = lf.replace(b"\r\n", b"\n")
    lines = lf.split(b"\n")
    if ending == "\r":
        other = lf.replace(b"\n", b"\r")
    else:
        other = (
            b"".join(line + (b"\r\n", b"\r", b"\n")[i % 3] for i, line in enumerate(lines[:-1]))
            + lines[-1]
        )
    expected = read_grid(lf, "RR7_culture_survey.csv", max_unzipped_bytes=10**7)
    got = read_grid(other, "RR7_culture_survey.csv", max_unzipped_bytes=10**7)
    assert got.height == expected.height > 10
    assert got.equals(expected)
