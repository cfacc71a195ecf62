"""The benchmark, stage by stage, in one run (docs/design.md §10).

Stages, each in its own child process so CPU and peak memory are the stage's own:

* ``generate``     national data for the scale (reused when the folder already holds it)
* ``prepare``      ``dbt parse`` into the run's own target folder (what ``make prepare`` does)
* ``baseline``     (a) plain DuckDB loads the same files and computes the same roll-up
* ``pipeline``     (b) the ``full_pipeline`` Dagster job over every month, end to end, on a
                   fresh working file; per-step figures from the run's event log
* ``incremental``  (c) one trust's return for the latest month lands on that warehouse and
                   the job runs for that month only, until it is published
* ``queries``      (d) analyst queries on the published file, median of N runs each

Layout under ``<out>/scale-<scale>/``: ``data/`` (generator output, kept between runs),
``run/`` (landing, working file, publications, Dagster home, dbt target, logs; recreated
each run) and the results, ``bench_results.json`` and ``bench_results.md``.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from pipelines.bench import dagster_run, report
from pipelines.bench.measure import Usage, run_measured
from pipelines.settings import ALL_ENGLAND, PROJECT_ROOT

STAGES = ("generate", "prepare", "baseline", "pipeline", "incremental", "queries")
GENERATOR = PROJECT_ROOT / "data_samples" / "national.py"
# docs/design.md §10, as numbers.
TARGET_RATIO = 4.0
TARGET_PEAK_MIB = 6 * 1024
TARGET_NEW_FILE_S = 15.0
TARGET_QUERY_MS = 100.0


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

    @property
    def baseline_db(self) -> Path:
        return self.run / "baseline" / "baseline.duckdb"


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


def _month(text: str) -> date:
    year, month = text.split("-")[:2]
    return date(int(year), int(month), 1)


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
        self.env = pipeline_env(self.paths)

    # -- stages ------------------------------------------------------------------------

    def _measured(self, name: str, command: list[str], **kwargs: object) -> Usage:
        self.log(f"[bench] {name}: {' '.join(command[:6])}{' ...' if len(command) > 6 else ''}")
        load_before = os.getloadavg()[0]
        usage = run_measured(
            command, env=self.env, cwd=PROJECT_ROOT, log=self.paths.logs / f"{name}.log"
        )
        self.loads[name] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
        self.log(
            f"[bench] {name}: {usage.wall_s:.1f} s wall, {usage.cpu_s:.1f} s CPU, "
            f"{usage.peak_memory_mib:.0f} MiB peak, exit {usage.returncode}"
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
            if all(manifest.get(k) == v for k, v in wanted.items()):
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
        usage = self._measured("prepare", [self.python, "-m", "pipelines.cli", "prepare"])
        if usage.returncode != 0:
            raise RuntimeError(f"dbt parse failed; see {self.paths.logs / 'prepare.log'}")
        return _stage(usage)

    def baseline(self) -> dict:
        result = self.paths.baseline_db.with_suffix(".json")
        command = [self.python, "-m", "pipelines.bench.baseline", "--data", str(self.paths.data)]
        command += ["--db", str(self.paths.baseline_db), "--result", str(result)]
        usage = self._measured("baseline", command)
        detail = json.loads(result.read_text()) if result.exists() else {}
        return _stage(usage, detail=detail)

    def _job(self, name: str, first: date, last: date) -> tuple[Usage, dict]:
        from pipelines.defs.partitions import range_tags

        command = [self.dagster, "job", "execute", "-m", "pipelines.definitions"]
        command += ["-j", "full_pipeline", "--tags", json.dumps(range_tags(first, last))]
        usage = self._measured(name, command)
        run = dagster_run.latest_run_steps(self.paths.dagster_home)
        return usage, run

    def pipeline(self) -> dict:
        first = _month(self.manifest["first_period"])
        last = _month(self.manifest["last_period"])
        usage, run = self._job("pipeline", first, last)
        return _stage(
            usage,
            run_id=run.get("run_id"),
            status=run.get("status"),
            pipeline_time_s=dagster_run.pipeline_time(run),
            months=f"{first:%Y-%m}..{last:%Y-%m}",
            steps=dagster_run.step_table(run, usage),
            dbt_slowest=dagster_run.dbt_node_timings(self.paths.dbt_target, run.get("run_id")),
            dbt_totals_s=dagster_run.dbt_total(self.paths.dbt_target, run.get("run_id")),
        )

    def incremental(self) -> dict:
        holdback = self.manifest["holdback"]
        source = self.paths.data / "holdback" / holdback["path"]
        target = self.paths.landing / holdback["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        month = _month(holdback["period"])
        usage, run = self._job("incremental", month, month)
        return _stage(
            usage,
            run_id=run.get("run_id"),
            status=run.get("status"),
            pipeline_time_s=dagster_run.pipeline_time(run),
            file=holdback["path"],
            months=f"{month:%Y-%m}",
            steps=dagster_run.step_table(run, usage),
            dbt_slowest=dagster_run.dbt_node_timings(self.paths.dbt_target, run.get("run_id")),
            dbt_totals_s=dagster_run.dbt_total(self.paths.dbt_target, run.get("run_id")),
        )

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
        with duckdb.connect(str(self.paths.working_db), read_only=True) as con:
            row = con.execute(
                """
                select count(*) filter (where status = 'loaded'),
                       count(*) filter (where status = 'rejected'),
                       count(*) filter (where status = 'duplicate'),
                       coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0),
                       coalesce(sum(rows_quarantined), 0)
                from raw.submission_log where coalesce(layout, '') not like 'survey%'
                """
            ).fetchone()
            keys = ("files_loaded", "files_rejected", "files_duplicate", "rows_read")
            counts |= dict(zip((*keys, "rows_loaded", "rows_quarantined"), row, strict=True))
        try:
            with duckdb.connect(str(self.paths.published_warehouse), read_only=True) as con:
                counts["fct_measure_monthly_rows"] = con.execute(
                    "select count(*) from fct_measure_monthly"
                ).fetchone()[0]
        except duckdb.Error:
            counts["fct_measure_monthly_rows"] = None
        return counts

    def rollup_check(self) -> dict:
        """The baseline's roll-up against the published fct_measure_by_sector_monthly: the
        same numbers, or the comparison is meaningless."""
        try:
            with duckdb.connect(str(self.paths.baseline_db), read_only=True) as con:
                con.execute(f"attach '{self.paths.published_warehouse}' as pub (read_only)")
                compared, differing = con.execute(
                    """
                    select count(*),
                           count(*) filter (where b.numerator is distinct from p.numerator
                                            or b.denominator is distinct from p.denominator)
                    from rollup b
                    full join pub.fct_measure_by_sector_monthly p
                        using (icb_code, sector_code, measure_code, period)
                    """
                ).fetchone()
        except duckdb.Error as exc:
            return {"matches": False, "error": str(exc).splitlines()[0]}
        return {"matches": differing == 0, "cells_compared": compared, "cells_differing": differing}

    # -- the run -----------------------------------------------------------------------

    def run(self) -> dict:
        if self.paths.run.exists():
            shutil.rmtree(self.paths.run)
        self.paths.logs.mkdir(parents=True)
        (self.paths.run / "survey_landing").mkdir()
        self.loads: dict[str, dict] = {}
        stages: dict[str, dict] = {}
        started = datetime.now(UTC)
        stages["generate"] = self.generate()
        linked = _link_tree(self.paths.data / "landing", self.paths.landing)
        stages["prepare"] = self.prepare()
        stages["baseline"] = self.baseline()
        stages["pipeline"] = self.pipeline()
        counts_after_b = self.pipeline_counts() if self.paths.working_db.exists() else {}
        rollup = self.rollup_check()
        stages["incremental"] = self.incremental()
        counts_after_c = self.pipeline_counts() if self.paths.working_db.exists() else {}
        stages["queries"] = self.queries()
        for name, load in self.loads.items():
            stages[name]["loadavg_1m"] = load
        results = {
            "benchmark": "safety-observatory national (docs/design.md §10)",
            "scale": self.scale,
            "started_at": started.isoformat(),
            "finished_at": datetime.now(UTC).isoformat(),
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
                )
            },
            "files_linked_into_landing": linked,
            "stages": stages,
            "ratio_pipeline_to_baseline": ratio(stages["pipeline"], stages["baseline"]),
            "counts": compare_counts(self.manifest, stages, counts_after_b, counts_after_c),
            "rollup_check": rollup,
            "paths": {
                "data": str(self.paths.data),
                "run": str(self.paths.run),
                "logs": str(self.paths.logs),
                "published": str(self.paths.published_warehouse),
            },
        }
        results["targets"] = targets(results)
        report.write(results, self.paths.root)
        return results


def ratio(pipeline: dict, baseline: dict) -> float | None:
    if not baseline.get("wall_s"):
        return None
    return round(pipeline["wall_s"] / baseline["wall_s"], 2)


def compare_counts(manifest: dict, stages: dict, after_b: dict, after_c: dict) -> dict:
    """Generator vs pipeline vs baseline, for every count both sides can state."""
    baseline = stages["baseline"].get("detail", {})

    def item(generator: object, **others: object) -> dict:
        values = [v for v in others.values() if v is not None]
        return {
            "generator": generator,
            **others,
            "match": bool(values) and all(v == generator for v in values),
        }

    return {
        "files": item(
            manifest["files"],
            pipeline=after_b.get("files_loaded"),
            baseline=baseline.get("files_loaded"),
        ),
        "rows": item(
            manifest["rows"],
            pipeline=after_b.get("rows_read"),
            baseline=baseline.get("rows_loaded"),
        ),
        "rows_quarantined": item(
            manifest["rows_quarantined"], pipeline=after_b.get("rows_quarantined")
        ),
        "fct_measure_monthly_rows": item(
            manifest["fct_measure_monthly_rows"], pipeline=after_b.get("fct_measure_monthly_rows")
        ),
        "fct_measure_monthly_rows_after_new_file": item(
            manifest["fct_measure_monthly_rows_with_holdback"],
            pipeline=after_c.get("fct_measure_monthly_rows"),
        ),
        "files_rejected": item(0, pipeline=after_b.get("files_rejected")),
    }


def targets(results: dict) -> dict:
    """docs/design.md §10, each target with what this run measured and whether it was met. Only a
    run at scale 1.0 measures the targets as stated; smaller scales show the trend."""
    stages = results["stages"]
    queries = stages["queries"].get("queries", {})
    slowest = max((q["median_ms"] for q in queries.values()), default=None)
    new_file = stages["incremental"].get("pipeline_time_s")
    peak = max(stages[s]["peak_memory_mib"] for s in ("pipeline", "incremental"))
    ratio_value = results["ratio_pipeline_to_baseline"]
    return {
        "full_rebuild_ratio": {
            "target": f"<= {TARGET_RATIO:g}x plain DuckDB",
            "measured": ratio_value,
            "met": ratio_value is not None and ratio_value <= TARGET_RATIO,
        },
        "peak_memory_mib": {
            "target": f"< {TARGET_PEAK_MIB} MiB (6 GiB)",
            "measured": peak,
            "met": peak < TARGET_PEAK_MIB,
        },
        "new_file_published_s": {
            "target": f"< {TARGET_NEW_FILE_S:g} s pipeline time (RUN_START to RUN_SUCCESS)",
            "measured": new_file,
            "wall_with_process_start_s": stages["incremental"]["wall_s"],
            "met": new_file is not None and new_file < TARGET_NEW_FILE_S,
        },
        "analyst_query_ms": {
            "target": f"< {TARGET_QUERY_MS:g} ms median, every query",
            "measured": slowest,
            "met": slowest is not None and slowest < TARGET_QUERY_MS,
        },
        "measured_at_national_scale": results["scale"] >= 1.0,
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
