"""Profile the ingest step on benchmark data, outside Dagster, with cProfile.

Why: the benchmark says *which* step is slow; this says *why*, function by function. It
loads the generated register into a fresh working file, then runs
:func:`pipelines.ingest.measure_returns.ingest_landing` over the generated landing folder
(read in place: ingest itself never moves files, only the Dagster asset archives them) and
writes:

* ``ingest.prof``           the raw profile (``python -m pstats``, snakeviz, ...)
* ``ingest_profile.txt``    top functions by cumulative and by own time
* ``ingest_phases.json``    seconds per phase of ingest (read, contract, type/join, rules,
                            write: supersession update, insert, log) and per file

``--new-file`` then profiles the benchmark's stage (c) inside ingest: the holdback file
landing on the warehouse just built.

Run: ``python -m pipelines.bench.profile_ingest --scale 0.05 [--out var/bench]`` (the data
must exist: run the benchmark, or data_samples/national.py, at that scale first).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import time
from pathlib import Path

import duckdb

from pipelines.settings import ALL_ENGLAND

# Functions whose cumulative time makes up ingest, by phase. (module suffix, function name)
PHASES = {
    "organisation_lookup": ("measure_returns.py", "organisation_lookup"),
    "pending_files (scan landing, digests)": ("measure_returns.py", "pending_files"),
    "read_arrival (all reading, per file)": ("measure_returns.py", "_read_arrival"),
    "  read_tables (decode / parse CSV, XLSX sheets and facts)": ("reading.py", "read_tables"),
    "  match_contract (header detection)": ("contracts.py", "match_contract"),
    "  read_below (body to frame)": ("reading.py", "read_below"),
    "  scan_records (records counted apart from the parser)": ("reading.py", "scan_records"),
    "  read_measure_file (incl. joins)": ("measure_returns.py", "read_measure_file"),
    "  sha256": ("files.py", "sha256_of"),
    "type_values (numbers and months, per batch)": ("measure_returns.py", "type_values"),
    "apply_rules (pandera, per batch)": ("rules.py", "apply_rules"),
    "  pandera validate": ("container.py", "validate"),
    "write_arrival (per file transaction)": ("measure_returns.py", "_write_arrival"),
    "  log_submissions (the batch's submission-log insert)": ("intake.py", "log_submissions"),
    "  duckdb statements (see duckdb_statements_s)": ("profile_ingest.py", "execute"),
    "  arrow conversion": ("frame.py", "to_arrow"),
}


class TimedConnection:
    """A DuckDB connection that adds up the time of ``execute`` by kind of statement (the
    first words of the SQL), because cProfile sees every statement as one C call."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        kind = " ".join(sql.split()[:3]).lower()
        t = time.perf_counter()
        try:
            return self._con.execute(sql, *args)
        finally:
            self.seconds[kind] = self.seconds.get(kind, 0.0) + time.perf_counter() - t
            self.calls[kind] = self.calls.get(kind, 0) + 1

    def __getattr__(self, name: str) -> object:
        return getattr(self._con, name)

    def table(self) -> dict[str, dict[str, float]]:
        return {
            kind: {"s": round(sec, 3), "calls": self.calls[kind]}
            for kind, sec in sorted(self.seconds.items(), key=lambda kv: -kv[1])
        }


def _phase_times(stats: pstats.Stats) -> dict[str, float]:
    found: dict[str, float] = {}
    table = stats.stats  # type: ignore[attr-defined]
    for label, (suffix, name) in PHASES.items():
        total = 0.0
        for (filename, _, function), (_, _, _, cumulative, _) in table.items():
            if function == name and (suffix == "~" or filename.endswith(suffix)):
                total = max(total, cumulative)  # recursion-safe: the outermost entry
        found[label] = round(total, 3)
    return found


def _report(profile: cProfile.Profile, folder: Path, name: str, top: int) -> dict[str, float]:
    profile.dump_stats(folder / f"{name}.prof")
    buf = io.StringIO()
    stats = pstats.Stats(profile, stream=buf)
    stats.strip_dirs().sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)
    (folder / f"{name}_profile.txt").write_text(buf.getvalue())
    return _phase_times(pstats.Stats(profile))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="cProfile of ingest on benchmark data")
    parser.add_argument("--scale", type=float, default=0.05)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument(
        "--new-file", action="store_true", help="also profile the holdback file on the result"
    )
    args = parser.parse_args(argv)
    root = args.out.resolve() / f"scale-{args.scale:g}"
    data = root / "data"
    manifest = json.loads((data / "NATIONAL_MANIFEST.json").read_text())
    folder = root / "profile"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    # Settings are read from the environment, as in every pipeline process; the data is
    # national, so the region is all of England (as in run.pipeline_env).
    os.environ.update(
        {
            "SAFETY_OBS_REGION_ICBS": ALL_ENGLAND,
            "SAFETY_OBS_VAR_DIR": str(folder / "var"),
            "SAFETY_OBS_WORKING_DB": str(folder / "working.duckdb"),
            "SAFETY_OBS_LANDING_DIR": str(data / "landing"),
            "SAFETY_OBS_ODS_DIR": str(data / "ods"),
            "SAFETY_OBS_LOCAL_REGISTER": str(data / "local_register.csv"),
        }
    )
    from pipelines.ingest.measure_returns import ingest_landing
    from pipelines.ingest.organisations import load_register
    from pipelines.settings import load_settings
    from pipelines.warehouse import connect

    settings = load_settings()
    con = connect(settings.working_db)
    t = time.perf_counter()
    load_register(con, settings.ods_dir, settings.local_register)
    register_s = time.perf_counter() - t
    timed = TimedConnection(con)
    profile = cProfile.Profile()
    t = time.perf_counter()
    profile.enable()
    outcomes = ingest_landing(timed, settings, run_id="profile")  # type: ignore[arg-type]
    profile.disable()
    ingest_s = time.perf_counter() - t
    phases = _report(profile, folder, "ingest", args.top)
    files = len(outcomes)
    rows = sum(o.rows_read for o in outcomes)
    result: dict = {
        "scale": args.scale,
        "files": files,
        "rows": rows,
        "register_s": round(register_s, 3),
        "ingest_s": round(ingest_s, 3),
        "ms_per_file": round(1000 * ingest_s / max(files, 1), 2),
        "us_per_row": round(1e6 * ingest_s / max(rows, 1), 2),
        "phases_s (cProfile cumulative; profiling inflates Python-heavy parts)": phases,
        "duckdb_statements_s": timed.table(),
        "note": f"{manifest['files']} files, {manifest['rows']} rows generated",
    }
    if args.new_file:
        holdback = data / "holdback" / manifest["holdback"]["path"]
        timed = TimedConnection(con)
        profile = cProfile.Profile()
        t = time.perf_counter()
        profile.enable()
        ingest_landing(
            timed,  # type: ignore[arg-type]
            settings,
            run_id="profile-new",
            files=[(holdback, holdback.name)],
        )
        profile.disable()
        result["new_file_ingest_s"] = round(time.perf_counter() - t, 3)
        result["new_file_duckdb_statements_s"] = timed.table()
        result["new_file_phases_s"] = _report(profile, folder, "new_file", args.top)
    con.close()
    (folder / "ingest_phases.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"profiles: {folder}")


if __name__ == "__main__":
    main()
