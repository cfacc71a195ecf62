"""Command-line entry points behind the Makefile: ``python -m pipelines.cli <command>``."""

from __future__ import annotations

import argparse
import fcntl
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from pipelines.months import parse_month
from pipelines.publish.snapshot import current_manifest
from pipelines.settings import (
    PROJECT_ROOT,
    ConfigurationError,
    Settings,
    config_file,
    load_settings,
    validated_settings,
)
from pipelines.warehouse import claim_build, open_duckdb, working_connection, writer_lock

EXAMPLE_QUERY = """select m.programme_name, f.measure_code, f.period, f.numerator, f.denominator,
       round(f.value, 2) as value, m.unit
from fct_measure_by_programme_monthly f join dim_measure m using (measure_code)
order by f.period desc, f.measure_code limit 5"""


def dagster_home(settings: Settings | None = None) -> Path:
    """The deployment's Dagster instance (run history, sensor cursors) under its var folder,
    created on first use."""
    home = (settings or load_settings()).dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    template = PROJECT_ROOT / "config" / "dagster.yaml"
    if not config.exists() or config.read_bytes() != template.read_bytes():
        shutil.copyfile(template, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def dbt_project_args(settings: Settings) -> list[str]:
    """Where the dbt project, profile and target are, and this deployment's vars: what
    every dbt command started here needs, from whatever folder."""
    return [
        "--project-dir",
        str(settings.dbt_project_dir),
        "--profiles-dir",
        str(settings.dbt_project_dir),
        "--target-path",
        str(settings.dbt_target_dir),
        "--vars",
        json.dumps(settings.dbt_vars()),
    ]


def prepare(settings: Settings) -> None:
    """Parse the dbt project into its manifest, ahead of any Dagster load.

    With the vars and the profile (the working file's path) that the runs use: dbt keeps
    the parse (``partial_parse.msgpack``) only while both are unchanged, so every dbt step
    of a run starts from it instead of parsing the project again."""
    dbt = Path(sys.executable).parent / "dbt"
    subprocess.run(
        [str(dbt), "parse", "--quiet", *dbt_project_args(settings)],
        check=True,
        env={**os.environ, **settings.dbt_env()},
    )
    dagster_home(settings)


def run_job(
    job: str,
    first: date,
    last: date,
    *,
    settings: Settings,
    allow_shrink: bool = False,
    confirm_register: bool = False,
) -> int:
    """Run ``job`` over the reporting months ``first``..``last`` in one run, recorded in the
    deployment's Dagster instance (visible in `make ui`). The console gets one line per
    step; the full log goes to ``<var_dir>/logs/<run id>.log``."""
    from pipelines.defs.partitions import ALLOW_SHRINK_TAG, CONFIRM_REGISTER_TAG, range_tags
    from pipelines.defs.run_logging import cli_run_config

    dagster_home(settings)
    tags = range_tags(first, last)
    if allow_shrink:
        tags[ALLOW_SHRINK_TAG] = "true"
    if confirm_register:
        tags[CONFIRM_REGISTER_TAG] = "true"
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    run_config = settings.log_dir / "cli_run_config.json"  # JSON is valid YAML
    run_config.write_text(json.dumps(cli_run_config(settings.log_dir)))
    dagster = Path(sys.executable).parent / "dagster"
    cmd = [str(dagster), "job", "execute", "-m", "pipelines.definitions", "-j", job]
    cmd += ["--tags", json.dumps(tags), "--config", str(run_config)]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stdout_log = settings.log_dir / f"cli-{stamp}.stdout.log"
    print(f"Running {job} for {first:%Y-%m}..{last:%Y-%m}; full logs in {settings.log_dir}/")
    sys.stdout.flush()
    # Dagster's DEBUG events and dbt's own output go to the log; the step lines to stderr.
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with stdout_log.open("w") as out:
        return subprocess.run(cmd, cwd=PROJECT_ROOT, stdout=out, env=env).returncode


def run_dbt_by_hand(settings: Settings, dbt_args: list[str]) -> int:
    """``dbt <args>`` against the configured working file with the configured vars, from
    any folder (for docs, a one-off test, a debug session). Takes the writer lock."""
    env = {**os.environ, **settings.dbt_env()}
    dbt = Path(sys.executable).parent / "dbt"
    args = list(dbt_args)
    if args and args[0] not in ("deps", "clean", "debug", "--version"):
        args += dbt_project_args(settings)
    with writer_lock(settings.working_db):
        # Whatever dbt changes here was audited by no run: the next publish refuses
        # until a full run has rebuilt and checked the warehouse.
        with working_connection(settings.working_db) as con:
            claim_build(con, f"dbt by hand (pid {os.getpid()})")
        return subprocess.run([str(dbt), *args], env=env).returncode


def run_ui(settings: Settings, *, port: int | None = None, grace_s: float = 6.0) -> int:
    """``dagster dev`` for this deployment, stopped whole within seconds on Ctrl-C, SIGTERM
    or SIGHUP.

    Not exec'd, because that hung: a terminal's Ctrl-C reaches every process of the
    foreground group at once, so the code server died before ``dagster dev`` began its own
    shutdown, was restarted by it, and the new one lingered until its 45 s heartbeat ran
    out; and ``dagster dev`` waits up to 60 s for a daemon busy with a sensor tick. Here
    ``dagster dev`` runs in a session of its own: the first signal becomes one SIGINT to it
    (its orderly shutdown), and whatever of that session is alive ``grace_s`` later (a
    webserver, daemon, code server or run in progress) is killed; a second signal kills at
    once. A run killed this way leaves the last publication whole, like any failed run.
    """
    import contextlib
    import signal
    import time

    dagster_home(settings)
    clear_dead_runs(settings)
    dagster = Path(sys.executable).parent / "dagster"
    port_args = ["--port", str(port)] if port else []
    received: list[int] = []
    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {
        sig: signal.signal(sig, lambda signum, _frame: received.append(signum)) for sig in stops
    }
    dev = None
    try:
        dev = subprocess.Popen(
            [str(dagster), "dev", "-w", "workspace.yaml", *port_args],
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline: float | None = None
        while True:
            try:
                dev.wait(timeout=0.2)
                break  # dagster dev finished (its shutdown, or it failed on its own)
            except subprocess.TimeoutExpired:
                pass
            if received and deadline is None:
                print("Stopping Dagster (again to kill at once)...", file=sys.stderr, flush=True)
                dev.send_signal(signal.SIGINT)
                deadline = time.monotonic() + grace_s
            if deadline is not None and (len(received) > 1 or time.monotonic() > deadline):
                break
    finally:
        if dev is not None:
            # The session's group: dagster dev and everything it started, if still there.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if received else dev.returncode


def clear_dead_runs(settings: Settings) -> None:
    """Before launching: a run that died (``kill -9``, out of memory, a lost machine) is
    still ``STARTED`` in the instance and holds the writer slot, so this run would wait for
    it forever. Mark each such run failed, free its slot, and log it as a refused
    publication, saying so on the console (:mod:`pipelines.run_health`)."""
    import dagster as dg

    from pipelines.run_health import fail_dead_runs

    def record_refusal(instance: dg.DagsterInstance, run_id: str, reasons: list[str]) -> None:
        from pipelines.defs.publish import log_refused_run

        log_refused_run(instance, run_id, reasons)

    home = dagster_home(settings)
    # Two commands started together would both create the instance's SQLite storage on
    # first use and race on its schema: one at a time here, so the runs find it made.
    with open(home / ".instance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with dg.DagsterInstance.get() as instance:
            for run in fail_dead_runs(instance, record_refusal=record_refusal):
                print(f"Cleared a run that died: {run.reason}.")


def ensure_incident_sample(settings: Settings) -> None:
    """The sample's incident extracts are generated, not committed (about 35 MB): write them
    when the configured incident landing folder is the sample's and is missing."""
    sample = PROJECT_ROOT / "data_samples" / "incidents"
    extracts = settings.incident_landing_dir == sample / "landing" and not (
        sample.joinpath("landing").exists()
    )
    kh03 = settings.kh03_landing_dir == sample / "kh03" and not sample.joinpath("kh03").exists()
    if not (extracts or kh03):
        return
    spec = importlib.util.spec_from_file_location(
        "generate_incidents", sample / "generate_incidents.py"
    )
    if spec is None or spec.loader is None:
        raise FileNotFoundError(sample / "generate_incidents.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    if extracts:
        print("Writing the sample's incident extracts (data_samples/incidents/landing) ...")
        module.generate(sample)
    if kh03:
        print("Writing the sample's KH03 bed occupancy files (data_samples/incidents/kh03) ...")
        module.generate_kh03(sample)


def record_latest_failure() -> None:
    """Runs started here have no daemon to run the failure sensor: log the refusal now."""
    import dagster as dg

    from pipelines.defs.publish import log_refused_run

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(limit=1)
        if runs and runs[0].status == dg.DagsterRunStatus.FAILURE:
            log_refused_run(instance, runs[0].run_id)


def fact_rows_by_source(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """``fct_measure_monthly``'s rows by where their measure comes from (the catalogue's
    ``source``: ``returns``, or ``incidents`` for the measures derived from incident records),
    so the demo's last lines can set the returned rows against the sample's manifest."""
    return dict(
        con.execute(
            "select coalesce(m.source, 'returns'), count(*) from fct_measure_monthly as f"
            " left join dim_measure as m using (measure_code) group by 1"
        ).fetchall()
    )


def facts_line(by_source: dict[str, int], expected_returns: int | None) -> str:
    """``13478 rows (11946 from returns + 1532 derived from incident records; the sample
    generator wrote 11946)``: what the demo's summary says of fct_measure_monthly."""
    returned = by_source.get("returns", 0)
    parts = [f"{returned} from returns"]
    parts += [
        f"{n} derived from incident records" if source == "incidents" else f"{n} from {source}"
        for source, n in sorted(by_source.items())
        if source != "returns"
    ]
    wrote = f"; the sample generator wrote {expected_returns}" if expected_returns else ""
    return f"{sum(by_source.values())} rows ({' + '.join(parts)}{wrote})"


def summary(settings: Settings) -> str:
    """Where the results are, what they hold, and one query to try."""
    manifest = current_manifest(settings.published_dir)
    if manifest is None:
        return f"Nothing is published yet under {settings.published_dir}."
    current = settings.published_current
    warehouse = current / "warehouse.duckdb"
    con = open_duckdb(warehouse, read_only=True)
    try:
        facts = fact_rows_by_source(con)
        example = con.sql(EXAMPLE_QUERY)
        example_text = str(example)
    finally:
        con.close()
    with working_connection(settings.working_db, read_only=True) as working:
        log = working.execute(
            "select status, count(*) from raw.submission_log group by 1 order by 1"
        ).fetchall()
        quarantined = working.execute("select count(*) from raw.quarantine").fetchone()[0]
    expected = None
    sample_manifest = PROJECT_ROOT / "data_samples" / "SAMPLE_MANIFEST.json"
    if (
        sample_manifest.exists()
        and settings.landing_dir == PROJECT_ROOT / "data_samples" / "landing"
    ):
        expected = json.loads(sample_manifest.read_text())["fct_measure_monthly_rows"]
    lines = [
        "",
        "Safety Observatory: published",
        f"  deployment          {settings.profile}: {settings.region_name} "
        f"({', '.join(settings.region_icbs)})",
        f"  snapshot            {manifest['snapshot_id']} (run {manifest['run_id']})",
        f"  warehouse (DuckDB)  {warehouse}",
        f"  Parquet exports     {current / 'parquet'}",
        f"  manifest            {current / 'manifest.json'}",
        f"  dashboard           {current / 'site' / 'index.html'} (internal)",
        f"                      {current / 'public' / 'site' / 'index.html'} (public)",
        f"  board reports       {current / 'reports' / 'index.html'} (internal, HTML + PDF)",
        f"                      {current / 'public' / 'reports' / 'index.html'} (public)",
        f"  public tier         {current / 'public'} (suppressed and rounded)",
        f"  quality report      {current / 'data_docs' / 'summary.html'}",
        f"  fct_measure_monthly {facts_line(facts, expected)}",
        f"  submissions         {', '.join(f'{n} {s}' for s, n in log)}; "
        f"{quarantined} rows in quarantine (working file, raw.quarantine)",
        "",
        "Try a query (read-only; the pipeline never writes this file):",
        f"  .venv/bin/python -c \"import duckdb; print(duckdb.connect('{warehouse}', "
        "read_only=True).sql('select * from fct_measure_by_programme_monthly limit 5'))\"",
        "",
        example_text,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare", help="parse the dbt manifest and set up DAGSTER_HOME")
    sub.add_parser("check-config", help="validate the configuration and print it")
    demo = sub.add_parser("demo", help="run the full pipeline on the configured landing folder")
    sub.add_parser("summary", help="print where the published results are")
    ui = sub.add_parser("ui", help="the Dagster UI and daemon for this deployment")
    ui.add_argument("--port", type=int, default=None, help="webserver port (default 3000)")
    dbt = sub.add_parser("dbt", help="run dbt by hand with this deployment's vars")
    dbt.add_argument("dbt_args", nargs=argparse.REMAINDER)
    backfill = sub.add_parser("backfill", help="rebuild and republish a range of months")
    backfill.add_argument("--from", dest="first", required=True, type=parse_month, help="YYYY-MM")
    backfill.add_argument("--to", dest="last", required=True, type=parse_month, help="YYYY-MM")
    for runner in (demo, backfill):
        runner.add_argument(
            "--allow-shrink",
            action="store_true",
            help="publish even if facts fall sharply or an organisation disappears "
            "(recorded in the publication log)",
        )
        runner.add_argument(
            "--confirm-register",
            action="store_true",
            help="accept a new organisation register that is older than the one in place "
            "or drops or moves more than max_register_change_share of its organisations "
            "(recorded in raw.register_log)",
        )
    args = parser.parse_args(argv)
    try:
        settings = validated_settings() if args.command != "summary" else load_settings()
    except ConfigurationError as error:
        for problem in error.problems:
            print(f"configuration error: {problem}", file=sys.stderr)
        return 2
    if args.command == "prepare":
        prepare(settings)
        return 0
    if args.command == "check-config":
        print(f"configuration {config_file()}")
        for name, value in settings.model_dump().items():
            print(f"  {name:32} {value}")
        return 0
    if args.command == "dbt":
        return run_dbt_by_hand(settings, args.dbt_args)
    if args.command == "ui":
        return run_ui(settings, port=args.port)
    if args.command in ("demo", "backfill"):
        first, last = (
            (args.first, args.last)
            if args.command == "backfill"
            else (settings.catalogue_start, date.today().replace(day=1))
        )
        if first > last:
            parser.error(f"--from {first:%Y-%m} is after --to {last:%Y-%m}")
        clear_dead_runs(settings)
        ensure_incident_sample(settings)
        code = run_job(
            "full_pipeline",
            first,
            last,
            settings=settings,
            allow_shrink=args.allow_shrink,
            confirm_register=args.confirm_register,
        )
        if code != 0:
            record_latest_failure()
            print("The pipeline run failed; the last good publication (if any) is unchanged.")
            return code
    print(summary(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
