"""The ingest multi-assets of every source (measure returns, survey exports, incident
extracts) are built by one factory (``pipelines/defs/intake.py``); what Dagster and dbt
see of them must not change with it: asset keys, their upstream keys, group, kinds, pool,
resources, descriptions, the ``rows_reconcile`` check of each, and the metadata each
materialisation carries, key for key and in order.
"""

from __future__ import annotations

import shutil

import dagster as dg

from conftest import SAMPLES
from pipelines.definitions import defs
from pipelines.defs.incidents import incident_extracts
from pipelines.defs.ingest import measure_returns, organisation_register
from pipelines.defs.resources import WorkingFileRun
from pipelines.defs.surveys import survey_exports

# Keys every materialisation carries; a source's ``files_<status>`` counts follow files_seen.
STEADY = {"files_seen", "files_not_archived"}
REGISTER = ["raw/local_organisations", "raw/ods_organisations"]
INGEST = {
    "measure_returns": {
        "keys": ["raw/measure_values", "raw/quarantine", "raw/submission_log"],
        "check_on": "raw/submission_log",
        "description": "Ingest every new file in the landing folder: rows that pass the rules "
        "load to raw.measure_values, the rest go to raw.quarantine with reasons.",
        "check": "Every file: rows read = rows loaded + rows quarantined, the raw tables hold "
        "exactly those rows, and every data record in the file (counted apart from the "
        "parser) reached them.",
        "metadata": [
            "files_seen",
            "rows_loaded",
            "rows_quarantined",
            "files_not_archived",
        ],
    },
    "survey_exports": {
        "keys": [
            "raw/survey_answers",
            "raw/survey_quarantine",
            "raw/survey_questions",
            "raw/survey_responses",
            "raw/survey_waves",
        ],
        "check_on": "raw/survey_responses",
        "description": "Ingest new safety-culture survey exports (Qualtrics, SurveyMonkey, "
        "Microsoft Forms; CSV or XLSX): responses that pass the rules load to raw, the rest "
        "go to raw.survey_quarantine with reasons. Names, e-mails, IP addresses and free "
        "text are dropped at read.",
        "check": "Every survey file: responses read = loaded + quarantined, the raw tables "
        "hold exactly those rows, and each loaded response has one answer per instrument "
        "question.",
        "metadata": [
            "landing_dir",
            "files_seen",
            "responses_loaded",
            "responses_quarantined",
        ],
    },
    "incident_extracts": {
        "keys": [
            "raw/incident_extracts",
            "raw/incident_quarantine",
            "raw/incident_records",
            "raw/kh03_beds",
            "raw/kh03_quarantine",
        ],
        "check_on": "raw/incident_records",
        "description": "Ingest new incident extracts (LFPSE-style or Datix-style, CSV or "
        "XLSX): only the contract's allow-listed columns are read, so personal data and free "
        "text are dropped at read; rows that pass the rules load to raw, the rest go to "
        "raw.incident_quarantine with reasons. KH03 bed occupancy files (the rates' occupied "
        "bed days) load to raw.kh03_beds the same way.",
        "check": "Every incident file: rows read = loaded + quarantined, and the raw tables "
        "hold exactly those rows.",
        "metadata": [
            "landing_dir",
            "kh03_landing_dir",
            "files_seen",
            "rows_loaded",
            "rows_quarantined",
        ],
    },
}


def test_intake_assets_keep_their_keys_checks_and_descriptions():
    graph = defs().get_repository_def().assets_defs_by_key
    by_node = {a.node_def.name: a for a in graph.values()}
    for name, expected in INGEST.items():
        asset = by_node[name]
        keys = sorted(k.to_user_string() for k in asset.keys)
        assert keys == expected["keys"], name
        for key in asset.keys:
            assert sorted(d.to_user_string() for d in asset.asset_deps[key]) == REGISTER, key
        assert set(asset.group_names_by_key.values()) == {"ingest"}
        assert {kind for spec in asset.specs for kind in spec.kinds} == {"duckdb", "polars"}
        assert asset.node_def.pool == "duckdb_writer"
        assert asset.node_def.description == expected["description"]
        assert sorted(asset.required_resource_keys) == ["io_manager", "working_file_run"]
        [check] = asset.check_specs
        assert (check.name, check.asset_key.to_user_string(), check.blocking) == (
            "rows_reconcile",
            expected["check_on"],
            True,
        )
        assert check.description == expected["check"]
    # Nothing else of the ingest group changed hands: the register keeps its own check.
    [register_check] = by_node["organisation_register"].check_specs
    assert (register_check.name, register_check.blocking) == ("register_files_accepted", False)


def test_each_intake_asset_reports_its_files_in_the_same_metadata(
    settings, sample_landing, tmp_path, monkeypatch
):
    """One run of the register and the three sources over the committed samples (one
    incident file refused): every key of a source carries the same metadata, in the
    order above, and its check passes."""
    survey_landing = tmp_path / "surveys"
    shutil.copytree(SAMPLES / "surveys" / "landing", survey_landing)
    monkeypatch.setenv("SAFETY_OBS_SURVEY_LANDING_DIR", str(survey_landing))
    incidents = settings.incident_landing_dir
    incidents.mkdir(parents=True, exist_ok=True)
    (incidents / "RTD_not_an_extract.csv").write_text("no,header,we,know\n1,2,3,4\n")
    landed = sum(1 for p in sample_landing.rglob("*") if p.is_file())
    result = dg.materialize(
        [organisation_register, measure_returns, survey_exports, incident_extracts],
        resources={"working_file_run": WorkingFileRun()},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    for name, expected in INGEST.items():
        materialized = result.asset_materializations_for_node(name)
        assert sorted(m.asset_key.to_user_string() for m in materialized) == expected["keys"]
        metadata = [dict(m.metadata) for m in materialized]
        assert all(m == metadata[0] for m in metadata), name
        # Then a count per status the run saw (files_loaded, files_rejected, ...), in the
        # place of the status's first file.
        statuses = [k for k in metadata[0] if k.startswith("files_") and k not in STEADY]
        assert [k for k in metadata[0] if k not in statuses] == expected["metadata"], name
        assert statuses == sorted(statuses)
        assert list(metadata[0]).index(statuses[0]) == 1 + list(metadata[0]).index("files_seen")
        [check] = [
            c
            for c in result.get_asset_check_evaluations()
            if c.asset_key.to_user_string() == expected["check_on"]
        ]
        assert check.passed, name
    [returns] = result.asset_materializations_for_node("measure_returns")[:1]
    assert returns.metadata["files_loaded"].value == returns.metadata["files_seen"].value == landed
    [incident] = result.asset_materializations_for_node("incident_extracts")[:1]
    assert incident.metadata["files_rejected"].value == 1
    assert "files_loaded" not in incident.metadata
    assert incident.metadata["landing_dir"].value == str(incidents)
