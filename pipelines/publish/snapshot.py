"""Write a new published snapshot beside the old one and swap it in atomically.

Layout under ``published_dir``::

    snapshots/<UTC timestamp>_<run id>/   warehouse.duckdb, parquet/<table>.parquet,
                                          manifest.json
    current -> snapshots/<...>            a symlink, replaced with one rename(2)

Analysts open ``current/warehouse.duckdb`` read-only. The pipeline never writes a file
that is, or was, published: an analyst holding one open never blocks a run, and a run
killed at any point leaves ``current`` pointing at a whole snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.settings import PROJECT_ROOT

WAREHOUSE_FILE = "warehouse.duckdb"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Publication:
    snapshot_dir: Path
    manifest: dict


def code_version() -> str:
    """The git commit the pipeline ran from, or 'unknown' outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    for directory in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def build_snapshot(working_db: Path, target_dir: Path, tables: dict[str, str]) -> dict[str, int]:
    """Copy ``tables`` ({published name: qualified name in the working file}) into a new
    DuckDB file and one Parquet file each. Returns row counts."""
    (target_dir / "parquet").mkdir(parents=True)
    counts = {}
    con = duckdb.connect(str(target_dir / WAREHOUSE_FILE))
    try:
        con.execute(f"attach '{working_db}' as working (read_only)")
        for name, source in sorted(tables.items()):
            con.execute(f"create table main.{name} as select * from working.{source}")
            counts[name] = con.execute(f"select count(*) from main.{name}").fetchone()[0]
            con.execute(
                f"copy main.{name} to '{target_dir / 'parquet' / f'{name}.parquet'}' "
                "(format parquet, compression zstd)"
            )
        con.execute("detach working")
        con.execute("checkpoint")
    finally:
        con.close()
    return counts


def publish(
    working_db: Path,
    published_dir: Path,
    tables: dict[str, str],
    *,
    run_id: str,
    check_results: list[dict],
    keep: int = 3,
) -> Publication:
    """Build a snapshot in a hidden folder, then rename it into place and swap ``current``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    snapshot_id = f"{stamp}_{run_id[:8]}"
    snapshots = published_dir / "snapshots"
    snapshots.mkdir(parents=True, exist_ok=True)
    building = snapshots / f".building-{snapshot_id}"
    if building.exists():
        shutil.rmtree(building)
    counts = build_snapshot(working_db, building, tables)
    files = {
        p.relative_to(building).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(building.rglob("*"))
        if p.is_file()
    }
    manifest = {
        "snapshot_id": snapshot_id,
        "published_at": datetime.now(UTC).isoformat(),
        "run_id": run_id,
        "code_version": code_version(),
        "row_counts": counts,
        "files": files,
        "checks": check_results,
    }
    (building / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    _fsync_tree(building)

    final = snapshots / snapshot_id
    os.rename(building, final)
    link_tmp = published_dir / f".current-{snapshot_id}"
    os.symlink(Path("snapshots") / snapshot_id, link_tmp)
    os.replace(link_tmp, published_dir / "current")
    fd = os.open(published_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    prune(published_dir, keep=keep)
    return Publication(final, manifest)


def prune(published_dir: Path, *, keep: int) -> list[Path]:
    """Remove old snapshots beyond ``keep`` and leftovers of killed runs; never ``current``."""
    snapshots = published_dir / "snapshots"
    current = (
        (published_dir / "current").resolve() if (published_dir / "current").exists() else None
    )
    removed = []
    for leftover in snapshots.glob(".building-*"):
        shutil.rmtree(leftover, ignore_errors=True)
        removed.append(leftover)
    for link in published_dir.glob(".current-*"):
        link.unlink(missing_ok=True)
    finished = sorted(p for p in snapshots.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in finished[:-keep] if keep > 0 else finished:
        if current is not None and old.resolve() == current:
            continue
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    return removed


def current_manifest(published_dir: Path) -> dict | None:
    path = published_dir / "current" / MANIFEST_FILE
    return json.loads(path.read_text()) if path.exists() else None
