"""The impact step in the whole pipeline, through Dagster, on the committed sample: it runs
after fct_spc, its tables are published in both tiers, and the public one passes the
disclosure audit. A bridge until the spc branch lands (docs/programme-impact.md sections
1-3): fct_spc's writer is wrapped to add the contract's segment columns and the story's
changes (impact_support.add_stand_in_segments), which does nothing once the real ones exist.
"""

from __future__ import annotations

import shutil
from datetime import date

import dagster as dg
import duckdb
import pytest
from impact_support import add_stand_in_segments

from conftest import SAMPLES, point_settings_at, run_full_pipeline
from pipelines.defs import spc as spc_defs
from pipelines.settings import load_settings

pytestmark = pytest.mark.e2e
STEPS = ("fct_spc", "impact_models", "published_snapshot")  # in this order


def test_impact_runs_after_fct_spc_and_is_published_in_both_tiers(tmp_path, monkeypatch):
    point_settings_at(monkeypatch, tmp_path)
    shutil.copytree(SAMPLES / "landing", tmp_path / "landing")
    write_pub_spc = spc_defs.write_pub_spc

    def write_then_stand_in(con, *args, **kwargs):
        rows = write_pub_spc(con, *args, **kwargs)
        add_stand_in_segments(con)
        return rows

    monkeypatch.setattr(spc_defs, "write_pub_spc", write_then_stand_in)
    result = run_full_pipeline(dg.DagsterInstance.ephemeral())
    assert result.success, [
        e.event_specific_data.error.message[:6000]
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    ]
    done = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    order = [next(i for i, key in enumerate(done) if name in key) for name in STEPS]
    assert order == sorted(order), done
    current = load_settings().published_current
    with duckdb.connect(str(current / "warehouse.duckdb"), read_only=True) as con:
        news2 = con.execute(
            "select signal, signal_start, attributed_change_id from fct_programme_impact"
            " where level = 'region' and measure_code = 'NEWS2_ESCALATED'"
        ).fetchall()
        sepsis = con.execute(
            "select signal, run_start from mart_unexplained_shifts"
            " where level = 'region' and measure_code = 'SEPSIS_ABX_1H'"
        ).fetchall()
    assert news2 == [("improvement", date(2024, 4, 1), "CHG-001")]
    assert ("improvement", date(2024, 7, 1)) in sepsis
    with duckdb.connect(str(current / "public" / "warehouse.duckdb"), read_only=True) as con:
        levels = con.execute("select distinct level from pub_programme_impact").fetchall()
        columns = {r[0] for r in con.execute("describe pub_programme_impact").fetchall()}
    assert {level for (level,) in levels} == {"sector", "icb", "region"}
    assert "org_code" not in columns
