"""Write-audit-publish: a bad build never reaches analysts, a killed publish never leaves
a half-written one, and every attempt is logged."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from conftest import SAMPLES, point_settings_at, run_full_pipeline
from pipelines.defs.partitions import ALLOW_SHRINK_TAG
from pipelines.defs.publish import record_refused_publication
from pipelines.publish.snapshot import CRASH_POINTS, verify_snapshot
from pipelines.settings import load_settings

JUNE = (date(2024, 6, 1), date(2024, 6, 1))
PLANTED = (
    "org_code = 'RTD' and measure_code = 'NEWS2_ON_TIME' and period = '2024-06-01'"
    " and superseded_by is null"
)

# The gate is tested on full runs of the sample: end to end.
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    with pytest.MonkeyPatch.context() as mp:
        point_settings_at(mp, root)
        shutil.copytree(SAMPLES / "landing", root / "landing")
        instance = dg.DagsterInstance.ephemeral()
        result = run_full_pipeline(instance)
        assert result.success, [
            e.event_specific_data.error.message for e in result.all_events if e.is_step_failure
        ]
        yield load_settings(), instance


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def publication_log(settings) -> list[tuple]:
    with duckdb.connect(str(settings.working_db), read_only=True) as con:
        return con.execute(
            "select status, snapshot_id, reasons from audit.publication_log order by attempted_at"
        ).fetchall()


def test_a_planted_bad_value_fails_the_gate_and_the_fix_publishes(built):
    settings, instance = built
    current = settings.published_current.resolve()
    before = tree_digest(current)
    with duckdb.connect(str(settings.working_db)) as con:
        # A proportion whose numerator exceeds its denominator reaches raw by a back door
        # (ingest would have quarantined it), so only the quality gate stands in the way.
        [(numerator,)] = con.execute(
            f"select numerator from raw.measure_values where {PLANTED}"
        ).fetchall()
        con.execute(f"update raw.measure_values set numerator = denominator + 5 where {PLANTED}")
    failed = run_full_pipeline(instance, months=JUNE)
    assert not failed.success
    gate = [e for e in failed.get_asset_check_evaluations() if e.check_name == "gx_expectations"]
    assert [e.passed for e in gate] == [False]
    # The failure sensor records the refusal (evaluated here as the daemon would).
    run = instance.get_run_by_id(failed.run_id)
    failure_event = next(e for e in failed.all_events if e.event_type_value == "PIPELINE_FAILURE")
    context = dg.build_run_status_sensor_context(
        sensor_name="record_refused_publication",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=failure_event,
    ).for_run_failure()
    record_refused_publication(context)
    assert settings.published_current.resolve() == current
    assert tree_digest(current) == before  # byte for byte the last good publication
    status, snapshot, reasons = publication_log(settings)[-1]
    assert (status, snapshot) == ("refused", None)
    assert any("gx_expectations" in r for r in reasons), reasons

    with duckdb.connect(str(settings.working_db)) as con:
        con.execute(f"update raw.measure_values set numerator = ? where {PLANTED}", [numerator])
    fixed = run_full_pipeline(instance, months=JUNE)
    assert fixed.success
    assert settings.published_current.resolve() != current
    assert publication_log(settings)[-1][0] == "published"
    assert verify_snapshot(settings.published_current.resolve()) == []


PUBLISH_ONCE = textwrap.dedent(
    """
    import sys
    from pipelines.defs.publish import tier_tables
    from pipelines.publish.snapshot import publish
    from pipelines.settings import load_settings
    s = load_settings()
    publish(s.working_db, s.published_dir, tier_tables(), run_id=sys.argv[1], check_results=[])
    """
)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_publish_killed_at_any_point_leaves_a_whole_snapshot(built, point):
    settings, _ = built
    old = settings.published_current.resolve()
    env = {**__import__("os").environ, "SAFETY_OBS_CRASH_AT": point}
    killed = subprocess.run(
        [sys.executable, "-c", PUBLISH_ONCE, f"crash-{point}"], env=env, capture_output=True
    )
    assert killed.returncode == 137, killed.stderr.decode()[-2000:]
    now = settings.published_current.resolve()
    assert verify_snapshot(now) == []
    swapped = point == "link_swapped"
    assert (now != old) == swapped, f"after a kill at {point} current must be the old snapshot"
    if not swapped:
        assert now == old
    # A re-run converges: it publishes, and sweeps up what the killed one left behind.
    env.pop("SAFETY_OBS_CRASH_AT")
    again = subprocess.run([sys.executable, "-c", PUBLISH_ONCE, f"rerun-{point}"], env=env)
    assert again.returncode == 0
    latest = settings.published_current.resolve()
    assert verify_snapshot(latest) == [] and latest.name.endswith(f"rerun-{point}"[:8])
    leftovers = [p.name for p in (settings.published_dir / "snapshots").glob(".building-*")]
    assert leftovers == []
    assert not list(settings.published_dir.glob(".current-*"))


def test_a_provider_whose_data_disappears_is_refused_unless_allowed(built):
    """The shrink guard: a clean-up removes a whole trust's submissions from raw, consistently
    enough that every quality check still passes; the publication is refused with the
    trust named and the last publication stays byte-identical. ``--allow-shrink``
    publishes it, and the publication log records what was allowed."""
    settings, instance = built
    current = settings.published_current.resolve()
    before = tree_digest(current)
    raw_tables = ("submission_log", "measure_values", "quarantine")
    rx3 = (
        "submission_id in"
        " (select submission_id from raw.submission_log where file_name like 'RX3%')"
    )
    with duckdb.connect(str(settings.working_db)) as con:
        for table in raw_tables:
            con.execute(f"create table main.backup_{table} as select * from raw.{table}")
        for table in reversed(raw_tables):
            con.execute(f"delete from raw.{table} where {rx3}")
    try:
        refused = run_full_pipeline(instance)
        assert not refused.success
        failed_steps = [e.step_key for e in refused.all_events if e.is_step_failure]
        assert failed_steps == ["published_snapshot"], failed_steps
        assert settings.published_current.resolve() == current
        assert tree_digest(current) == before
        status, snapshot, reasons = publication_log(settings)[-1]
        assert (status, snapshot) == ("refused", None)
        assert any(
            "organisation(s) in the current publication have no rows in fct_measure_monthly: "
            "RX3" in r
            for r in reasons
        ), reasons

        allowed = run_full_pipeline(instance, tags={ALLOW_SHRINK_TAG: "true"})
        assert allowed.success
        status, snapshot, reasons = publication_log(settings)[-1]
        assert status == "published" and snapshot
        assert any(r.startswith("allowed by --allow-shrink:") and "RX3" in r for r in reasons)
    finally:
        with duckdb.connect(str(settings.working_db)) as con:
            for table in raw_tables:
                con.execute(f"delete from raw.{table}")
                con.execute(f"insert into raw.{table} select * from main.backup_{table}")
                con.execute(f"drop table main.backup_{table}")
    restored = run_full_pipeline(instance)
    assert restored.success, "adding the provider back is growth, never refused"


def test_a_build_changed_behind_the_runs_back_is_not_published(built, monkeypatch):
    """The second line behind the whole-run lock: if anyone claims the working file's build
    after this run started (a writer that bypassed the lock, dbt run by hand), publish
    refuses, because its checks did not see what it would publish."""
    import pipelines.defs.publish as publish_defs
    from pipelines.warehouse import claim_build, working_connection

    settings, instance = built
    current = settings.published_current.resolve()
    real_audit = publish_defs.audit_of_this_run

    def audit_then_intruder(context):
        with working_connection(settings.working_db) as con:
            claim_build(con, "dbt by hand (pid 4242)")
        return real_audit(context)

    monkeypatch.setattr(publish_defs, "audit_of_this_run", audit_then_intruder)
    result = run_full_pipeline(instance, months=JUNE)
    assert not result.success
    assert settings.published_current.resolve() == current
    status, _, reasons = publication_log(settings)[-1]
    assert status == "refused"
    assert any("changed by dbt by hand (pid 4242) after this run" in r for r in reasons), reasons


@pytest.mark.e2e
def test_a_full_disk_refuses_publication_naming_the_error(built, monkeypatch):
    """ENOSPC while the snapshot is written (a 200 MB disk): the run fails at publish, the
    publication log's reason carries the operating system's words, and the last good
    publication is untouched, byte for byte, with no half-written snapshot left."""
    import errno
    import os

    from pipelines.publish import snapshot as snapshot_module

    settings, instance = built
    current = settings.published_current.resolve()
    before = tree_digest(current)

    def no_space(working_db, tier_dir, tables, **options):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tier_dir / "warehouse.duckdb"))

    monkeypatch.setattr(snapshot_module, "build_tier", no_space)
    result = run_full_pipeline(instance, months=JUNE)
    assert not result.success
    assert [e.step_key for e in result.all_events if e.is_step_failure] == ["published_snapshot"]
    status, snapshot_id, reasons = publication_log(settings)[-1]
    assert (status, snapshot_id) == ("refused", None)
    [reason] = reasons
    assert reason.startswith(
        "writing the snapshot failed: OSError: [Errno 28] No space left on device: '"
    ), reason
    assert settings.published_current.resolve() == current
    assert tree_digest(current) == before
    assert not list((settings.published_dir / "snapshots").glob(".building-*"))


def test_an_empty_build_is_never_published(tmp_path, monkeypatch):
    """A landing folder that exists but holds nothing must not publish an empty warehouse
    (the quality gate stops it first; the shrink guard below would too)."""
    from pipelines.defs.publish import log_refused_run

    point_settings_at(monkeypatch, tmp_path)
    (tmp_path / "landing").mkdir()
    instance = dg.DagsterInstance.ephemeral()
    result = run_full_pipeline(instance, months=JUNE)
    assert not result.success
    settings = load_settings()
    assert not settings.published_current.exists()
    log_refused_run(instance, result.run_id)
    status, _, reasons = publication_log(settings)[-1]
    assert status == "refused" and reasons


def test_a_failing_dbt_test_is_named_with_its_failing_rows(built, tmp_path, capsys):
    """Readable runs: the console names the failing step and its first real error (the dbt
    test and how many rows fail it), and the publication log keeps the whole reason."""
    from pipelines.defs.publish import log_refused_run
    from pipelines.defs.run_logging import cli_run_config

    settings, instance = built
    with duckdb.connect(str(settings.working_db)) as con:
        # Un-supersede the sample's resubmitted rows: two "latest" rows per key.
        superseded = con.execute(
            "select distinct period from raw.measure_values where superseded_by is not null"
        ).fetchall()
        [(month,)] = superseded
        con.execute("create table main.superseded as select * from raw.measure_values")
        con.execute("update raw.measure_values set superseded_by = null")
    try:
        failed = run_full_pipeline(
            instance, months=(month, month), run_config=cli_run_config(tmp_path / "logs")
        )
        assert not failed.success
        log_refused_run(instance, failed.run_id)
    finally:
        with duckdb.connect(str(settings.working_db)) as con:
            con.execute("delete from raw.measure_values")
            con.execute("insert into raw.measure_values select * from main.superseded")
            con.execute("drop table main.superseded")
    console = capsys.readouterr().err
    named = re.search(
        r"✗ check (unique_combination_fct_measure_monthly\S*) on marts/fct_measure_monthly "
        r"failed \((\d+) failing rows\)",
        console,
    )
    assert named, console[-3000:]
    assert int(named.group(2)) > 0
    assert f"✗ period_models failed: check {named.group(1)}" in console
    assert f"Run {failed.run_id} failed at period_models: check" in console
    assert (tmp_path / "logs" / f"{failed.run_id}.log").stat().st_size > 10_000  # the DEBUG
    status, _, reasons = publication_log(settings)[-1]
    assert status == "refused"
    assert any(f"{named.group(1)} on marts/fct_measure_monthly failed (" in r for r in reasons)
    # Whole reasons: the dbt step's failure is kept with its causes, never cut off.
    step = next(r for r in reasons if r.startswith("step period_models failed"))
    assert "dbt" in step and len(step) > 100
