"""The committed survey sample: the generator reproduces it byte for byte, and the Dagster
asset plus dbt find in it exactly what its manifest says."""

from __future__ import annotations

import filecmp
import importlib
import json
import shutil

import dagster as dg
import duckdb
import pytest
from survey_support import SURVEY_SAMPLES, dbt_build, working_file

from pipelines.defs.resources import WorkingFileRun
from pipelines.defs.surveys import RECONCILED_KEY, SURVEY_KEYS, survey_exports
from pipelines.surveys.config import LANDING_ENV

RESOURCES = {"working_file_run": WorkingFileRun()}

# data_samples/surveys is on sys.path once survey_support is imported.
generate_surveys = importlib.import_module("generate_surveys")
MANIFEST = json.loads((SURVEY_SAMPLES / "SAMPLE_MANIFEST.json").read_text())


def test_generator_reproduces_the_committed_sample(tmp_path):
    manifest = generate_surveys.generate(tmp_path)
    assert manifest == MANIFEST
    committed = sorted(
        p.relative_to(SURVEY_SAMPLES)
        for p in (SURVEY_SAMPLES / "landing").rglob("*")
        if p.is_file()
    )
    written = sorted(
        p.relative_to(tmp_path) for p in (tmp_path / "landing").rglob("*") if p.is_file()
    )
    assert committed == written
    _, mismatch, errors = filecmp.cmpfiles(
        SURVEY_SAMPLES, tmp_path, [str(p) for p in committed], shallow=False
    )
    assert mismatch == [] and errors == []


def test_sample_covers_every_layout_and_a_small_group():
    names = {p.name for p in (SURVEY_SAMPLES / "landing").rglob("*") if p.is_file()}
    assert {"wave.yml", "RR7_culture_survey.csv", "QHM_care_homes_safety_culture.xlsx"} <= names
    assert len(MANIFEST["waves"]) == 2
    assert set(MANIFEST["quarantined_by_rule"]) == {
        "outside_wave_window",
        "test_response",
        "unknown_answer_label",
        "unknown_organisation",
    }


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory):
    """The sample through the Dagster asset (not the bare function), then dbt."""
    root = tmp_path_factory.mktemp("survey_sample")
    working_db = root / "working.duckdb"
    landing = root / "landing"
    shutil.copytree(SURVEY_SAMPLES / "landing", landing)
    working_file(working_db).close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SAFETY_OBS_WORKING_DB", str(working_db))
        mp.setenv(LANDING_ENV, str(landing))
        result = dg.materialize(
            [survey_exports], instance=dg.DagsterInstance.ephemeral(), resources=RESOURCES
        )
        assert result.success
        materialized = {e.asset_key for e in result.get_asset_materialization_events()}
        assert materialized == set(SURVEY_KEYS)
        [check] = result.get_asset_check_evaluations()
        assert check.asset_key == RECONCILED_KEY and check.passed
        again = dg.materialize(
            [survey_exports], instance=dg.DagsterInstance.ephemeral(), resources=RESOURCES
        )
        assert again.success  # nothing new: every file already seen
        built = dbt_build(working_db, root / "dbt")
    assert built.returncode == 0, built.stdout[-4000:]
    return working_db


def query(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_sample_counts_match_the_manifest(sample_warehouse):
    [(files, read, loaded, quarantined)] = query(
        sample_warehouse,
        "select count(*), sum(rows_read), sum(rows_loaded), sum(rows_quarantined)"
        " from raw.submission_log where layout like 'survey%'",
    )
    assert (files, read, loaded, quarantined) == (
        MANIFEST["files"],
        MANIFEST["responses_read"],
        MANIFEST["responses_loaded"],
        MANIFEST["responses_quarantined"],
    )
    by_rule = dict(
        query(
            sample_warehouse,
            "select rule, count(*) from (select unnest(rules) as rule from raw.survey_quarantine)"
            " group by 1",
        )
    )
    assert by_rule == MANIFEST["quarantined_by_rule"]
    [(facts,)] = query(sample_warehouse, "select count(*) from marts.fct_culture_survey")
    assert facts == MANIFEST["fct_culture_survey_rows"]


def test_sample_small_groups_are_suppressed(sample_warehouse):
    internal = query(
        sample_warehouse,
        "select distinct org_code from marts.fct_culture_survey where is_suppressed",
    )
    assert internal == [("VNE04",)]  # two respondents
    public = dict(
        query(
            sample_warehouse,
            "select distinct sector_code, suppression_reason"
            " from public.pub_culture_survey_by_sector where is_suppressed",
        )
    )
    # The independent hospital (8 respondents); the ambulance and mental-health sectors,
    # one trust each, are that trust's own results. Three organisations between them, so
    # the ICB total less the published sectors gives no one's results away.
    assert public == {
        "independent_provider": "primary",
        "ambulance_trust": "contributors",
        "mental_health_trust": "contributors",
    }
