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
    """Groups assets by warehouse layer (staging, intermediate, marts, reference)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "warehouse"


PERIOD_SELECTOR = "tag:period_partitioned"
# Models that read the Python asset marts/fct_spc (declared as dbt sources mapped to its
# asset key, models/impact/_spc_sources.yml): built by their own step after it
# (docs/programme-impact.md section 4).
AFTER_SPC_SELECTOR = "tag:after_spc"
# Several sources (fct_spc, pub_spc, the series' changes) are written by the one asset
# marts/fct_spc, so they share its key.
TRANSLATOR_SETTINGS = DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True)


def _run_dbt(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    command: str,
    extra_vars: dict[str, str] | None = None,
):
    """``dbt <command>`` with this deployment's settings as vars (the one place dbt gets
    them), plus ``extra_vars`` for the run's months."""
    settings = load_settings()
    # profiles.yml reads the working file's path from the environment the dbt CLI inherits.
    os.environ["SAFETY_OBS_WORKING_DB"] = str(settings.working_db)
    dbt_vars = json.dumps({**settings.dbt_vars(), **(extra_vars or {})})
    with writer_lock(settings.working_db):
        yield from dbt.cli([command, "--vars", dbt_vars], context=context).stream()


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
    """Everything not period-grained: staging views, register, catalogue and dimensions."""
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
    """Monthly facts and roll-ups, rebuilt incrementally for the run's months only."""
    window = context.partition_time_window
    last_month = (window.end.date().replace(day=1) - timedelta(days=1)).replace(day=1)
    period_vars = {"period_start": str(window.start.date()), "period_end": str(last_month)}
    context.log.info(f"rebuilding reporting months {period_vars}")
    yield from _run_dbt(context, dbt, "build", period_vars)


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
    """Programme impact and unexplained shifts (docs/programme-impact.md section 4): read
    fct_spc, so they run after it; rebuilt whole."""
    yield from _run_dbt(context, dbt, "build")


def _keys(*prefixes: str, assets=(warehouse_models, period_models)) -> list[dg.AssetKey]:
    return [key for group in assets for key in group.keys if key.path[-1].startswith(prefixes)]


MART_KEYS = _keys("dim_", "fct_", "mart_")  # the internal tier (fct_spc reads these)
PUBLIC_KEYS = _keys("pub_")  # the public tier, disclosure-controlled in dbt
# Built after fct_spc: published with the tiers above.
IMPACT_MART_KEYS = _keys("dim_", "fct_", "mart_", assets=(impact_models,))
IMPACT_PUBLIC_KEYS = _keys("pub_", assets=(impact_models,))

defs = dg.Definitions(
    assets=[warehouse_models, period_models, impact_models],
    resources={"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=_dbt_executable())},
)
