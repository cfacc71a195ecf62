"""Shared fixtures: every test gets its own working file, published folder and landing area."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from pipelines.settings import PROJECT_ROOT, Settings, load_settings

# Tests write a file and ingest it at once: nothing waits for files to settle unless a test
# sets its own interval (tests/test_ingest_reading.py). In os.environ, so the subprocess runs
# some tests start inherit it.
os.environ.setdefault("SAFETY_OBS_SETTLE_SECONDS", "0")

SAMPLES = PROJECT_ROOT / "data_samples"
FIXTURES = Path(__file__).parent / "fixtures"


def point_settings_at(mp: pytest.MonkeyPatch, root: Path) -> None:
    """Every writable path under ``root`` (``var/``, ``landing/``); the sample register."""
    var = root / "var"
    mp.setenv("SAFETY_OBS_VAR_DIR", str(var))
    mp.setenv("SAFETY_OBS_WORKING_DB", str(var / "warehouse" / "working.duckdb"))
    mp.setenv("SAFETY_OBS_PUBLISHED_DIR", str(var / "published"))
    mp.setenv("SAFETY_OBS_LANDING_DIR", str(root / "landing"))


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings with every writable path under ``tmp_path``; the sample register."""
    point_settings_at(monkeypatch, tmp_path)
    (tmp_path / "landing").mkdir()
    return load_settings()


@pytest.fixture
def sample_landing(settings: Settings) -> Path:
    """A copy of the committed sample returns in this test's landing folder."""
    shutil.rmtree(settings.landing_dir)
    shutil.copytree(SAMPLES / "landing", settings.landing_dir)
    return settings.landing_dir


def start_demo(root: Path, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """``python -m pipelines.cli demo`` in its own process, everything it writes under
    ``root/var``, no SAFETY_OBS_*/DAGSTER_* of the caller's shell; ``env`` adds settings,
    ``popen`` goes to :class:`subprocess.Popen`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SAFETY_OBS_", "DAGSTER"))}
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "demo"],
        cwd=PROJECT_ROOT,
        env={**clean, "SAFETY_OBS_VAR_DIR": str(root / "var"), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def run_full_pipeline(
    instance: dg.DagsterInstance | None = None,
    months: tuple[date, date] | None = None,
    tags: dict[str, str] | None = None,
    **kwargs,
) -> dg.ExecuteInProcessResult:
    """The job `make demo` runs (every month, unless ``months`` gives a range), in this
    process, against the current environment."""
    from pipelines.definitions import defs
    from pipelines.defs.partitions import range_tags

    first, last = months or (load_settings().catalogue_start, date.today().replace(day=1))
    job = defs().resolve_job_def("full_pipeline")
    return job.execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags={**range_tags(first, last), **(tags or {})},
        **kwargs,
    )
