"""Per-step timings of a pipeline run, read back from the Dagster instance it wrote to.

The pipeline runs in a child process (so its memory is its own); Dagster records every
step's start and end in the run's event log under DAGSTER_HOME, which is the source the UI
shows engineers too. Joined with the process sampler (:mod:`pipelines.bench.measure`) the
step windows give CPU and peak memory per step. dbt's own per-model timings come from the
``run_results.json`` each dbt invocation leaves in its target folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from pipelines.bench.measure import Usage
from pipelines.publish.phases import PHASES_METADATA

STEP_EVENTS = {
    dg.DagsterEventType.STEP_START,
    dg.DagsterEventType.STEP_SUCCESS,
    dg.DagsterEventType.STEP_FAILURE,
    dg.DagsterEventType.RUN_START,
    dg.DagsterEventType.RUN_SUCCESS,
    dg.DagsterEventType.RUN_FAILURE,
    dg.DagsterEventType.ASSET_MATERIALIZATION,
}


def latest_run_steps(dagster_home: Path) -> dict:
    """The most recent run in ``dagster_home``: status, start/end, and each step's window
    (with the phases a step reported in its metadata: ``published_snapshot``'s)."""
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        runs = instance.get_runs(limit=1)
        if not runs:
            return {"run_id": None, "status": "no run recorded", "steps": {}}
        run = runs[0]
        steps: dict[str, dict] = {}
        run_start = run_end = None
        for entry in instance.all_logs(run.run_id, of_type=STEP_EVENTS):
            event = entry.dagster_event
            if event is None:
                continue
            kind = event.event_type
            if kind == dg.DagsterEventType.RUN_START:
                run_start = entry.timestamp
            elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
                run_end = entry.timestamp
            elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
                metadata = event.step_materialization_data.materialization.metadata
                phases = metadata.get(PHASES_METADATA)
                if phases is not None and entry.step_key:
                    steps.setdefault(entry.step_key, {})["phases"] = phases.value
            elif entry.step_key:
                step = steps.setdefault(entry.step_key, {})
                if kind == dg.DagsterEventType.STEP_START:
                    step["start"] = entry.timestamp
                else:
                    step["end"] = entry.timestamp
                    step["status"] = "success" if kind.value == "STEP_SUCCESS" else "failure"
        return {
            "run_id": run.run_id,
            "status": run.status.value,
            "run_start": run_start,
            "run_end": run_end,
            "steps": steps,
        }
    finally:
        instance.dispose()


def step_table(run: dict, usage: Usage) -> dict[str, dict]:
    """Wall, CPU and peak tree memory per step, plus the time outside any step (process
    start, loading definitions, run bookkeeping) as ``(orchestration)``."""
    table: dict[str, dict] = {}
    in_steps = 0.0
    for key, step in sorted(run["steps"].items(), key=lambda kv: kv[1].get("start", 0.0)):
        if "start" not in step or "end" not in step:
            continue
        wall = step["end"] - step["start"]
        in_steps += wall
        table[key] = {
            "wall_s": round(wall, 3),
            **usage.window(step["start"], step["end"]),
            "status": step.get("status", "unknown"),
            **({"phases": step["phases"]} if "phases" in step else {}),
        }
    outside = usage.wall_s - in_steps
    table["(orchestration)"] = {
        "wall_s": round(outside, 3),
        "note": "process start, imports, definitions, run bookkeeping: wall minus steps",
    }
    return table


#: (milestone, the step whose end reaches it): the data (tables, sites, HTML reports) is
#: published when ``published_snapshot`` ends; the board-report PDFs, rendered after the
#: swap, when ``board_report_pdfs`` ends (docs/benchmark.md).
MILESTONES = (("data_published", "published_snapshot"), ("reports_published", "board_report_pdfs"))


def milestones(run: dict, usage: Usage) -> dict[str, dict]:
    """Wall and CPU time from the process start until each milestone's step ended (CPU from
    the samples up to that instant), for the steps the run has."""
    result = {}
    for name, step_key in MILESTONES:
        end = run["steps"].get(step_key, {}).get("end")
        if end is None or run["steps"][step_key].get("status") != "success":
            continue
        result[name] = {
            "wall_s": round(end - usage.started_at, 3),
            "cpu_s": usage.window(usage.started_at, end)["cpu_s"],
        }
    return result


def pipeline_time(run: dict) -> float | None:
    """RUN_START to RUN_SUCCESS: the pipeline's own time, without process start-up."""
    if run.get("run_start") is None or run.get("run_end") is None:
        return None
    return round(run["run_end"] - run["run_start"], 3)


def _invocations(target_dir: Path, run_id: str | None) -> list[Path]:
    """run_results.json of the dbt invocations of one run: dagster-dbt names each target
    folder ``<op>-<run id[:7]>-<random>`` (under $DBT_TARGET_PATH)."""
    if not run_id:
        return []
    return sorted(target_dir.glob(f"*-{run_id[:7]}-*/run_results.json"))


def dbt_node_timings(target_dir: Path, run_id: str | None, top: int = 15) -> list[dict]:
    """The slowest dbt nodes (models, tests) of one run's dbt invocations."""
    nodes = []
    for results in _invocations(target_dir, run_id):
        data = json.loads(results.read_text())
        for result in data.get("results", []):
            nodes.append(
                {
                    "invocation": results.parent.name.split("-")[0],
                    "node": result["unique_id"].split(".", 1)[1],
                    "status": result.get("status"),
                    "execution_s": round(result.get("execution_time") or 0.0, 3),
                }
            )
    nodes.sort(key=lambda n: n["execution_s"], reverse=True)
    return nodes[:top]


def dbt_total(target_dir: Path, run_id: str | None) -> dict[str, float]:
    """Sum of dbt node execution times by kind (model, test, seed) in one run."""
    totals: dict[str, float] = {}
    for results in _invocations(target_dir, run_id):
        for result in json.loads(results.read_text()).get("results", []):
            kind = result["unique_id"].split(".", 1)[0]
            totals[kind] = round(totals.get(kind, 0.0) + (result.get("execution_time") or 0), 3)
    return totals
