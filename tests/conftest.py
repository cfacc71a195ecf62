"""Shared fixtures: every test gets its own working file, published folder and landing area,
except the end-to-end tests that only read one full run of the sample (``sample_build``)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
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
    # No incident extracts unless a test lands some (tests/incidents): the measure-return
    # tests compare their facts with the returns sample's manifest.
    mp.setenv("SAFETY_OBS_INCIDENT_LANDING_DIR", str(root / "incidents"))
    mp.setenv("SAFETY_OBS_KH03_LANDING_DIR", str(root / "kh03"))


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
        env={
            **clean,
            "SAFETY_OBS_VAR_DIR": str(root / "var"),
            # The incident sample is the incident tests' (tests/incidents): these runs
            # compare their facts with the returns sample's manifest.
            "SAFETY_OBS_INCIDENT_LANDING_DIR": str(root / "incidents"),
            "SAFETY_OBS_KH03_LANDING_DIR": str(root / "kh03"),
            **(env or {}),
        },
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


@dataclass(frozen=True)
class SampleBuild:
    """One full run of the committed sample: its working file and published snapshot.
    Shared by every test that asks for it, so read it only: copy a file before changing it."""

    success: bool
    failure: str  # why the run failed, if it did
    working_db: Path
    published: Path  # the snapshot var/published/current pointed at after the run

    def published_snapshot(self) -> Path:
        """The snapshot, for tests that need the run to have published."""
        assert self.success, f"the session's full run of the sample failed: {self.failure}"
        return self.published


@pytest.fixture(scope="session")
def sample_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SampleBuild]:
    """The sample built once for the whole test session, not once per test module.

    Under pytest-xdist every worker is a session of its own: the first to get here builds
    under a file lock in the folder the workers share, the others wait for it and reuse
    the result (a failed run is not run again: ``published_snapshot()`` fails with why).
    Tests that use it are marked ``e2e`` (``pytest_collection_modifyitems``)."""
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # <basetemp>/popen-gwN: the parent is common to the workers
    root = shared / "sample_build"
    outcome = root / "outcome.json"
    with open(shared / "sample_build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not outcome.exists():
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir()
            outcome.write_text(json.dumps(_build_the_sample(root)))
    built = json.loads(outcome.read_text())
    yield SampleBuild(
        built["success"], built["failure"], Path(built["working_db"]), Path(built["published"])
    )


def _build_the_sample(root: Path) -> dict:
    """Run the whole pipeline on a copy of the sample under ``root``; what it built."""
    with pytest.MonkeyPatch.context() as mp:
        point_settings_at(mp, root)
        shutil.copytree(SAMPLES / "landing", root / "landing")
        result = run_full_pipeline(dg.DagsterInstance.ephemeral())
        settings = load_settings()
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        return {
            "success": result.success,
            "failure": ""
            if result.success
            else f"failed steps {failed}"
            if failed
            else "the run did not succeed",
            "working_db": str(settings.working_db),
            "published": str(settings.published_current.resolve()),
        }


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that reads the session's full run is an end-to-end test: ``-m 'not e2e'``
    (make test-fast) leaves it out, so the run is not made at all."""
    for item in items:
        if "sample_build" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.e2e)
