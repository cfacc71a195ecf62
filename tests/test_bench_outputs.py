"""The national benchmark runs end to end at a tiny scale and reports well-formed figures.

No timing is asserted (this machine's load is not ours to control); what is asserted is
that every stage was measured, the figures and the ratio are there, the markdown lists
every stage, and the counts the pipeline and the baseline report are exactly what the
generator wrote, so a benchmark figure can never come from a run that lost data.

The run takes about as long as two small pipeline runs (each pays the pipeline's fixed
start-up cost: Dagster, two dbt invocations, GX), about one and a half minutes here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.bench.queries import QUERIES
from pipelines.bench.report import RESULTS_JSON, RESULTS_MD, STAGE_LABELS
from pipelines.bench.run import STAGES
from pipelines.settings import PROJECT_ROOT

SCALE = "0.002"
FIGURES = ("wall_s", "cpu_s", "peak_memory_mib")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One benchmark run, as `make bench SCALE=0.002` runs it, into a temporary folder."""
    out = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "-m", "pipelines.bench", "--scale", SCALE, "--months", "6"]
    command += ["--query-runs", "3", "--out", str(out)]
    proc = subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    root = out / f"scale-{float(SCALE):g}"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {
        "stdout": proc.stdout,
        "root": root,
        "results": json.loads((root / RESULTS_JSON).read_text()),
        "markdown": (root / RESULTS_MD).read_text(),
        "manifest": json.loads((root / "data" / "NATIONAL_MANIFEST.json").read_text()),
    }


def test_results_have_every_section(bench):
    results = bench["results"]
    for key in (
        "scale",
        "machine",
        "data",
        "stages",
        "ratio_pipeline_to_baseline",
        "counts",
        "rollup_check",
        "targets",
    ):
        assert key in results, key
    assert results["scale"] == float(SCALE)
    assert set(results["stages"]) == set(STAGES)


def test_every_stage_has_wall_cpu_and_peak_memory(bench):
    for name, stage in bench["results"]["stages"].items():
        for figure in FIGURES:
            value = stage[figure]
            assert isinstance(value, int | float) and value >= 0, (name, figure, value)
        assert stage["wall_s"] > 0, name
        assert stage["peak_memory_mib"] > 0, name
        assert stage["returncode"] == 0, name


def test_pipeline_runs_succeeded_with_per_step_figures(bench):
    stages = bench["results"]["stages"]
    for name in ("pipeline", "incremental"):
        stage = stages[name]
        assert stage["status"] == "SUCCESS", name
        assert stage["pipeline_time_s"] > 0
        steps = stage["steps"]
        assert {"measure_returns", "published_snapshot", "(orchestration)"} <= set(steps)
        for step, figures in steps.items():
            assert figures["wall_s"] >= 0, (name, step)
            if step != "(orchestration)":
                assert {"cpu_s", "peak_tree_rss_mib", "status"} <= set(figures), (name, step)
        assert stage["dbt_slowest"], f"{name}: no dbt timings found"


def test_every_query_has_a_median(bench):
    queries = bench["results"]["stages"]["queries"]["queries"]
    assert set(queries) == set(QUERIES)
    for name, figures in queries.items():
        assert figures["runs"] == 3, name
        assert figures["min_ms"] <= figures["median_ms"] <= figures["max_ms"], name
    assert {q["rows"] for q in queries.values()} != {0}


def test_ratio_is_pipeline_over_baseline(bench):
    results = bench["results"]
    stages = results["stages"]
    expected = round(stages["pipeline"]["wall_s"] / stages["baseline"]["wall_s"], 2)
    assert results["ratio_pipeline_to_baseline"] == expected
    for name, target in results["targets"].items():
        if isinstance(target, dict):
            assert {"target", "measured", "met"} <= set(target), name
            assert isinstance(target["met"], bool), name


def test_markdown_lists_every_stage_and_is_printed(bench):
    markdown = bench["markdown"]
    for label in STAGE_LABELS.values():
        assert label in markdown
    for query in QUERIES:
        assert f"`{query}`" in markdown
    assert "Ratio (b) / (a)" in markdown
    assert markdown.splitlines()[0] in bench["stdout"]


def test_counts_match_what_the_generator_wrote(bench):
    results, manifest = bench["results"], bench["manifest"]
    counts = results["counts"]
    assert all(item["match"] for item in counts.values()), counts
    assert counts["files"]["pipeline"] == counts["files"]["baseline"] == manifest["files"]
    assert counts["rows"]["pipeline"] == counts["rows"]["baseline"] == manifest["rows"]
    assert counts["fct_measure_monthly_rows"]["pipeline"] == manifest["fct_measure_monthly_rows"]
    assert (
        counts["fct_measure_monthly_rows_after_new_file"]["pipeline"]
        == manifest["fct_measure_monthly_rows_with_holdback"]
    )
    on_disk = [p for p in (bench["root"] / "data" / "landing").rglob("*") if p.is_file()]
    assert len(on_disk) == manifest["files"]
    assert results["data"]["rows"] == manifest["rows"]
    assert results["rollup_check"]["matches"], results["rollup_check"]


def test_bench_writes_only_under_its_output_folder(bench):
    root: Path = bench["root"]
    assert (root / "run" / "var" / "published" / "current" / "warehouse.duckdb").exists()
    for name, path in bench["results"]["paths"].items():
        assert Path(path).is_relative_to(root), (name, path)
