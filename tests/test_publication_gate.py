"""Write-audit-publish: a bad build never reaches analysts, a killed publish never leaves
a half-written one, and every attempt is logged."""

from __future__ import annotations

import hashlib
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
from pipelines.defs.publish import record_refused_publication
from pipelines.publish.snapshot import CRASH_POINTS, verify_snapshot
from pipelines.settings import load_settings

JUNE = (date(2024, 6, 1), date(2024, 6, 1))
PLANTED = (
    "org_code = 'RTD' and measure_code = 'NEWS2_ON_TIME' and period = '2024-06-01'"
    " and superseded_by is null"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    with pytest.MonkeyPatch.context() as mp:
        point_settings_at(mp, root)
        shutil.copytree(SAMPLES / "landing", root / "landing")
        instance = dg.DagsterInstance.ephemeral()
        assert run_full_pipeline(instance).success
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
