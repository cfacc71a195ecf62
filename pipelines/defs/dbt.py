"""The dbt project as Dagster assets; dbt tests become asset checks (error severity blocks).

The manifest is prepared ahead of load (`make prepare`: `dbt parse`), never at import.
"""

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.settings import load_settings

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


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=ObservatoryTranslator(),
    pool=DUCKDB_WRITER_POOL,
)
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    # profiles.yml reads the working file's path from the environment the dbt CLI inherits.
    os.environ["SAFETY_OBS_WORKING_DB"] = str(load_settings().working_db)
    yield from dbt.cli(["build"], context=context).stream()


MART_KEYS = [
    key for key in warehouse_models.keys if key.path[-1].startswith(("dim_", "fct_", "mart_"))
]

defs = dg.Definitions(
    assets=[warehouse_models],
    resources={"dbt": DbtCliResource(project_dir=dbt_project, dbt_executable=_dbt_executable())},
)
