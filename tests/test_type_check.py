"""``make lint``'s type checker (mypy, configured in pyproject.toml) on a copy of pipelines/:
the tree as committed passes, and one mistyped call to a real function fails it, naming the
file, line and argument. Both runs share one mypy cache (a copy of make lint's, when there
is one), so they take seconds rather than a minute."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.settings import PROJECT_ROOT

MYPY = Path(sys.executable).parent / "mypy"

# A str where working_connection() wants a Path: the commonest slip in this codebase, and
# inside a function with type hints, which is what mypy checks here.
MISTYPED = """

def _mistyped_call() -> None:
    with working_connection("var/warehouse/working.duckdb", read_only=True):
        pass
"""


def _link(source: str, target: str) -> None:
    """Hard links: mypy replaces a cache file rather than writing into it, so the original
    cache (about 200 MB) is never changed, and nothing is copied."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def run_mypy(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MYPY), "--cache-dir", str(root / ".mypy_cache")],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    """A copy of pipelines/ with the project's mypy configuration, checked once as is."""
    root = tmp_path_factory.mktemp("typed")
    shutil.copytree(
        PROJECT_ROOT / "pipelines",
        root / "pipelines",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    if (PROJECT_ROOT / ".mypy_cache").is_dir():  # make test ran make lint first: reuse it
        shutil.copytree(PROJECT_ROOT / ".mypy_cache", root / ".mypy_cache", copy_function=_link)
    return root, run_mypy(root)


def test_the_committed_tree_passes(clean: tuple[Path, subprocess.CompletedProcess]) -> None:
    _, result = clean
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_a_mistyped_call_fails(clean: tuple[Path, subprocess.CompletedProcess]) -> None:
    root, _ = clean
    module = root / "pipelines" / "cli.py"
    text = module.read_text()
    # MISTYPED calls working_connection, which cli.py must import from pipelines.warehouse.
    imported = re.search(r"^from pipelines\.warehouse import (.+)$", text, re.MULTILINE)
    assert imported and "working_connection" in imported.group(1).split(", ")
    module.write_text(text + MISTYPED)
    line = len((text + MISTYPED).splitlines()) - 1
    try:
        result = run_mypy(root)
    finally:
        module.write_text(text)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f'pipelines/cli.py:{line}: error: Argument 1 to "working_connection"' in result.stdout
    assert 'incompatible type "str"; expected "Path"' in result.stdout
    assert "Found 1 error in 1 file" in result.stdout
