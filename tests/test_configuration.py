"""One typed configuration: validated before anything runs, the same values in Python, dbt
and the disclosure scan, every setting documented and read by something."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date

import pytest

from pipelines.settings import (
    PROJECT_ROOT,
    ConfigurationError,
    Settings,
    load_settings,
    validated_settings,
)

DOC = PROJECT_ROOT / "docs" / "configuration.md"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No SAFETY_OBS_* from the caller's shell leaks into these tests."""
    import os

    for name in [n for n in os.environ if n.startswith("SAFETY_OBS_")]:
        monkeypatch.delenv(name)


def test_the_committed_configuration_is_the_north_east_sample():
    settings = validated_settings()
    assert settings.region_icbs == ("QHM",)
    assert settings.landing_dir == PROJECT_ROOT / "data_samples" / "landing"
    assert settings.working_db == PROJECT_ROOT / "var" / "warehouse" / "working.duckdb"
    assert settings.dagster_home == PROJECT_ROOT / "var" / "dagster_home"
    assert settings.archive_processed is False  # the committed sample is read in place
    assert settings.catalogue_start == date(2019, 4, 1)


def test_environment_overrides_the_file_and_the_file_overrides_defaults(tmp_path, monkeypatch):
    config = tmp_path / "deployment.toml"
    config.write_text(
        'region_icbs = ["QYG", "QE1"]\ncatalogue_start = "2021-04"\nreturn_due_days = 25\n'
        f'var_dir = "{tmp_path / "var"}"\n'
    )
    monkeypatch.setenv("SAFETY_OBS_CONFIG", str(config))
    settings = load_settings()
    assert settings.region_icbs == ("QYG", "QE1")
    assert settings.catalogue_start == date(2021, 4, 1)
    # Everything written moves with var_dir, Dagster's instance included.
    assert settings.working_db == tmp_path / "var" / "warehouse" / "working.duckdb"
    assert settings.dagster_home == tmp_path / "var" / "dagster_home"
    monkeypatch.setenv("SAFETY_OBS_RETURN_DUE_DAYS", "30")
    monkeypatch.setenv("SAFETY_OBS_REGION_ICBS", "qhm, QE1")
    settings = load_settings()
    assert settings.return_due_days == 30
    assert settings.region_icbs == ("QHM", "QE1")
    assert settings.dbt_vars()["return_due_days"] == 30
    assert settings.dbt_vars()["catalogue_start"] == "2021-04-01"
    assert settings.dbt_vars()["region_icbs"] == ["QHM", "QE1"]


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("SAFETY_OBS_LANDING_DIR", "/nonexistent/landing", "landing_dir: folder /nonexistent"),
        ("SAFETY_OBS_ODS_DIR", "/nonexistent/ods", "ods_dir: folder /nonexistent/ods"),
        ("SAFETY_OBS_LOCAL_REGISTER", "/nonexistent.csv", "local_register: file /nonexistent"),
        ("SAFETY_OBS_REGION_ICBS", "QHM,QXX", "region_icbs: unknown ICB code QXX"),
        ("SAFETY_OBS_REGION_ICBS", "ENGLAND,QHM", "region_icbs: ENGLAND cannot be combined"),
        ("SAFETY_OBS_CATALOGUE_START", "2999-01", "catalogue_start: 2999-01 is after"),
        ("SAFETY_OBS_TIMEZONE", "Europe/Gotham", "timezone: unknown time zone"),
    ],
)
def test_a_configuration_that_cannot_run_is_refused_naming_the_setting(
    monkeypatch, variable, value, message
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as refused:
        validated_settings()
    [problem] = refused.value.problems
    assert problem.startswith(message)
    assert variable in problem


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("SAFETY_OBS_RETURN_DUE_DAYS", "twenty", "return_due_days"),
        ("SAFETY_OBS_CATALOGUE_START", "April 2019", "catalogue_start"),
        ("SAFETY_OBS_MAX_SHRINK_SHARE", "1.5", "max_shrink_share"),
        ("SAFETY_OBS_PUBLIC_ROUNDING_BASE", "0", "public_rounding_base"),
    ],
)
def test_a_wrong_type_is_refused_naming_the_setting(monkeypatch, variable, value, setting):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as refused:
        load_settings()
    assert refused.value.problems[0].startswith(f"{setting}: ")


def test_an_unknown_key_in_the_file_is_refused(tmp_path, monkeypatch):
    config = tmp_path / "typo.toml"
    config.write_text('region_icb = "QHM"\n')  # the old, removed setting
    monkeypatch.setenv("SAFETY_OBS_CONFIG", str(config))
    with pytest.raises(ConfigurationError, match="region_icb: Extra inputs are not permitted"):
        load_settings()


def test_a_missing_landing_folder_stops_the_command_before_any_step(tmp_path):
    """The bug this replaces: a wrong landing path published an empty warehouse, exit 0."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SAFETY_OBS_VAR_DIR": str(tmp_path / "var"),
        "SAFETY_OBS_LANDING_DIR": "/nonexistent",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "demo"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "configuration error: landing_dir: folder /nonexistent does not exist "
        "(set by SAFETY_OBS_LANDING_DIR)"
    ]
    assert not (tmp_path / "var").exists(), "nothing ran, nothing was written"


def test_every_setting_is_documented():
    text = DOC.read_text()
    for name in Settings.model_fields:
        assert re.search(rf"\| `{name}` \| `SAFETY_OBS_{name.upper()}` \|", text), name


def test_every_setting_is_read_by_something():
    """A setting nothing reads is a bug: each is used by the pipeline or passed to dbt."""
    sources = "\n".join(
        p.read_text() for p in (PROJECT_ROOT / "pipelines").rglob("*.py") if p.name != "settings.py"
    )
    dbt_sources = "\n".join(p.read_text() for p in (PROJECT_ROOT / "dbt_project").rglob("*.sql"))
    settings = load_settings()
    for name in Settings.model_fields:
        read_in_python = re.search(rf"\.{name}\b", sources)
        read_in_dbt = name in settings.dbt_vars() and (
            f"var('{name}')" in dbt_sources or f"disclosure_rule('{name}')" in dbt_sources
        )
        assert read_in_python or read_in_dbt, f"nothing reads the setting {name}"


def test_the_configured_values_reach_dbt(tmp_path):
    """dbt compiles with the deployment's catalogue start and due days (no defaults of its
    own), through the same command an engineer uses to run dbt by hand."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SAFETY_OBS_VAR_DIR": str(tmp_path / "var"),
        "SAFETY_OBS_DBT_TARGET_DIR": str(tmp_path / "target"),
        "SAFETY_OBS_CATALOGUE_START": "2016-04",
        "SAFETY_OBS_RETURN_DUE_DAYS": "25",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "dbt",
            "compile",
            "--select",
            "dim_period",
            "mart_submission_completeness",
        ],
        cwd=tmp_path,  # any folder
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    compiled = tmp_path / "target" / "compiled" / "safety_observatory" / "models" / "marts"
    assert "cast('2016-04-01' as date)" in (compiled / "dim_period.sql").read_text()
    assert (
        "cast(25 as bigint) * interval 1 day"
        in (compiled / "mart_submission_completeness.sql").read_text()
    )
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["project_name"] == "safety_observatory"
