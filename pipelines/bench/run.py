"""The benchmark, stage by stage, in one run (docs/design.md §10, docs/benchmark.md).

Stages, each in its own child process so CPU and peak memory are the stage's own:

* ``generate``         national data for the scale (reused when the folder already holds it)
* ``baseline_before``  (a) plain DuckDB loads the same files and computes the same roll-up
* ``prepare``          ``dbt parse`` into the run's own target folder (what ``make prepare``
                       does)
* ``pipeline``         (b) the full rebuild over every month, end to end, on a fresh working
                       file, started as an operator starts it (``python -m pipelines.cli
                       backfill``); per-step figures from the run's event log
* ``baseline_after``   (a) again: the machine is shared, so (a) runs on both sides of (b)
                       and the ratios use the mean of the two
* ``incremental``      (c) one trust's return for the latest month lands on that warehouse
                       and the whole process a sensor's run amounts to (Python start,
                       Dagster and dbt load, the run for that month, publication) is timed
* ``queries``          (d) analyst queries on the published file, median of N runs each

Counts are checked against the generator's manifest as soon as a stage can state them;
the first failed check (or failed stage) ends the run: the results say why and carry no
ratio, and ``python -m pipelines.bench`` exits non-zero. A ratio from a run that lost or
changed data would compare different work.

Layout under ``<out>/scale-<scale>/``: ``data/`` (generator output, kept between runs),
``run/`` (landing, working file, publications, Dagster home, dbt target, logs; recreated
each run) and the results, ``bench_results.json`` and ``bench_results.md``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from pipelines.bench import dagster_run, report
from pipelines.bench.measure import MIB, Usage, run_measured
from pipelines.catalogue import CATALOGUE_CSV
from pipelines.months import parse_month
from pipelines.settings import ALL_ENGLAND, PROJECT_ROOT

STAGES = (
    "generate",
    "baseline_before",
    "prepare",
    "pipeline",
    "baseline_after",
    "incremental",
    "queries",
)
BASELINES = ("baseline_before", "baseline_after")
GENERATOR = PROJECT_ROOT / "data_samples" / "national.py"

# The targets of docs/design.md §10, as numbers, in this one place (docs/benchmark.md).
TARGET_REBUILD_RATIO = 4.0  # (b) / (a), by wall time and by CPU time
TARGET_NEW_FILE_RATIO = 0.5  # (c) / (a), by wall time
TARGET_PEAK_MIB = 6e9 / MIB  # 6 GB (decimal, the stricter reading), (b) and (c)
TARGET_QUERY_MS = 100.0  # median of every analyst query in (d)
RATIO_TARGET_SCALE = 1.0  # the ratios are stated for SCALE=1
MEMORY_TARGET_SCALE = 5.0  # the memory cap for SCALE=5 (about 20 million rows)


class BenchmarkFailed(Exception):
    """A count did not match the generator, or a stage failed: the run stops there and
    reports no ratio (it would compare different work, or none)."""


@dataclass(frozen=True)
class BenchPaths:
    """Every path the benchmark writes, under one folder per scale."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def landing(self) -> Path:
        return self.run / "landing"

    @property
    def incident_landing(self) -> Path:
        return self.run / "incident_landing"

    @property
    def var(self) -> Path:
        return self.run / "var"

    @property
    def working_db(self) -> Path:
        return self.var / "warehouse" / "working.duckdb"

    @property
    def published(self) -> Path:
        return self.var / "published"

    @property
    def published_warehouse(self) -> Path:
        return self.published / "current" / "warehouse.duckdb"

    @property
    def dagster_home(self) -> Path:
        return self.run / "dagster_home"

    @property
    def dbt_target(self) -> Path:
        return self.run / "dbt_target"

    @property
    def logs(self) -> Path:
        return self.run / "logs"

    def baseline_db(self, stage: str = "baseline_before") -> Path:
        """Each baseline run's own DuckDB file; the roll-up check reads the first's."""
        return self.run / "baseline" / f"{stage}.duckdb"


def scale_folder(out: Path, scale: float) -> Path:
    return out / f"scale-{scale:g}"


def pipeline_env(paths: BenchPaths) -> dict[str, str]:
    """The environment of every pipeline process: all state inside the run folder, the
    national register, no survey exports. Inherited SAFETY_OBS_* settings are dropped so a
    developer's shell cannot leak into the figures. The region is all of England: the
    generator writes organisations over every ICB and the counts it checks are national
    (the default configuration's region would load one ICB's organisations only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETY_OBS_")}
    env.update(
        {
            "SAFETY_OBS_REGION_ICBS": ALL_ENGLAND,
            # Every file is complete before a run starts: nothing to wait for.
            "SAFETY_OBS_SETTLE_SECONDS": "0",
            "SAFETY_OBS_VAR_DIR": str(paths.var),
            "SAFETY_OBS_WORKING_DB": str(paths.working_db),
            "SAFETY_OBS_PUBLISHED_DIR": str(paths.published),
            "SAFETY_OBS_LANDING_DIR": str(paths.landing),
            "SAFETY_OBS_SURVEY_LANDING_DIR": str(paths.run / "survey_landing"),
            # The generator's national incident extracts (linked like the returns), and no
            # KH03: the bench's trusts have no bed days, so the incident rates are absent
            # (docs/benchmark.md). Never the sample's files.
            "SAFETY_OBS_INCIDENT_LANDING_DIR": str(paths.incident_landing),
            "SAFETY_OBS_KH03_LANDING_DIR": str(paths.run / "kh03_landing"),
            "SAFETY_OBS_ODS_DIR": str(paths.data / "ods"),
            "SAFETY_OBS_LOCAL_REGISTER": str(paths.data / "local_register.csv"),
            "SAFETY_OBS_DBT_TARGET_DIR": str(paths.dbt_target),
            # `prepare` creates the Dagster instance where the setting says; the dagster CLI
            # reads DAGSTER_HOME. Both must name the same folder.
            "SAFETY_OBS_DAGSTER_HOME": str(paths.dagster_home),
            "DAGSTER_HOME": str(paths.dagster_home),
            "DBT_LOG_PATH": str(paths.logs / "dbt"),
            # dagster-dbt writes each invocation's target folder (run_results.json, with
            # per-model timings) under this path instead of dbt_project/target.
            "DBT_TARGET_PATH": str(paths.dbt_target),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _link_tree(source: Path, target: Path) -> int:
    """Hard-link every file (same inode, so same bytes and modification time) so that
    ingest's archiving moves the links and the generated data stays whole for the baseline
    and the next run. Copies where links are impossible."""
    count = 0
    for path in sorted(source.rglob("*")):
        if path.is_file():
            dest = target / path.relative_to(source)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, dest)
            except OSError:
                shutil.copy2(path, dest)
            count += 1
    return count


def _stage(usage: Usage, **extra: object) -> dict:
    return {**usage.summary(), **extra}


class Benchmark:
    """One benchmark run at one scale; :meth:`run` returns (and writes) the results."""

    def __init__(
        self,
        *,
        scale: float,
        out: Path,
        months: int = 120,
        seed: int | None = None,
        last_period: date | None = None,
        query_runs: int = 7,
        regenerate: bool = False,
        board_report_pdfs: bool = True,
        log: Callable[[str], None] = print,
    ) -> None:
        self.scale = scale
        self.paths = BenchPaths(scale_folder(out.resolve(), scale))
        self.months = months
        self.seed = seed
        today = date.today().replace(day=1)
        self.last_period = last_period or (
            date(today.year - 1, 12, 1)
            if today.month == 1
            else today.replace(month=today.month - 1)
        )
        self.query_runs = query_runs
        self.regenerate = regenerate
        self.log = log
        self.python = sys.executable
        self.dagster = str(Path(sys.executable).parent / "dagster")
        self.board_report_pdfs = board_report_pdfs
        self.env = pipeline_env(self.paths)
        if not board_report_pdfs:
            # --no-pdfs: the publications write the board reports' HTML only. The PDFs are
            # published after the swap, so the ratios (to the data published) are the same
            # measure; the whole process is shorter, and the results say the PDFs were off.
            self.env["SAFETY_OBS_BOARD_REPORT_PDF"] = "false"

    # -- stages ------------------------------------------------------------------------

    def _measured(self, name: str, command: list[str], **kwargs: object) -> Usage:
        """Run one stage's process, with the load average at its start and end: the machine
        is shared, and a stage measured under load says so in the results."""
        self.log(f"[bench] {name}: {' '.join(command[:6])}{' ...' if len(command) > 6 else ''}")
        load_start = os.getloadavg()
        usage = run_measured(
            command, env=self.env, cwd=PROJECT_ROOT, log=self.paths.logs / f"{name}.log"
        )
        load_end = os.getloadavg()
        self.loads[name] = {
            "start": [round(v, 2) for v in load_start],
            "end": [round(v, 2) for v in load_end],
        }
        self.log(
            f"[bench] {name}: {usage.wall_s:.1f} s wall, {usage.cpu_s:.1f} s CPU, "
            f"{usage.peak_memory_mib:.0f} MiB peak, exit {usage.returncode}, "
            f"load (1 min) {load_start[0]:.2f} -> {load_end[0]:.2f}"
        )
        return usage

    def generate(self) -> dict:
        manifest_path = self.paths.data / "NATIONAL_MANIFEST.json"
        wanted = {
            "scale": self.scale,
            "months_requested": self.months,
            "last_period": self.last_period.strftime("%Y-%m"),
        }
        if self.seed is not None:
            wanted["seed"] = self.seed
        if manifest_path.exists() and not self.regenerate:
            manifest = json.loads(manifest_path.read_text())
            # Data generated before the incident extracts existed, or when they were by
            # month of submission and overlapped (docs/benchmark.md), is generated again.
            if manifest.get("incident_extracts") == "by_event_month" and all(
                manifest.get(k) == v for k, v in wanted.items()
            ):
                self.manifest = manifest
                self.log(f"[bench] generate: reusing {self.paths.data}")
                return {
                    "wall_s": 0.0,
                    "cpu_s": 0.0,
                    "cpu_user_s": 0.0,
                    "cpu_sys_s": 0.0,
                    "peak_memory_mib": 0.0,
                    "peak_rss_mib": 0.0,
                    "peak_tree_rss_mib": 0.0,
                    "returncode": 0,
                    "reused": True,
                }
        command = [self.python, str(GENERATOR), "--out", str(self.paths.data)]
        command += ["--scale", str(self.scale), "--months", str(self.months)]
        command += ["--last-period", self.last_period.strftime("%Y-%m")]
        if self.seed is not None:
            command += ["--seed", str(self.seed)]
        usage = self._measured("generate", command)
        if usage.returncode != 0:
            raise RuntimeError(f"generator failed; see {self.paths.logs / 'generate.log'}")
        self.manifest = json.loads(manifest_path.read_text())
        return _stage(usage, reused=False)

    def prepare(self) -> dict:
        """``dbt parse``; a failure ends the run at the next check, with its results."""
        usage = self._measured("prepare", [self.python, "-m", "pipelines.cli", "prepare"])
        return _stage(usage)

    def baseline(self, name: str) -> dict:
        """(a) as its own process, into its own DuckDB file."""
        db = self.paths.baseline_db(name)
        result = db.with_suffix(".json")
        command = [self.python, "-m", "pipelines.bench.baseline", "--data", str(self.paths.data)]
        command += ["--db", str(db), "--result", str(result)]
        usage = self._measured(name, command)
        detail = json.loads(result.read_text()) if result.exists() else {}
        return _stage(usage, detail=detail)

    def _job(self, name: str, first: date, last: date) -> tuple[Usage, dict]:
        """The run as an operator (or a sensor's launch) starts it: a new Python process
        that loads the settings, the Dagster definitions and the dbt manifest, runs
        ``full_pipeline`` for ``first``..``last`` and publishes. Process start counts."""
        command = [self.python, "-m", "pipelines.cli", "backfill"]
        command += ["--from", f"{first:%Y-%m}", "--to", f"{last:%Y-%m}"]
        usage = self._measured(name, command)
        run = dagster_run.latest_run_steps(self.paths.dagster_home)
        return usage, run

    def _run_stage(self, usage: Usage, run: dict, **extra: object) -> dict:
        return _stage(
            usage,
            run_id=run.get("run_id"),
            status=run.get("status"),
            pipeline_time_s=dagster_run.pipeline_time(run),
            **dagster_run.milestones(run, usage),
            **extra,
            steps=dagster_run.step_table(run, usage),
            dbt_slowest=dagster_run.dbt_node_timings(self.paths.dbt_target, run.get("run_id")),
            dbt_totals_s=dagster_run.dbt_total(self.paths.dbt_target, run.get("run_id")),
        )

    def pipeline(self) -> dict:
        first = parse_month(self.manifest["first_period"])
        last = parse_month(self.manifest["last_period"])
        usage, run = self._job("pipeline", first, last)
        return self._run_stage(usage, run, months=f"{first:%Y-%m}..{last:%Y-%m}")

    def incremental(self) -> dict:
        holdback = self.manifest["holdback"]
        source = self.paths.data / "holdback" / holdback["path"]
        target = self.paths.landing / holdback["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        month = parse_month(holdback["period"])
        usage, run = self._job("incremental", month, month)
        return self._run_stage(usage, run, file=holdback["path"], months=f"{month:%Y-%m}")

    def queries(self) -> dict:
        result = self.paths.run / "queries.json"
        command = [self.python, "-m", "pipelines.bench.queries"]
        command += ["--warehouse", str(self.paths.published_warehouse)]
        command += ["--runs", str(self.query_runs), "--result", str(result)]
        command += ["--org", self.manifest["holdback"]["org_code"]]
        usage = self._measured("queries", command)
        detail = json.loads(result.read_text()) if result.exists() else {}
        return _stage(usage, **detail)

    # -- checks ------------------------------------------------------------------------

    def pipeline_counts(self) -> dict:
        """What the pipeline logged and published, to hold against the generator."""
        counts: dict[str, int | None] = {}
        if not self.paths.working_db.exists():
            return counts
        with duckdb.connect(str(self.paths.working_db), read_only=True) as con:
            row = con.execute(
                """
                select count(*) filter (where status = 'loaded'),
                       count(*) filter (where status = 'rejected'),
                       count(*) filter (where status = 'duplicate'),
                       coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0),
                       coalesce(sum(rows_quarantined), 0)
                from raw.submission_log
                where coalesce(layout, '') not like 'survey%'
                  and coalesce(layout, '') not like 'incidents%'
                """
            ).fetchall()[0]
            keys = ("files_loaded", "files_rejected", "files_duplicate", "rows_read")
            counts |= dict(zip((*keys, "rows_loaded", "rows_quarantined"), row, strict=True))
        counts["fct_measure_monthly_rows"] = self._published_count(
            "select count(*) from fct_measure_monthly"
            f" where measure_code not in ({incident_measures()})"
        )
        # The events the pipeline keeps (no later extract deleted them): every event the
        # generator wrote, since its extracts never overlap (docs/benchmark.md).
        counts["fct_incident_events"] = self._published_count("select count(*) from fct_incident")
        return counts

    def _published_count(self, sql: str) -> int | None:
        """One count from the published internal warehouse; None if it cannot state it (no
        warehouse, no table), which fails the count check."""
        try:
            with duckdb.connect(str(self.paths.published_warehouse), read_only=True) as con:
                row = con.execute(sql).fetchone()
        except duckdb.Error:
            return None
        return None if row is None else int(row[0])

    def rollup_check(self) -> dict:
        """The baseline's roll-up against the published fct_measure_by_sector_monthly: the
        same numbers, or the comparison is meaningless."""
        try:
            with duckdb.connect(str(self.paths.baseline_db()), read_only=True) as con:
                con.execute(f"attach '{self.paths.published_warehouse}' as pub (read_only)")
                ((compared, differing),) = con.execute(
                    f"""
                    select count(*),
                           count(*) filter (where b.numerator is distinct from p.numerator
                                            or b.denominator is distinct from p.denominator)
                    from rollup b
                    full join (
                        select * from pub.fct_measure_by_sector_monthly
                        where measure_code not in ({incident_measures()})
                    ) p using (icb_code, sector_code, measure_code, period)
                    """
                ).fetchall()
        except duckdb.Error as exc:
            return {"matches": False, "error": str(exc).splitlines()[0]}
        return {"matches": differing == 0, "cells_compared": compared, "cells_differing": differing}

    def _checkpoint(self, stages: dict, sides: dict, after: str) -> None:
        """Hold every count known so far against the generator (and every stage's exit and
        run status); the first failure ends the benchmark."""
        self.counts = compare_counts(self.manifest, sides)
        failures = stage_failures(stages) + count_failures(self.counts)
        if "pipeline" in sides and not self.rollup.get("matches"):
            failures.append(
                "roll-up check: the baseline's roll-up and the published "
                "fct_measure_by_sector_monthly differ "
                f"({self.rollup.get('cells_differing', self.rollup.get('error'))})"
            )
        if failures:
            self.failures = [f"after {after}: {reason}" for reason in failures]
            raise BenchmarkFailed("; ".join(self.failures))
        self._results(stages, finished=False)

    # -- the run -----------------------------------------------------------------------

    def run(self) -> dict:
        """Every stage in order, checking counts as soon as they are known. Returns (and
        writes) the results; ``results["failures"]`` is empty only for a sound run, and
        only a sound run carries ratios and target verdicts."""
        if self.paths.run.exists():
            shutil.rmtree(self.paths.run)
        self.paths.logs.mkdir(parents=True)
        (self.paths.run / "survey_landing").mkdir()
        (self.paths.run / "kh03_landing").mkdir()
        self.loads: dict[str, dict] = {}
        self.counts = {}
        self.rollup: dict = {}
        self.failures = []
        stages: dict[str, dict] = {}
        sides: dict[str, dict] = {}
        self.started = datetime.now(UTC)
        stages["generate"] = self.generate()
        self.linked = _link_tree(self.paths.data / "landing", self.paths.landing)
        self.paths.incident_landing.mkdir()
        self.incidents_linked = _link_tree(
            self.paths.data / "incident_landing", self.paths.incident_landing
        )
        try:
            # (a) first: data that does not match its manifest fails before any setup.
            stages["baseline_before"] = self.baseline("baseline_before")
            sides["baseline_before"] = stages["baseline_before"].get("detail", {})
            self._checkpoint(stages, sides, "(a) before")
            stages["prepare"] = self.prepare()
            self._checkpoint(stages, sides, "prepare")
            stages["pipeline"] = self.pipeline()
            sides["pipeline"] = self.pipeline_counts()
            self.rollup = self.rollup_check()
            self._checkpoint(stages, sides, "(b)")
            stages["baseline_after"] = self.baseline("baseline_after")
            sides["baseline_after"] = stages["baseline_after"].get("detail", {})
            self._checkpoint(stages, sides, "(a) after")
            stages["incremental"] = self.incremental()
            sides["after_new_file"] = self.pipeline_counts()
            self._checkpoint(stages, sides, "(c)")
            stages["queries"] = self.queries()
            self._checkpoint(stages, sides, "(d)")
        except BenchmarkFailed as failed:
            self.log(f"[bench] FAILED {failed}")
        return self._results(stages, finished=True)

    def _results(self, stages: dict, *, finished: bool) -> dict:
        """The results so far, written at once: a run stopped part way (a SCALE=5 run is hours
        long) leaves every stage it finished, with ``finished`` false."""
        for name, load in self.loads.items():
            if name in stages:
                stages[name]["loadavg"] = load
        sound = not self.failures
        results = {
            "benchmark": "safety-observatory national (docs/design.md §10)",
            "scale": self.scale,
            "started_at": self.started.isoformat(),
            "finished": finished,
            "options": {"board_report_pdfs": self.board_report_pdfs},
            "finished_at": datetime.now(UTC).isoformat() if finished else None,
            "machine": machine(),
            "data": {
                k: self.manifest[k]
                for k in (
                    "seed",
                    "first_period",
                    "last_period",
                    "months",
                    "months_requested",
                    "organisations",
                    "files",
                    "files_by_kind",
                    "rows",
                    "bytes",
                    "rows_quarantined",
                    "fct_measure_monthly_rows",
                    "fct_measure_monthly_rows_with_holdback",
                    "holdback",
                    "incident_first_period",
                    *INCIDENT_COUNTS,
                )
            },
            "files_linked_into_landing": self.linked,
            "incident_files_linked": self.incidents_linked,
            "stages": stages,
            "failures": self.failures,
            "ratios": ratios(stages) if sound else None,
            "counts": self.counts,
            "rollup_check": self.rollup,
            "paths": {
                "data": str(self.paths.data),
                "run": str(self.paths.run),
                "logs": str(self.paths.logs),
                "published": str(self.paths.published_warehouse),
            },
        }
        results["targets"] = targets(results) if sound else None
        report.write(results, self.paths.root)
        return results


def incident_measures() -> str:
    """The catalogue's measures derived from incident records, as a SQL list: the returns'
    counts and the baseline's roll-up are of the measure returns, so the pipeline's incident
    measures (from the national incident extracts) are left out of both comparisons."""
    with CATALOGUE_CSV.open(newline="", encoding="utf-8") as handle:
        rows = csv.DictReader(handle)
        codes = [row["measure_code"] for row in rows if row["source"] == "incidents"]
    return ", ".join(f"'{code}'" for code in codes) or "''"


def stage_failures(stages: dict) -> list[str]:
    """Stages that exited non-zero, and pipeline runs that did not succeed."""
    failures = []
    for name, stage in stages.items():
        if stage.get("returncode"):
            failures.append(f"stage {name} exited {stage['returncode']}")
        elif "status" in stage and stage["status"] != "SUCCESS":
            failures.append(f"stage {name}: Dagster run {stage['status']}")
    return failures


def _mean(stages: dict, figure: str) -> float:
    """Over the runs of (a) measured so far (both, once the run is past (b))."""
    return statistics.fmean(stages[name][figure] for name in BASELINES if name in stages)


def _ratio(value: float, base: float) -> float | None:
    return round(value / base, 3) if base else None


def published(stage: dict) -> dict:
    """(b)'s or (c)'s figures until its data was published: the ``data_published``
    milestone (process start to the end of ``published_snapshot``; the board-report PDFs
    follow after the swap), or the whole process where the run has no such step."""
    return stage.get("data_published") or {"wall_s": stage["wall_s"], "cpu_s": stage["cpu_s"]}


def ratios(stages: dict) -> dict:
    """(b) / (a) and (c) / (a), by wall and by CPU time, until the data was published
    (:func:`published`); the same with the PDFs (the whole process) as ``*_with_pdfs``.
    (a) is the mean of its two runs (before and after (b)); the ratio against each run is
    kept too, so a noisy machine shows as a spread. A stage not measured (a run stopped part
    way) has no ratio; with no run of (a) there is none at all."""
    if not any(name in stages for name in BASELINES):
        return {}
    base = {figure: _mean(stages, figure) for figure in ("wall_s", "cpu_s")}
    result: dict[str, dict] = {
        "baseline_mean": {k: round(v, 3) for k, v in base.items()},
    }
    for key, stage in (
        ("pipeline_to_baseline", "pipeline"),
        ("new_file_to_baseline", "incremental"),
    ):
        if stage not in stages:
            continue
        figures = published(stages[stage])
        result[key] = {
            "wall": _ratio(figures["wall_s"], base["wall_s"]),
            "cpu": _ratio(figures["cpu_s"], base["cpu_s"]),
            "wall_with_pdfs": _ratio(stages[stage]["wall_s"], base["wall_s"]),
            "cpu_with_pdfs": _ratio(stages[stage]["cpu_s"], base["cpu_s"]),
            "wall_by_baseline_run": {
                name: _ratio(figures["wall_s"], stages[name]["wall_s"])
                for name in BASELINES
                if name in stages
            },
            "cpu_by_baseline_run": {
                name: _ratio(figures["cpu_s"], stages[name]["cpu_s"])
                for name in BASELINES
                if name in stages
            },
        }
    return result


# Each count the generator states, and where each side of the benchmark states it:
# (count, the manifest's key or a fixed expected value, side, the side's key).
# What the baseline counts of the incident extracts, as the generator's manifest names them:
# files, rows (one per patient of an event revision), events (latest revision per
# reference) and organisation-months with events. The pipeline's events are the ones its
# fct_incident keeps: an extract the pipeline read as deleting events would show here.
INCIDENT_COUNTS = ("incident_files", "incident_rows", "incident_events", "incident_org_months")
COUNT_CHECKS: tuple[tuple[str, str | int, str, str], ...] = (
    ("files", "files", "baseline_before", "files_loaded"),
    ("rows", "rows", "baseline_before", "rows_loaded"),
    ("files", "files", "pipeline", "files_loaded"),
    ("rows", "rows", "pipeline", "rows_read"),
    ("rows_quarantined", "rows_quarantined", "pipeline", "rows_quarantined"),
    (
        "fct_measure_monthly_rows",
        "fct_measure_monthly_rows",
        "pipeline",
        "fct_measure_monthly_rows",
    ),
    ("files_rejected", 0, "pipeline", "files_rejected"),
    ("files", "files", "baseline_after", "files_loaded"),
    ("rows", "rows", "baseline_after", "rows_loaded"),
    *((name, name, side, name) for side in BASELINES for name in INCIDENT_COUNTS),
    ("incident_events", "incident_events", "pipeline", "fct_incident_events"),
    (
        "fct_measure_monthly_rows_after_new_file",
        "fct_measure_monthly_rows_with_holdback",
        "after_new_file",
        "fct_measure_monthly_rows",
    ),
)


def compare_counts(manifest: dict, sides: dict[str, dict]) -> dict:
    """Generator vs every side measured so far (``sides``: side name -> its counts), for
    every count both can state. A side that ran but cannot state a count (a missing
    table, a result file not written) does not match."""
    counts: dict[str, dict] = {}
    for name, expected, side, key in COUNT_CHECKS:
        if side not in sides:
            continue
        generator = manifest[expected] if isinstance(expected, str) else expected
        item = counts.setdefault(name, {"generator": generator, "match": True})
        column = "pipeline" if side == "after_new_file" else side
        item[column] = sides[side].get(key)
        item["match"] = item["match"] and item[column] == generator
    return counts


def count_failures(counts: dict) -> list[str]:
    return [
        f"count {name}: generator {item['generator']}, "
        + ", ".join(f"{k} {v}" for k, v in item.items() if k not in ("generator", "match"))
        for name, item in counts.items()
        if not item["match"]
    ]


def _target(
    target: str, measured: float | None, met: bool, stated_at: float | None, scale: float
) -> dict:
    """One target's verdict; ``stated_at``: the scale the target is stated for (None: any)."""
    return {
        "target": target,
        "measured": measured,
        "met": measured is not None and met,
        "stated_at_scale": stated_at,
        "at_stated_scale": stated_at is None or scale == stated_at,
    }


def targets(results: dict) -> dict:
    """docs/design.md §10, each target with what this run measured and whether it was met.
    A target is stated for one scale; at another the verdict shows the trend only."""
    stages, scale, r = results["stages"], results["scale"], results["ratios"] or {}
    queries = stages.get("queries", {}).get("queries", {})
    slowest = max((q["median_ms"] for q in queries.values()), default=None)
    runs = [name for name in ("pipeline", "incremental") if name in stages]
    peak_stage = max(runs, key=lambda s: stages[s]["peak_memory_mib"], default=None)
    peak = stages[peak_stage]["peak_memory_mib"] if peak_stage else None
    unmeasured = {"wall": None, "cpu": None}
    rebuild = r.get("pipeline_to_baseline", unmeasured)
    new_file = r.get("new_file_to_baseline", unmeasured)
    ceiling = f"<= {TARGET_REBUILD_RATIO:g}x (a)"
    return {
        "rebuild_wall_ratio": _target(
            f"(b) full rebuild to data published, wall time {ceiling}",
            rebuild["wall"],
            rebuild["wall"] is not None and rebuild["wall"] <= TARGET_REBUILD_RATIO,
            RATIO_TARGET_SCALE,
            scale,
        ),
        "rebuild_cpu_ratio": _target(
            f"(b) full rebuild to data published, CPU time {ceiling}",
            rebuild["cpu"],
            rebuild["cpu"] is not None and rebuild["cpu"] <= TARGET_REBUILD_RATIO,
            RATIO_TARGET_SCALE,
            scale,
        ),
        "new_file_wall_ratio": _target(
            f"(c) one new file to data published, whole process, wall time "
            f"<= {TARGET_NEW_FILE_RATIO:g}x (a)",
            new_file["wall"],
            new_file["wall"] is not None and new_file["wall"] <= TARGET_NEW_FILE_RATIO,
            RATIO_TARGET_SCALE,
            scale,
        ),
        "peak_memory_mib": {
            **_target(
                f"peak memory of (b) and (c) < {TARGET_PEAK_MIB:,.0f} MiB (6 GB)",
                peak,
                peak is not None and peak < TARGET_PEAK_MIB,
                MEMORY_TARGET_SCALE,
                scale,
            ),
            "stage": peak_stage,
        },
        "analyst_query_ms": _target(
            f"(d) every analyst query, median < {TARGET_QUERY_MS:g} ms",
            slowest,
            slowest is not None and slowest < TARGET_QUERY_MS,
            None,
            scale,
        ),
    }


def machine() -> dict:
    import polars

    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        mem_kib = 0
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
    }
