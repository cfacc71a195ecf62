"""The register step in a run: a refused register keeps the one in place, says so (error
lines naming file and rule, a warning check, the asset's metadata) and the run goes on with
the previous register; ``--confirm-register`` (its run tag) accepts a large change; with no
register to fall back on, the step fails with the reasons."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pytest
from register_inputs import drop_share_of_region_practices, national, practice_map

from pipelines.defs.ingest import organisation_register
from pipelines.defs.partitions import CONFIRM_REGISTER_TAG
from pipelines.defs.resources import WorkingFileRun


@pytest.fixture
def ods(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, settings) -> Path:
    """The deployment's ODS folder, holding the national files of December 2023."""
    folder = tmp_path / "ods"
    folder.mkdir()
    for name in ("etr.csv", "epraccur.csv"):
        (folder / name).write_bytes(national(name))
    monkeypatch.setenv("SAFETY_OBS_ODS_DIR", str(folder))
    return folder


def run_register(instance: dg.DagsterInstance, tags: dict[str, str] | None = None):
    return dg.materialize(
        [organisation_register],
        resources={"working_file_run": WorkingFileRun()},
        instance=instance,
        raise_on_error=False,
        tags=tags,
    )


def check(result) -> dg.AssetCheckEvaluation:
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "register_files_accepted"
    return evaluation


def messages(instance: dg.DagsterInstance, run_id: str, level: int) -> list[str]:
    return [e.message for e in instance.all_logs(run_id) if e.level == level and e.message]


def register(settings) -> list[tuple]:
    with duckdb.connect(str(settings.working_db), read_only=True) as con:
        return con.execute("select * from raw.ods_organisations order by org_code").fetchall()


def test_a_refused_register_keeps_the_previous_one_and_says_so(ods, settings):
    instance = dg.DagsterInstance.ephemeral()
    first = run_register(instance)
    assert first.success and check(first).passed
    before = register(settings)
    assert len(before) == 682

    (ods / "epraccur_practice_map.csv").write_bytes(practice_map())
    second = run_register(instance)

    assert second.success, "the run goes on with the register in place"
    evaluation = check(second)
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    [refusal] = evaluation.metadata["refused"].value
    assert refusal.startswith(
        "epraccur_practice_map.csv: wrong_field_count: 16 fields a line, where an ODS GP "
        "practice file has 27"
    )
    errors = messages(instance, second.run_id, 40)
    assert [e for e in errors if e.startswith("register file refused:")] == [
        f"register file refused: {refusal}"
    ]
    [warning] = [w for w in messages(instance, second.run_id, 30) if "register" in w]
    assert warning == (
        "The new organisation register was refused (see raw.register_log); the previous "
        "register (682 ODS organisations of QHM) stays in place and this run goes on with it."
    )
    [materialization] = second.asset_materializations_for_node("organisation_register")[:1]
    assert materialization.metadata["register"].value == "refused, previous register kept"
    assert register(settings) == before


def test_a_large_change_loads_once_the_run_confirms_it(ods, settings):
    instance = dg.DagsterInstance.ephemeral()
    assert run_register(instance).success
    (ods / "epraccur.csv").write_bytes(drop_share_of_region_practices(0.3))

    refused = run_register(instance)
    assert refused.success and not check(refused).passed
    assert "register_change_too_large" in check(refused).metadata["refused"].value[0]
    assert len(register(settings)) == 682

    confirmed = run_register(instance, tags={CONFIRM_REGISTER_TAG: "true"})
    assert confirmed.success and check(confirmed).passed
    assert len(register(settings)) == 682 - 210
    with duckdb.connect(str(settings.working_db), read_only=True) as con:
        rows = con.execute(
            "select distinct status, confirmed, run_id from raw.register_log"
            " where judged_at = (select max(judged_at) from raw.register_log)"
        ).fetchall()
    assert rows == [("loaded", True, confirmed.run_id)]


def test_with_no_register_to_keep_the_step_fails_with_the_reasons(ods, settings):
    (ods / "epraccur.csv").write_bytes(b"")
    result = run_register(dg.DagsterInstance.ephemeral())
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith(
        "The organisation register was refused and there is no earlier register to keep: "
        "the organisation register was not replaced: epraccur.csv: empty_file: the file is "
        "empty (and 2 other file(s) not applied with it)"
    )
