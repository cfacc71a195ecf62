"""The dbt project as Dagster assets; dbt tests become asset checks (error severity blocks).

The manifest is prepared ahead of load (`make prepare`: `dbt parse`), never at import.
"""

import json
import os
import shutil
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.check_text import describe_test, with_failing_rows
from pipelines.defs.partitions import reporting_months
from pipelines.defs.resources import WorkingFileRun
from pipelines.settings import load_settings
from pipelines.warehouse import writer_lock

_settings = load_settings()
dbt_project = DbtProject(
    project_dir=_settings.dbt_project_dir,
    profiles_dir=_settings.dbt_project_dir,
    target_path=_settings.dbt_target_dir,
)


def _dbt_executable() -> str:
    """The dbt installed beside this Python, so runs work without the venv on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else (shutil.which("dbt") or "dbt")


class ObservatoryTranslator(DagsterDbtTranslator):
    """Groups assets by warehouse layer (staging, intermediate, marts, reference); gives
    every dbt test's check a description a person can act on (:func:`describe_test`)."""

    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> dg.AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None:
            return None
        test = manifest["nodes"][unique_id]
        return spec._replace(description=describe_test(manifest, test))

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "warehouse"


PERIOD_SELECTOR = "tag:period_partitioned"
# How the run's months reach the period models in dbt (macros/period_range.sql).
PERIOD_ENV = ("SAFETY_OBS_PERIOD_START", "SAFETY_OBS_PERIOD_END")
# Models that read what the Python SPC step (asset marts/spc_points) writes, declared as dbt
# sources mapped to its asset key (models/spc/_spc.yml): fct_spc, pub_spc, their series'
# changes and programme impact, built by their own step after it (docs/programme-impact.md
# section 4).
AFTER_SPC_SELECTOR = "tag:after_spc"
# Both sources (spc_points, spc_series_changes) are written by the one asset
# marts/spc_points, so they share its key.
TRANSLATOR_SETTINGS = DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True)


def _compiled_tests(invocation) -> dict[str, str]:
    """Each test's compiled SQL in this invocation (dbt's run_results.json), by unique id."""
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    except (OSError, ValueError, KeyError):
        return {}
    return {
        r["unique_id"]: r["compiled_code"]
        for r in results
        if r.get("unique_id", "").startswith("test.") and r.get("compiled_code")
    }


def _run_dbt(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    command: str,
    period: tuple[str, str] | None = None,
):
    """``dbt <command>`` with this deployment's settings as vars (the one place dbt gets
    them), and the run's months (``period``) in the environment.

    The vars and the profile stay the same from run to run, so dbt starts from the parse
    ``make prepare`` left (dbt re-parses the whole project when either changes); the months,
    which change with every run, reach the period models' ``period_range()`` macro through
    ``SAFETY_OBS_PERIOD_START`` / ``_END``, which only re-parses the files that use them.
    """
    settings = load_settings()
    env = settings.dbt_env()
    if period is not None:
        env |= {"SAFETY_OBS_PERIOD_START": period[0], "SAFETY_OBS_PERIOD_END": period[1]}
    # The dbt CLI inherits this process's environment; restored afterwards, so one step's
    # months never leak into the next step's dbt.
    saved = {name: os.environ.get(name) for name in PERIOD_ENV}
    os.environ.update(env)
    try:
        dbt_vars = json.dumps(settings.dbt_vars())
        with writer_lock(settings.working_db):
            invocation = dbt.cli([command, "--vars", dbt_vars], context=context)
            # Let dbt finish before its events become Dagster events: dbt writes each event
            # to a pipe and waits while the pipe is full, and Dagster records every event
            # (an event-log write each) as it reads it, so streaming while dbt runs made dbt
            # itself five times slower (the demo's build: 61 s inside the step, 11 s
            # alone). ``is_successful`` reads dbt's output to the end and keeps it;
            # ``stream`` then turns the kept events into materialisations and check
            # results, and raises as before when dbt failed.
            invocation.is_successful()
            compiled = _compiled_tests(invocation)
            for event in invocation.stream():
                # A failed test shows its first failing rows (dbt has finished: the working
                # file is free to read).
                if isinstance(event, dg.AssetCheckResult) and not event.passed:
                    event = with_failing_rows(event, compiled, settings.working_db)
                yield event
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=f"{PERIOD_SELECTOR} {AFTER_SPC_SELECTOR}",
    dagster_dbt_translator=ObservatoryTranslator(settings=TRANSLATOR_SETTINGS),
    pool=DUCKDB_WRITER_POOL,
)
def warehouse_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, working_file_run: WorkingFileRun
):
    """Everything not period-grained: staging views, register, catalogue and dimensions.

    A step of its own rather than part of ``period_models``' invocation: a Dagster asset
    has one partitioning, and a run over n months records n materialisations of every
    asset in a partitioned step. Measured on the demo (93 months): with every model in
    one partitioned step, the step took 69 s, of which dbt itself 7.6 s; the rest was
    Dagster recording about 3,900 materialisations (42 models and seeds x 93 months). A
    second dbt process costs about 10 s.
    """
    yield from _run_dbt(context, dbt, "build")


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=PERIOD_SELECTOR,
    exclude=AFTER_SPC_SELECTOR,
    partitions_def=reporting_months,
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=ObservatoryTranslator(settings=TRANSLATOR_SETTINGS),
    pool=DUCKDB_WRITER_POOL,
)
def period_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, working_file_run: WorkingFileRun
):
    """Monthly facts, roll-ups and completeness, rebuilt incrementally for the run's months
    only (deleted and inserted again)."""
    window = context.partition_time_window
    last_month = (window.end.date().replace(day=1) - timedelta(days=1)).replace(day=1)
    period = (str(window.start.date()), str(last_month))
    context.log.info(f"rebuilding reporting months {period[0]}..{period[1]}")
    yield from _run_dbt(context, dbt, "build", period)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=AFTER_SPC_SELECTOR,
    dagster_dbt_translator=ObservatoryTranslator(settings=TRANSLATOR_SETTINGS),
    pool=DUCKDB_WRITER_POOL,
)
def impact_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, working_file_run: WorkingFileRun
):
    """SPC's tier tables (fct_spc, pub_spc, fct_series_change, pub_series_change: views over
    the SPC step's tables) and programme impact and unexplained shifts
    (docs/programme-impact.md section 4): they read the SPC step's output, so they run after
    it; rebuilt whole."""
    yield from _run_dbt(context, dbt, "build")


def _keys(*prefixes: str, assets=(warehouse_models, period_models)) -> list[dg.AssetKey]:
    return [key for group in assets for key in group.keys if key.path[-1].startswith(prefixes)]


MART_KEYS = _keys("dim_", "fct_", "mart_")  # the internal tier (the SPC step reads these)
PUBLIC_KEYS = _keys("pub_")  # the public tier, disclosure-controlled in dbt
# Built after the SPC step (fct_spc and pub_spc among them): published with the tiers above.
IMPACT_MART_KEYS = _keys("dim_", "fct_", "mart_", assets=(impact_models,))
IMPACT_PUBLIC_KEYS = _keys("pub_", assets=(impact_models,))

defs = dg.Definitions(
    assets=[warehouse_models, period_models, impact_models],
    resources={"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=_dbt_executable())},
)
