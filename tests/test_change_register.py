"""The change register (docs/programme-impact.md section 1): every rule refused with one line
naming the file, row and rule; a good row beside a bad one is still read; the CLI refuses to
start on a bad register exactly as on a wrong setting."""

from __future__ import annotations

import os
from datetime import date

import pytest
from change_register_inputs import CORPUS, GOOD, GOOD_CASES, HEADER, RegisterCase

from pipelines import cli
from pipelines.impact.register import (
    RegisterError,
    codes_for,
    parse_register,
    read_register,
    register_problems,
)
from pipelines.settings import (
    EMPTY_CHANGE_REGISTER,
    PROJECT_ROOT,
    ConfigurationError,
    load_settings,
    validated_settings,
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No SAFETY_OBS_* from the caller's shell leaks into these tests."""
    for name in [n for n in os.environ if n.startswith("SAFETY_OBS_")]:
        monkeypatch.delenv(name)


def _write(tmp_path, case: RegisterCase):
    path = tmp_path / case.name
    path.write_text(case.body, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_a_bad_register_names_the_file_the_row_and_the_rule(tmp_path, case):
    path = _write(tmp_path, case)
    changes, problems = parse_register(path, codes_for(load_settings()))
    [problem] = problems
    assert problem.startswith(f"{path} row {case.row}: "), problem
    assert case.problem in problem, problem
    if case.row == 3:  # the good row beside the bad one is still read
        assert [c.change_id for c in changes] == ["CHG-001"]


@pytest.mark.parametrize("case", GOOD_CASES, ids=lambda c: c.name)
def test_odd_but_good_registers_read_without_problems(tmp_path, case):
    changes, problems = parse_register(_write(tmp_path, case), codes_for(load_settings()))
    assert problems == []
    assert len(changes) == case.body.count("CHG-")


def test_blank_rebase_defaults_by_kind_and_the_change_month_is_the_first():
    settings = load_settings()
    changes = {c.change_id: c for c in read_register(settings.change_register, settings)}
    assert set(changes) == {"CHG-001", "CHG-002", "CHG-003"}
    assert changes["CHG-001"].rebase is False  # an intervention does not rebase by default
    assert changes["CHG-002"].rebase is True  # a definition change does
    assert changes["CHG-003"].rebase is True  # so does a data-collection change
    assert changes["CHG-003"].scope_code == "RR7"
    assert changes["CHG-001"].change_month == date(2024, 4, 1)


def test_an_explicit_rebase_wins_over_the_default(tmp_path):
    path = tmp_path / "register.csv"
    path.write_text(HEADER + GOOD.replace("intervention,,", "intervention,TRUE,"))
    [change] = read_register(path, load_settings())
    assert change.rebase is True


def test_the_committed_registers_are_valid(monkeypatch):
    assert register_problems(PROJECT_ROOT / "config" / "change_register.csv", load_settings()) == []
    monkeypatch.setenv("SAFETY_OBS_CONFIG", "config/profiles/innovation-agency.toml")
    settings = load_settings()
    assert settings.change_register.name == "innovation-agency-changes.csv"
    assert register_problems(settings.change_register, settings) == []


def test_a_missing_register_is_a_configuration_problem_and_blank_means_none(monkeypatch):
    monkeypatch.setenv("SAFETY_OBS_CHANGE_REGISTER", "/nonexistent/changes.csv")
    with pytest.raises(ConfigurationError) as refused:
        validated_settings()
    [problem] = refused.value.problems
    assert problem.startswith("change_register: file /nonexistent/changes.csv does not exist")
    assert "SAFETY_OBS_CHANGE_REGISTER" in problem
    monkeypatch.setenv("SAFETY_OBS_CHANGE_REGISTER", "")
    settings = validated_settings()
    assert settings.change_register is None
    # dbt reads a header-only file then: dim_change is empty, never missing.
    assert settings.dbt_vars()["change_register"] == str(EMPTY_CHANGE_REGISTER)
    assert EMPTY_CHANGE_REGISTER.read_text() == HEADER


def test_the_register_path_reaches_dbt_absolute():
    settings = load_settings()
    assert settings.dbt_vars()["change_register"] == str(
        PROJECT_ROOT / "config" / "change_register.csv"
    )


def test_the_cli_refuses_to_start_on_a_bad_register(tmp_path, monkeypatch, capsys):
    path = tmp_path / "changes.csv"
    path.write_text(
        HEADER
        + GOOD
        + "CHG-002,2024-05-01,,,region,,interv,,Huddles\n"
        + "CHG-003,2024-05-01,,NEWS2,icb,,intervention,,Huddles\n"
    )
    monkeypatch.setenv("SAFETY_OBS_CHANGE_REGISTER", str(path))
    monkeypatch.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
    with pytest.raises(ConfigurationError):
        validated_settings()
    assert cli.main(["check-config"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"configuration error: {path} row 3: kind 'interv' is not one of intervention, "
        "definition_change, data_collection_change",
        f"configuration error: {path} row 4: scope_code is required for scope icb",
        f"configuration error: {path} row 4: measure_code 'NEWS2' is not in the measure catalogue",
    ]
    assert not (tmp_path / "var").exists(), "nothing ran, nothing was written"
    with pytest.raises(RegisterError):
        read_register(path, load_settings())
