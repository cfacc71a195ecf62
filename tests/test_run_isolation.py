"""One run at a time, end to end: two runs started together publish, in order, exactly
the builds their own checks saw."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from conftest import SAMPLES, start_demo

pytestmark = pytest.mark.e2e

FIGURE = (
    "select numerator from fct_measure_monthly"
    " where org_code = 'RTD' and measure_code = 'FALLS_HARM' and period = '2024-05-01'"
)


def sample_falls() -> int:
    """RTD's May 2024 falls as the committed sample sends them (read, not remembered: the
    sample is regenerated when its story changes)."""
    for line in (SAMPLES / "landing" / "2024-06" / "RTD_2024-05.csv").read_text().splitlines():
        if line.startswith("RTD,2024-05,FALLS_HARM,"):
            return int(line.split(",")[3])
    raise AssertionError("the sample has no RTD falls row for May 2024")


ORIGINAL = sample_falls()
CORRECTED = ORIGINAL + 3


def step_times(log: Path) -> list[datetime]:
    """When each step started or finished, from the run's full log."""
    stamps = []
    for line in log.read_text().splitlines():
        if re.search(r" - (STEP_START|STEP_SUCCESS|STEP_FAILURE) - ", line):
            stamps.append(datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f"))
    return stamps


def test_two_runs_started_together_publish_in_turn_what_each_audited(tmp_path):
    sample = tmp_path / "landing_sample"
    corrected = tmp_path / "landing_corrected"
    shutil.copytree(SAMPLES / "landing", sample)
    shutil.copytree(SAMPLES / "landing", corrected)
    # A resubmission (sorted after the original, so it is the later submission).
    (corrected / "2099-resubmissions").mkdir()
    (corrected / "2099-resubmissions" / "RTD_2024-05_resubmission.csv").write_text(
        f"org_code,period,measure_code,numerator,denominator\n"
        f"RTD,2024-05,FALLS_HARM,{CORRECTED},35501\n"
    )
    runs = {
        name: start_demo(
            tmp_path,
            {"SAFETY_OBS_LANDING_DIR": str(landing), "SAFETY_OBS_ARCHIVE_PROCESSED": "false"},
        )
        for name, landing in (("sample", sample), ("corrected", corrected))
    }
    outputs = {name: process.communicate(timeout=1800) for name, process in runs.items()}
    for name, process in runs.items():
        assert process.returncode == 0, outputs[name][1][-3000:]
    run_ids = {
        name: re.search(r"Run ([0-9a-f-]{36}) succeeded", err).group(1)
        for name, (_, err) in outputs.items()
    }

    working = tmp_path / "var" / "warehouse" / "working.duckdb"
    with duckdb.connect(str(working), read_only=True) as con:
        log = con.execute(
            "select run_id, status, snapshot_id from audit.publication_log order by attempted_at"
        ).fetchall()
    assert [status for _, status, _ in log] == ["published", "published"]
    order = [next(n for n, r in run_ids.items() if r == run_id) for run_id, _, _ in log]
    assert sorted(order) == ["corrected", "sample"]

    # One at a time: every step of the first run finished before the second's first began.
    logs = tmp_path / "var" / "logs"
    first, second = (step_times(logs / f"{run_ids[name]}.log") for name in order)
    assert first and second and max(first) <= min(second)

    figures = {}
    for (_, _, snapshot_id), name in zip(log, order, strict=True):
        warehouse = tmp_path / "var" / "published" / "snapshots" / snapshot_id / "warehouse.duckdb"
        with duckdb.connect(str(warehouse), read_only=True) as con:
            figures[name] = con.execute(FIGURE).fetchone()[0]
    # The run with the resubmission always publishes it; the other publishes the original
    # if it ran first, and the correction (already in raw, latest wins) if it ran second.
    assert figures["corrected"] == CORRECTED
    assert figures["sample"] == (ORIGINAL if order[0] == "sample" else CORRECTED)
