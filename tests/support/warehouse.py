"""Building dbt models into a test's own working file: the one helper the tests that
build part of the warehouse share (surveys, incidents, impact, the public tier).

Each build writes only the given DuckDB file, with a private target and log path under
the test's scratch folder, so the shared manifest (``make prepare``) and other tests'
files are never touched. ``--indirect-selection cautious`` keeps out the tests that also
read unselected models (relationships to ``dim_*``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from pipelines.settings import PROJECT_ROOT, load_settings


def dbt_build(
    working_db: Path,
    scratch: Path,
    select: Sequence[str],
    *,
    dbt_vars: dict | None = None,
    timeout: float | None = None,
    args: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """``dbt build --select <select>`` into ``working_db`` only; the log is
    ``scratch/dbt_logs/dbt.log``. ``dbt_vars``: the vars passed (default: the deployment's
    settings as the pipeline passes them, ``Settings.dbt_vars()``: dbt has no defaults).
    ``args``: more dbt options (``--full-refresh``)."""
    dbt = Path(sys.executable).parent / "dbt"
    project = PROJECT_ROOT / "dbt_project"
    env = {
        **os.environ,
        "SAFETY_OBS_WORKING_DB": str(working_db),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    return subprocess.run(
        [
            str(dbt),
            "build",
            "--select",
            *select,
            "--indirect-selection",
            "cautious",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target-path",
            str(scratch / "dbt_target"),
            "--log-path",
            str(scratch / "dbt_logs"),
            "--vars",
            json.dumps(load_settings().dbt_vars() if dbt_vars is None else dbt_vars),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
