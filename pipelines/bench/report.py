"""Benchmark results as JSON (for machines and trend tracking) and a short markdown table
(for people: the PR, the issue, the README)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS_JSON = "bench_results.json"
RESULTS_MD = "bench_results.md"

STAGE_LABELS = {
    "generate": "generate national data (setup, not compared)",
    "prepare": "prepare: dbt parse (setup, not compared)",
    "baseline": "(a) baseline: plain DuckDB load + roll-up",
    "pipeline": "(b) pipeline: full rebuild through Dagster",
    "incremental": "(c) one new trust file -> published",
    "queries": "(d) analyst queries (whole process)",
}


def _num(value: object, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _stage_notes(name: str, stage: dict) -> str:
    notes = []
    if stage.get("reused"):
        notes.append("reused existing data")
    if name == "baseline":
        notes += [
            f"{k.removesuffix('_s')} {v:.2f} s"
            for k, v in stage.get("detail", {}).get("timings_s", {}).items()
        ]
    if name in ("pipeline", "incremental"):
        notes.append(f"run {stage.get('status')}")
        if stage.get("pipeline_time_s") is not None:
            notes.append(f"pipeline time {stage['pipeline_time_s']:.1f} s")
        notes.append(f"months {stage.get('months')}")
    if name == "queries" and "connect_ms" in stage:
        notes.append(f"connect {stage['connect_ms']:.0f} ms")
    if stage.get("returncode"):
        notes.append(f"EXIT {stage['returncode']}")
    load = stage.get("loadavg_1m")
    if load:
        notes.append(f"load {load['before']:.1f}->{load['after']:.1f}")
    return "; ".join(notes)


def markdown(results: dict) -> str:
    data = results["data"]
    orgs = data["organisations"]["total"]
    lines = [
        f"# Benchmark at SCALE={results['scale']:g}",
        "",
        f"{orgs:,} organisations, {data['months']} months ({data['first_period']} to "
        f"{data['last_period']}), {data['rows']:,} measure rows in {data['files']:,} files "
        f"({data['bytes'] / 1e6:,.1f} MB); machine: {results['machine']['cpus']} CPUs, "
        f"{results['machine']['memory_gib']} GiB. Started {results['started_at'][:19]}Z.",
        "",
        "| stage | wall s | CPU s | peak MiB | notes |",
        "|---|---:|---:|---:|---|",
    ]
    for name, label in STAGE_LABELS.items():
        stage = results["stages"][name]
        lines.append(
            f"| {label} | {_num(stage['wall_s'])} | {_num(stage['cpu_s'])} | "
            f"{_num(stage['peak_memory_mib'], 0)} | {_stage_notes(name, stage)} |"
        )
        for step, figures in stage.get("steps", {}).items():
            lines.append(
                f"| &nbsp;&nbsp;{name} step `{step}` | {_num(figures.get('wall_s'))} | "
                f"{_num(figures.get('cpu_s'))} | {_num(figures.get('peak_tree_rss_mib'), 0)} | "
                f"{figures.get('status', figures.get('note', ''))} |"
            )
        for query, figures in stage.get("queries", {}).items():
            lines.append(
                f"| &nbsp;&nbsp;query `{query}` | {figures['median_ms'] / 1000:.4f} | | | "
                f"median {figures['median_ms']:.1f} ms of {figures['runs']} "
                f"(first {figures['first_ms']:.1f} ms), {figures['rows']} rows |"
            )
    lines += [
        "",
        f"Ratio (b) / (a), wall time: **{_num(results['ratio_pipeline_to_baseline'], 2)}x**.",
        "",
        "| docs/design.md §10 target | measured | met |",
        "|---|---:|---|",
    ]
    for name, target in results["targets"].items():
        if not isinstance(target, dict):
            continue
        lines.append(
            f"| {name}: {target['target']} | {_num(target['measured'], 2)} | "
            f"{'yes' if target['met'] else '**no**'} |"
        )
    if not results["targets"].get("measured_at_national_scale"):
        lines.append("")
        lines.append("Targets are stated for SCALE=1.0; at this scale they show the trend only.")
    lines += ["", "| count | generator | pipeline | baseline | match |", "|---|---:|---:|---:|---|"]
    for name, item in results["counts"].items():
        lines.append(
            f"| {name} | {_num(item['generator'])} | {_num(item.get('pipeline'))} | "
            f"{_num(item.get('baseline'))} | {'yes' if item['match'] else '**no**'} |"
        )
    rollup = results["rollup_check"]
    lines += [
        "",
        f"Roll-up check (baseline vs published fct_measure_by_sector_monthly): "
        f"{'identical' if rollup.get('matches') else '**differs**'} "
        f"({rollup.get('cells_differing', rollup.get('error'))} differing of "
        f"{rollup.get('cells_compared', '-')}).",
    ]
    slowest = results["stages"]["pipeline"].get("dbt_slowest", [])[:10]
    if slowest:
        lines += ["", "Slowest dbt nodes in (b):", "", "| node | s |", "|---|---:|"]
        lines += [f"| {n['node']} | {n['execution_s']:.2f} |" for n in slowest]
    return "\n".join(lines) + "\n"


def write(results: dict, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / RESULTS_JSON
    md_path = folder / RESULTS_MD
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path
