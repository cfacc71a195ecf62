"""Write a new published snapshot beside the old one and swap it in atomically.

Layout under ``published_dir``::

    snapshots/<UTC timestamp>_<run id>/   warehouse.duckdb, parquet/, csv/  (internal tier)
                                          public/warehouse.duckdb, parquet/, csv/
                                          data_docs/, site/, reports/, manifest.json
                                          (public/ has its own site/ and reports/)
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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.publish.disclosure import PLAIN_NUMBER, SQL_FORMULA_START
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


def _csv_select(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """SELECT for a CSV export: text cells a spreadsheet would run as a formula get a
    leading apostrophe (the rule of ``disclosure.neutralise_csv_cell``); numbers stay
    numbers."""
    columns = con.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_catalog = current_database() and table_schema = 'main'"
        " and table_name = ? order by ordinal_position",
        [table],
    ).fetchall()
    parts = []
    for name, data_type in columns:
        quoted = '"' + name.replace('"', '""') + '"'
        if data_type.upper().startswith("VARCHAR"):
            parts.append(
                f"case when regexp_matches({quoted}, '{SQL_FORMULA_START}')"
                f" and not regexp_full_match({quoted}, '{PLAIN_NUMBER}')"
                f" then chr(39) || {quoted} else {quoted} end as {quoted}"
            )
        else:
            parts.append(quoted)
    return f"select {', '.join(parts)} from main.{table}"


def build_tier(working_db: Path, tier_dir: Path, tables: dict[str, str]) -> dict[str, int]:
    """Copy ``tables`` ({published name: qualified name in the working file}) into a new
    DuckDB file, and export each as Parquet and as formula-safe CSV. Returns row counts."""
    (tier_dir / "parquet").mkdir(parents=True)
    (tier_dir / "csv").mkdir()
    counts = {}
    con = duckdb.connect(str(tier_dir / WAREHOUSE_FILE))
    try:
        con.execute(f"attach '{working_db}' as working (read_only)")
        for name, source in sorted(tables.items()):
            con.execute(f"create table main.{name} as select * from working.{source}")
            counts[name] = con.execute(f"select count(*) from main.{name}").fetchone()[0]
            parquet = tier_dir / "parquet" / f"{name}.parquet"
            con.execute(f"copy main.{name} to '{parquet}' (format parquet, compression zstd)")
            csv = tier_dir / "csv" / f"{name}.csv"
            con.execute(f"copy ({_csv_select(con, name)}) to '{csv}' (format csv, header)")
        con.execute("detach working")
        con.execute("checkpoint")
    finally:
        con.close()
    return counts


class PublicationRefused(Exception):
    """An audit of the built snapshot found problems, or writing it failed; nothing was
    published."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems[:5]))
        self.problems = problems


def write_failure(error: BaseException) -> str:
    """Why a snapshot could not be written, with the operating system's own words (``[Errno
    28] No space left on device: '<file>'``), so the publication log says what to fix."""
    return f"writing the snapshot failed: {type(error).__name__}: {error}"


def crash_point(name: str) -> None:
    """Kill the process here when SAFETY_OBS_CRASH_AT names this point: the crash tests use
    it to prove that a run killed at any step leaves a whole publication."""
    if os.environ.get("SAFETY_OBS_CRASH_AT") == name:
        os._exit(137)


CRASH_POINTS = (
    "tiers_built",
    "manifest_written",
    "snapshot_renamed",
    "link_created",
    "link_swapped",
)


def publish(
    working_db: Path,
    published_dir: Path,
    tiers: dict[str, dict[str, str]],
    *,
    run_id: str,
    check_results: list[dict],
    keep: int = 3,
    audit: Callable[[Path], list[str]] | None = None,
    extras: Callable[[Path], dict] | None = None,
) -> Publication:
    """Build a snapshot in a hidden folder, audit it, then rename it into place and swap
    ``current``.

    ``tiers`` maps a tier name to its tables; the ``internal`` tier is written at the top
    of the snapshot (where analysts have always found it), others in a folder of their
    name. ``extras(snapshot)`` adds derived outputs (data docs, dashboards) and returns
    manifest entries; ``audit(snapshot)`` returns problems, and any problem stops the
    publication with :class:`PublicationRefused`, leaving ``current`` as it was.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    snapshot_id = f"{stamp}_{run_id[:8]}"
    snapshots = published_dir / "snapshots"
    try:
        snapshots.mkdir(parents=True, exist_ok=True)
        building = snapshots / f".building-{snapshot_id}"
        building.mkdir()
    except (OSError, duckdb.IOException) as error:
        raise PublicationRefused([write_failure(error)]) from error
    try:
        counts = {
            tier: build_tier(working_db, building / _tier_folder(tier), tables)
            for tier, tables in tiers.items()
        }
        crash_point("tiers_built")
        extra = extras(building) if extras else {}
        problems = audit(building) if audit else []
        if problems:
            raise PublicationRefused(problems)
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
            **extra,
        }
        (building / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        _fsync_tree(building)
    except (OSError, duckdb.IOException) as error:
        # A full disk (ENOSPC), a quota, a permission: nothing is published, and the reason
        # names the error itself. The half-built folder goes first, so the space it held is
        # free again for the publication log to record why.
        shutil.rmtree(building, ignore_errors=True)
        raise PublicationRefused([write_failure(error)]) from error
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    crash_point("manifest_written")

    final = snapshots / snapshot_id
    os.rename(building, final)
    crash_point("snapshot_renamed")
    link_tmp = published_dir / f".current-{snapshot_id}"
    try:
        os.symlink(Path("snapshots") / snapshot_id, link_tmp)
        crash_point("link_created")
        os.replace(link_tmp, published_dir / "current")
    except OSError as error:
        # ``current`` still names the last good snapshot; the new one, whole but never
        # current, is pruned with the old ones.
        link_tmp.unlink(missing_ok=True)
        raise PublicationRefused([write_failure(error)]) from error
    fd = os.open(published_dir, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    crash_point("link_swapped")
    prune(published_dir, keep=keep)
    return Publication(final, manifest)


def _tier_folder(tier: str) -> str:
    return "" if tier == "internal" else tier


def verify_snapshot(snapshot_dir: Path) -> list[str]:
    """Problems with a published snapshot: no manifest, or any file whose size or SHA-256
    differs from what the manifest recorded, or a file the manifest does not list."""
    manifest_path = snapshot_dir / MANIFEST_FILE
    if not manifest_path.exists():
        return [f"{snapshot_dir.name}: no manifest"]
    manifest = json.loads(manifest_path.read_text())
    problems = []
    for name, meta in manifest["files"].items():
        path = snapshot_dir / name
        if not path.exists():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != meta["bytes"] or _sha256(path) != meta["sha256"]:
            problems.append(f"{name}: changed since publication")
    listed = set(manifest["files"]) | {MANIFEST_FILE}
    problems += [
        f"{p.relative_to(snapshot_dir).as_posix()}: not in the manifest"
        for p in snapshot_dir.rglob("*")
        if p.is_file() and p.relative_to(snapshot_dir).as_posix() not in listed
    ]
    return problems


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
