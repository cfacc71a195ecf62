"""The benchmark's verdicts without running it: counts held against the generator, the
ratios over the mean of both baseline runs, the targets at their edges, and a failed run's
report carrying no ratio (tests/test_bench_outputs.py runs the real thing)."""

from __future__ import annotations

import os

import pytest

from pipelines.bench import report
from pipelines.bench.run import (
    INCIDENT_COUNTS,
    TARGET_PEAK_MIB,
    compare_counts,
    count_failures,
    ratios,
    stage_failures,
    targets,
)

MANIFEST = {
    "files": 10,
    "rows": 1000,
    "rows_quarantined": 2,
    "fct_measure_monthly_rows": 998,
    "fct_measure_monthly_rows_with_holdback": 1010,
    "incident_files": 4,
    "incident_rows": 420,
    "incident_events": 400,
    "incident_org_months": 4,
}
BASELINE = {"files_loaded": 10, "rows_loaded": 1000}
BASELINE |= {k: v for k, v in MANIFEST.items() if k.startswith("incident_")}
PIPELINE = {
    "files_loaded": 10,
    "rows_read": 1000,
    "rows_quarantined": 2,
    "fct_measure_monthly_rows": 998,
    "files_rejected": 0,
    "fct_incident_events": 400,
}


def _stage(wall: float, cpu: float, peak: float = 100.0, **extra: object) -> dict:
    return {"wall_s": wall, "cpu_s": cpu, "peak_memory_mib": peak, "returncode": 0, **extra}


def _stages(*, pipeline_wall: float = 40.0, incremental_wall: float = 5.0, peak: float = 100.0):
    return {
        "baseline_before": _stage(8.0, 6.0),
        "pipeline": _stage(pipeline_wall, 30.0, peak, status="SUCCESS"),
        "baseline_after": _stage(12.0, 9.0),
        "incremental": _stage(incremental_wall, 4.0, status="SUCCESS"),
        "queries": _stage(
            1.0, 1.0, queries={"q": {"median_ms": 20.0, "runs": 3, "first_ms": 30.0, "rows": 4}}
        ),
    }


def _results(stages: dict, scale: float = 1.0) -> dict:
    results = {"stages": stages, "scale": scale}
    results["ratios"] = ratios(stages)
    return results


def test_counts_that_match_on_every_side():
    sides = {"baseline_before": BASELINE, "pipeline": PIPELINE, "baseline_after": BASELINE}
    sides["after_new_file"] = {"fct_measure_monthly_rows": 1010}
    counts = compare_counts(MANIFEST, sides)
    assert all(item["match"] for item in counts.values()), counts
    assert counts["rows"] == {
        "generator": 1000,
        "baseline_before": 1000,
        "pipeline": 1000,
        "baseline_after": 1000,
        "match": True,
    }
    assert counts["fct_measure_monthly_rows_after_new_file"]["pipeline"] == 1010
    assert count_failures(counts) == []


def test_only_the_sides_measured_so_far_are_checked():
    counts = compare_counts(MANIFEST, {"baseline_before": BASELINE})
    assert set(counts) == {"files", "rows", *INCIDENT_COUNTS}
    assert set(counts["rows"]) == {"generator", "baseline_before", "match"}


def test_one_lost_row_on_one_side_fails_its_count():
    sides = {"baseline_before": BASELINE, "pipeline": {**PIPELINE, "rows_read": 999}}
    counts = compare_counts(MANIFEST, sides)
    assert not counts["rows"]["match"]
    assert counts["files"]["match"]
    assert count_failures(counts) == [
        "count rows: generator 1000, baseline_before 1000, pipeline 999"
    ]


def test_events_the_pipeline_deleted_fail_the_incident_event_count():
    """fct_incident short of the generator's events (extracts read as deleting each other's
    events, docs/incidents.md): the bench fails on incident_events, naming the pipeline."""
    sides = {"baseline_before": BASELINE, "pipeline": {**PIPELINE, "fct_incident_events": 40}}
    counts = compare_counts(MANIFEST, sides)
    assert counts["incident_events"] == {
        "generator": 400,
        "baseline_before": 400,
        "pipeline": 40,
        "match": False,
    }
    assert count_failures(counts) == [
        "count incident_events: generator 400, baseline_before 400, pipeline 40"
    ]
    # No fct_incident in the published warehouse states no events: not a match either.
    missing = {"pipeline": {**PIPELINE, "fct_incident_events": None}}
    assert not compare_counts(MANIFEST, missing)["incident_events"]["match"]


def test_a_count_the_side_cannot_state_fails():
    """A published warehouse that cannot be opened states no fact rows: not a match."""
    counts = compare_counts(MANIFEST, {"pipeline": {**PIPELINE, "fct_measure_monthly_rows": None}})
    assert not counts["fct_measure_monthly_rows"]["match"]
    assert not compare_counts(MANIFEST, {"pipeline": {}})["files"]["match"]


def test_a_failed_stage_or_run_is_a_failure():
    stages = _stages()
    assert stage_failures(stages) == []
    stages["baseline_after"]["returncode"] = 1
    stages["incremental"]["status"] = "FAILURE"
    assert stage_failures(stages) == [
        "stage baseline_after exited 1",
        "stage incremental: Dagster run FAILURE",
    ]


def test_ratios_use_the_mean_of_both_baseline_runs():
    r = ratios(_stages())
    assert r["baseline_mean"] == {"wall_s": 10.0, "cpu_s": 7.5}
    assert r["pipeline_to_baseline"]["wall"] == 4.0
    assert r["pipeline_to_baseline"]["cpu"] == 4.0
    assert r["pipeline_to_baseline"]["wall_by_baseline_run"] == {
        "baseline_before": 5.0,
        "baseline_after": 3.333,
    }
    assert r["new_file_to_baseline"]["wall"] == 0.5
    assert r["new_file_to_baseline"]["cpu"] == round(4.0 / 7.5, 3)


def test_ratios_count_until_the_data_is_published_and_show_the_pdfs_apart():
    """The board-report PDFs are published after the swap: the ratios use the time until
    ``published_snapshot`` ended (``data_published``), the whole process is shown beside
    them as "with the PDFs", and the report says both."""
    stages = _stages(pipeline_wall=100.0, incremental_wall=20.0)
    stages["pipeline"]["data_published"] = {"wall_s": 40.0, "cpu_s": 30.0}
    stages["incremental"]["data_published"] = {"wall_s": 5.0, "cpu_s": 3.75}
    stages["incremental"]["reports_published"] = {"wall_s": 20.0, "cpu_s": 4.0}
    r = ratios(stages)
    assert (r["pipeline_to_baseline"]["wall"], r["pipeline_to_baseline"]["wall_with_pdfs"]) == (
        4.0,
        10.0,
    )
    assert r["new_file_to_baseline"]["wall"] == 0.5
    assert r["new_file_to_baseline"]["cpu"] == 0.5
    assert r["new_file_to_baseline"]["wall_with_pdfs"] == 2.0
    assert targets(_results(stages))["new_file_wall_ratio"]["met"]
    text = _report(stages, failures=[])
    assert "Ratio (c) / (a): **0.50x** by wall time" in text
    assert "with the PDFs: 2.00x by wall" in text
    assert "reports (PDFs) published at 20.0 s wall / 4.0 s CPU" in text
    assert "data published at 5.0 s wall / 3.8 s CPU" in text


def test_targets_pass_on_the_edge_and_fail_past_it():
    met = targets(_results(_stages()))
    assert {name: t["met"] for name, t in met.items()} == {
        "rebuild_wall_ratio": True,  # exactly 4x: within
        "rebuild_cpu_ratio": True,
        "new_file_wall_ratio": True,  # exactly 0.5x: within
        "peak_memory_mib": True,
        "analyst_query_ms": True,
    }
    missed = targets(
        _results(_stages(pipeline_wall=40.1, incremental_wall=5.1, peak=TARGET_PEAK_MIB))
    )
    assert not missed["rebuild_wall_ratio"]["met"]
    assert missed["rebuild_cpu_ratio"]["met"]  # CPU is judged on its own
    assert not missed["new_file_wall_ratio"]["met"]
    assert not missed["peak_memory_mib"]["met"]  # under 6 GB, not at it
    assert missed["peak_memory_mib"]["stage"] == "pipeline"


@pytest.mark.parametrize(
    ("scale", "ratios_stated", "memory_stated"),
    [(1.0, True, False), (5.0, False, True), (0.05, False, False)],
)
def test_targets_say_whether_this_is_their_scale(scale, ratios_stated, memory_stated):
    verdicts = targets(_results(_stages(), scale))
    assert verdicts["rebuild_wall_ratio"]["at_stated_scale"] is ratios_stated
    assert verdicts["new_file_wall_ratio"]["at_stated_scale"] is ratios_stated
    assert verdicts["peak_memory_mib"]["at_stated_scale"] is memory_stated
    assert verdicts["analyst_query_ms"]["at_stated_scale"] is True


def _report(stages: dict, *, failures: list[str], finished: bool = True, pdfs: bool = True) -> str:
    results = _results(stages) if not failures else {"stages": stages, "scale": 1.0}
    results |= {
        "finished": finished,
        "options": {"board_report_pdfs": pdfs},
        "started_at": "2026-12-01T21:00:00+00:00",
        "machine": {"cpus": 2, "memory_gib": 23.0},
        "data": {
            "organisations": {"total": 5},
            "months": 6,
            "first_period": "2026-06",
            "last_period": "2026-11",
            "rows": 1000,
            "files": 10,
            "bytes": 50_000,
        },
        "failures": failures,
        "counts": compare_counts(MANIFEST, {"baseline_before": BASELINE}),
        "rollup_check": {},
    }
    if failures:
        results |= {"ratios": None, "targets": None}
    else:
        results["targets"] = targets(results)
    return report.markdown(results)


def test_a_sound_report_shows_both_ratios_and_every_verdict():
    text = _report(_stages(), failures=[])
    assert "Ratio (b) / (a): **4.00x** by wall time, **4.00x** by CPU time" in text
    assert "Ratio (c) / (a): **0.50x** by wall time" in text
    assert text.count("| pass") == 5
    assert "| pass (trend only: not the stated scale) |" in text  # memory: SCALE=5
    assert "FAILED" not in text


def test_a_failed_report_names_the_failure_and_has_no_ratio():
    stages = {"baseline_before": _stage(8.0, 6.0)}
    text = _report(stages, failures=["after (a) before: count rows: generator 1000, x 999"])
    assert "The benchmark FAILED; no ratio is reported" in text
    assert "count rows: generator 1000" in text
    assert "Ratio (" not in text and "target" not in text
    assert "| (b) pipeline: full rebuild, whole process | | | | | not run |" in text


def test_a_run_stopped_part_way_reports_what_it_measured_and_no_more():
    """A SCALE=5 run takes hours: the results are written after every stage, so a run
    stopped during (c) still states (a), (b) and the memory of (b), and says what it did
    not measure instead of failing or passing it."""
    stages = {k: v for k, v in _stages().items() if k in ("baseline_before", "pipeline")}
    r = ratios(stages)
    assert r["baseline_mean"] == {"wall_s": 8.0, "cpu_s": 6.0}
    assert r["pipeline_to_baseline"]["wall"] == 5.0
    assert "new_file_to_baseline" not in r
    verdicts = targets(_results(stages, scale=5.0))
    assert verdicts["peak_memory_mib"]["measured"] == 100.0
    assert verdicts["peak_memory_mib"]["met"] and verdicts["peak_memory_mib"]["stage"] == "pipeline"
    assert verdicts["new_file_wall_ratio"]["measured"] is None
    assert not verdicts["new_file_wall_ratio"]["met"]
    assert verdicts["analyst_query_ms"]["measured"] is None
    text = _report(stages, failures=[], finished=False)
    assert "**Partial results" in text
    assert "(a) is the mean of its run so far: 8.0 s wall" in text
    assert "Ratio (c) / (a): not measured." in text
    assert text.count("| not measured |") == 2  # (c) and (d)
    assert "| (c) one new trust file -> published, whole process | | | | | not run |" in text
    assert "**Partial results" not in _report(_stages(), failures=[])


def test_no_pdfs_reaches_the_pipeline_settings_and_the_report(tmp_path, monkeypatch):
    """--no-pdfs is a setting every pipeline process reads (not a flag the bench alone
    knows), and the report says the PDFs were off."""
    from pipelines.bench.run import Benchmark
    from pipelines.settings import load_settings

    with_pdfs = Benchmark(scale=0.01, out=tmp_path, log=lambda _: None)
    without = Benchmark(scale=0.01, out=tmp_path, board_report_pdfs=False, log=lambda _: None)
    for bench, expected in ((with_pdfs, True), (without, False)):
        for key in [k for k in os.environ if k.startswith("SAFETY_OBS_")]:
            monkeypatch.delenv(key)
        for key, value in bench.env.items():
            if key.startswith("SAFETY_OBS_"):
                monkeypatch.setenv(key, value)
        assert load_settings().board_report_pdf is expected
    assert "PDFs were **off**" in _report(_stages(), failures=[], pdfs=False)
    assert "PDFs were **off**" not in _report(_stages(), failures=[])
