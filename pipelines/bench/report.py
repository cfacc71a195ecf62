"""Benchmark results as JSON (for machines and trend tracking) and a short markdown table
(for people: the PR, the issue, the README)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS_JSON = "bench_results.json"
RESULTS_MD = "bench_results.md"

STAGE_LABELS = {
    "generate": "generate national data (setup, not compared)",
    "baseline_before": "(a) baseline before (b): plain DuckDB load + roll-up",
    "prepare": "prepare: dbt parse (setup, not compared)",
    "pipeline": "(b) pipeline: full rebuild, whole process",
    "baseline_after": "(a) baseline after (b): plain DuckDB load + roll-up",
    "incremental": "(c) one new trust file -> published, whole process",
    "queries": "(d) analyst queries (whole process)",
}
COUNT_COLUMNS = ("baseline_before", "pipeline", "baseline_after")


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
    if name.startswith("baseline"):
        notes += [
            f"{k.removesuffix('_s')} {v:.2f} s"
            for k, v in stage.get("detail", {}).get("timings_s", {}).items()
        ]
    if name in ("pipeline", "incremental"):
        notes.append(f"run {stage.get('status')}")
        if stage.get("pipeline_time_s") is not None:
            notes.append(f"pipeline time {stage['pipeline_time_s']:.1f} s")
        notes.append(f"months {stage.get('months')}")
        for milestone, label in (
            ("data_published", "data published"),
            ("reports_published", "reports (PDFs) published"),
        ):
            if stage.get(milestone):
                figures = stage[milestone]
                notes.append(
                    f"{label} at {figures['wall_s']:.1f} s wall / {figures['cpu_s']:.1f} s CPU"
                )
    if name == "queries" and "connect_ms" in stage:
        notes.append(f"connect {stage['connect_ms']:.0f} ms")
    if stage.get("returncode"):
        notes.append(f"EXIT {stage['returncode']}")
    return "; ".join(notes)


#: Phases shorter than this are left out of the table (a run has one per published table).
PHASE_SHOWN_S = 1.0


def _phase_lines(phases: dict[str, dict]) -> list[str]:
    """A step's phases (``published_snapshot``'s, pipelines/publish/phases.py) of at least
    :data:`PHASE_SHOWN_S` wall seconds, under the step, with how many were left out."""
    shown = {n: f for n, f in phases.items() if f.get("wall_s", 0.0) >= PHASE_SHOWN_S}
    lines = [
        f"| &nbsp;&nbsp;&nbsp;&nbsp;phase {name} | {_num(f.get('wall_s'))} | "
        f"{_num(f.get('cpu_s'))} | | | CPU of the step's own process |"
        for name, f in shown.items()
    ]
    if len(shown) < len(phases):
        rest = [f.get("wall_s", 0.0) for n, f in phases.items() if n not in shown]
        lines.append(
            f"| &nbsp;&nbsp;&nbsp;&nbsp;{len(rest)} shorter phases | {_num(sum(rest))} | | | | "
            f"each under {PHASE_SHOWN_S:.0f} s |"
        )
    return lines


def _load(stage: dict) -> str:
    load = stage.get("loadavg")
    return f"{load['start'][0]:.2f} -> {load['end'][0]:.2f}" if load else "-"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _by_run(by_run: dict[str, float | None]) -> str:
    return ", ".join(f"{name.removeprefix('baseline_')} {_x(v)}" for name, v in by_run.items())


def _ratio_lines(results: dict) -> list[str]:
    r, stages = results["ratios"], results["stages"]
    base = r["baseline_mean"]
    runs = [n for n in ("baseline_before", "baseline_after") if n in stages]
    walls = ", ".join(f"{stages[n]['wall_s']:.1f} s {n.removeprefix('baseline_')}" for n in runs)
    lines = [
        "",
        f"(a) is the mean of its {'two runs' if len(runs) == 2 else 'run so far'}: "
        f"{base['wall_s']:.1f} s wall ({walls} (b)), {base['cpu_s']:.1f} s CPU.",
    ]
    for label, key in (("(b)", "pipeline_to_baseline"), ("(c)", "new_file_to_baseline")):
        if key not in r:
            lines += ["", f"Ratio {label} / (a): not measured."]
            continue
        ratio = r[key]
        lines += [
            "",
            f"Ratio {label} / (a): **{_x(ratio['wall'])}** by wall time, "
            f"**{_x(ratio['cpu'])}** by CPU time (by wall against each run of (a): "
            + _by_run(ratio["wall_by_baseline_run"])
            + ")"
            + _with_pdfs(ratio)
            + ".",
        ]
    return [
        *lines,
        "",
        "Ratios are to the data published (the end of `published_snapshot`); the board-report "
        "PDFs are published after the swap (`board_report_pdfs`), shown as 'with the PDFs'.",
    ]


def _with_pdfs(ratio: dict) -> str:
    if ratio.get("wall_with_pdfs") is None or ratio["wall_with_pdfs"] == ratio["wall"]:
        return ""
    return (
        f"; with the PDFs: {_x(ratio['wall_with_pdfs'])} by wall, "
        f"{_x(ratio['cpu_with_pdfs'])} by CPU"
    )


def _target_lines(results: dict) -> list[str]:
    lines = [
        "",
        "| target (docs/design.md §10) | stated for | measured | verdict |",
        "|---|---|---:|---|",
    ]
    for name, target in results["targets"].items():
        measured = target["measured"]
        figure = _x(measured) if name.endswith("_ratio") else _num(measured, 1)
        if name == "peak_memory_mib":
            figure += f" MiB ({target['stage']})"
        elif name == "analyst_query_ms":
            figure += " ms"
        stated = target["stated_at_scale"]
        verdict = "pass" if target["met"] else "**FAIL**"
        if measured is None:
            verdict = "not measured"
        elif not target["at_stated_scale"]:
            verdict += " (trend only: not the stated scale)"
        lines.append(
            f"| {target['target']} | {'any scale' if stated is None else f'SCALE={stated:g}'} "
            f"| {figure} | {verdict} |"
        )
    return lines


def markdown(results: dict) -> str:
    data = results["data"]
    orgs = data["organisations"]["total"]
    lines = [
        f"# Benchmark at SCALE={results['scale']:g}",
        "",
        f"{orgs:,} organisations, {data['months']} months ({data['first_period']} to "
        f"{data['last_period']}), {data['rows']:,} measure rows in {data['files']:,} files "
        f"({data['bytes'] / 1e6:,.1f} MB); {data.get('incident_events', 0):,} incident "
        f"events ({data.get('incident_rows', 0):,} rows) in "
        f"{data.get('incident_files', 0):,} extracts from "
        f"{data.get('incident_first_period', '-')}; machine: {results['machine']['cpus']} CPUs, "
        f"{results['machine']['memory_gib']} GiB. Started {results['started_at'][:19]}Z.",
    ]
    if not results.get("options", {}).get("board_report_pdfs", True):
        lines += [
            "",
            "Board-report PDFs were **off** (`--no-pdfs`): each publication wrote the reports' "
            "HTML only. The ratios end at the data published, before the PDFs, either way.",
        ]
    if results.get("finished") is False:
        lines += [
            "",
            "**Partial results: the benchmark was still running, or was stopped, after the "
            "last stage shown; stages marked 'not run' were not measured.**",
        ]
    if results["failures"]:
        lines += ["", "**The benchmark FAILED; no ratio is reported.**", ""]
        lines += [f"- {reason}" for reason in results["failures"]]
    lines += [
        "",
        "| stage | wall s | CPU s | peak MiB | load (1 min) start -> end | notes |",
        "|---|---:|---:|---:|---|---|",
    ]
    for name, label in STAGE_LABELS.items():
        stage = results["stages"].get(name)
        if stage is None:
            lines.append(f"| {label} | | | | | not run |")
            continue
        lines.append(
            f"| {label} | {_num(stage['wall_s'])} | {_num(stage['cpu_s'])} | "
            f"{_num(stage['peak_memory_mib'], 0)} | {_load(stage)} | {_stage_notes(name, stage)} |"
        )
        for step, figures in stage.get("steps", {}).items():
            lines.append(
                f"| &nbsp;&nbsp;{name} step `{step}` | {_num(figures.get('wall_s'))} | "
                f"{_num(figures.get('cpu_s'))} | {_num(figures.get('peak_tree_rss_mib'), 0)} | | "
                f"{figures.get('status', figures.get('note', ''))} |"
            )
            lines += _phase_lines(figures.get("phases", {}))
        for query, figures in stage.get("queries", {}).items():
            lines.append(
                f"| &nbsp;&nbsp;query `{query}` | {figures['median_ms'] / 1000:.4f} | | | | "
                f"median {figures['median_ms']:.1f} ms of {figures['runs']} "
                f"(first {figures['first_ms']:.1f} ms), {figures['rows']} rows |"
            )
    if results["ratios"]:
        lines += _ratio_lines(results)
    if results["targets"]:
        lines += _target_lines(results)
    lines += [
        "",
        "| count | generator | baseline before | pipeline | baseline after | match |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, item in results["counts"].items():
        sides = " | ".join(_num(item.get(column)) for column in COUNT_COLUMNS)
        lines.append(
            f"| {name} | {_num(item['generator'])} | {sides} | "
            f"{'yes' if item['match'] else '**no**'} |"
        )
    rollup = results["rollup_check"]
    if rollup:
        lines += [
            "",
            f"Roll-up check (baseline vs published fct_measure_by_sector_monthly): "
            f"{'identical' if rollup.get('matches') else '**differs**'} "
            f"({rollup.get('cells_differing', rollup.get('error'))} differing of "
            f"{rollup.get('cells_compared', '-')}).",
        ]
    slowest = results["stages"].get("pipeline", {}).get("dbt_slowest", [])[:10]
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
