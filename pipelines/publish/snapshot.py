"""Write a new published snapshot beside the old one and swap it in atomically.

Layout under ``published_dir``::

    snapshots/<UTC timestamp>_<run id>/   warehouse.duckdb, parquet/, [csv/]  (internal tier;
                                                   csv/ only with the internal_csv setting)
                                          public/warehouse.duckdb, parquet/, csv/
                                          data_docs/, site/, reports/, manifest.json
                                          (public/ has its own site/ and reports/)
    current -> snapshots/<...>            a symlink, replaced with one rename(2)

Analysts open ``current/warehouse.duckdb`` read-only. The pipeline never writes a file
that is, or was, published: an analyst holding one open never blocks a run, and a run
killed at any point leaves ``current`` pointing at a whole snapshot.

A new snapshot shares, by hard link, every file whose bytes are the current one's (an
unchanged table's exports, an unchanged page): a published file is never written again, so
a second name for it is as safe as the first, and pruning a snapshot removes only names.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from pipelines.publish.disclosure import PLAIN_NUMBER, SQL_FORMULA_START, file_sha256
from pipelines.publish.phases import Phases
from pipelines.settings import PROJECT_ROOT
from pipelines.warehouse import ROWS_DIGEST, open_duckdb

WAREHOUSE_FILE = "warehouse.duckdb"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class Publication:
    snapshot_dir: Path
    manifest: dict
    #: Wall and CPU seconds of each phase of building it (:class:`Phases`).
    phases: dict = field(default_factory=dict)


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
    return file_sha256(path)


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
        quoted = _quoted(name)
        if data_type.upper().startswith("VARCHAR"):
            parts.append(
                f"case when regexp_matches({quoted}, '{SQL_FORMULA_START}')"
                f" and not regexp_full_match({quoted}, '{PLAIN_NUMBER}')"
                f" then chr(39) || {quoted} else {quoted} end as {quoted}"
            )
        else:
            parts.append(quoted)
    return f"select {', '.join(parts)} from main.{table}"


# How each exported table is ordered, ahead of its remaining columns (which always follow,
# so the order is total whatever the key): identical data then gives byte-identical Parquet
# and CSV, which is what lets an unchanged table be carried from the previous snapshot.
# Tables not named here are ordered by all their columns, in their column order.
# The facts and the completeness mart go by month first: analysts filter on one month
# (a league table, who has not submitted), and DuckDB then reads the row groups of that
# month only (its min/max per row group). SCALE=1, 4.1 million rows, median of 9: the
# league table of one measure and month 96.1 ms ordered by organisation, 26.1 ms by
# month; one organisation's year 2.8 ms -> 20.4 ms (both well under the 100 ms target).
EXPORT_ORDER: dict[str, tuple[str, ...]] = {
    "fct_measure_monthly": ("period", "measure_code", "org_code"),
    "mart_submission_completeness": ("period", "measure_code", "org_code"),
    "fct_spc": ("level", "tier", "series_key", "period"),
    "pub_spc": ("level", "series_key", "period"),
    "fct_programme_impact": ("level", "series_key"),
    "pub_programme_impact": ("level", "series_key"),
}


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _order_by(name: str, columns: list[str]) -> str:
    key = [c for c in EXPORT_ORDER.get(name, ()) if c in columns]
    return ", ".join(_quoted(c) for c in [*key, *(c for c in columns if c not in key)])


@dataclass(frozen=True)
class PreviousSnapshot:
    """What a new snapshot may carry from the one it replaces: its folder and manifest.

    A file is carried only if the manifest recorded it and it still looks untouched: the
    size the manifest recorded, and not modified after the manifest was written (a hard
    link shares the original file's inode and times, so carrying never makes it newer).
    """

    folder: Path
    manifest: dict
    written_ns: int

    @classmethod
    def of(cls, published_dir: Path) -> PreviousSnapshot | None:
        """The current snapshot, if there is one with a readable manifest."""
        current = published_dir / "current"
        path = current / MANIFEST_FILE
        try:
            folder = current.resolve(strict=True)
            manifest = json.loads(path.read_text())
            written_ns = path.stat().st_mtime_ns
        except (OSError, ValueError):
            return None
        return cls(folder, manifest, written_ns)

    def untouched(self, relative: str) -> Path | None:
        """``relative``'s path in this snapshot if the manifest recorded it and it still
        has the recorded size and was not modified after the manifest; otherwise None."""
        meta = self.manifest.get("files", {}).get(relative)
        if meta is None:
            return None
        source = self.folder / relative
        try:
            stat = source.stat()
        except OSError:
            return None
        if stat.st_size != meta["bytes"] or stat.st_mtime_ns > self.written_ns:
            return None
        return source

    def carry(self, relative: str, target: Path, *, recipe: str | None = None) -> dict | None:
        """Hard-link ``relative`` from this snapshot to ``target`` (copying across file
        systems) and return its manifest entry, or None if it cannot be trusted; with a
        ``recipe``, only if the file was made from the same recipe."""
        if recipe is not None and self.manifest.get("exports", {}).get(relative) != recipe:
            return None
        source = self.untouched(relative)
        if source is None:
            return None
        link_or_copy(source, target)
        meta = self.manifest["files"][relative]
        return {"bytes": meta["bytes"], "sha256": meta["sha256"]}

    def linked(self, relative: str, path: Path) -> dict | None:
        """The manifest entry of ``relative`` if ``path`` is that very file (a hard link
        made by :meth:`carry`: same device and inode) and it still looks untouched, so its
        checksum is reused rather than computed again; otherwise None."""
        meta = self.manifest.get("files", {}).get(relative)
        if meta is None:
            return None
        try:
            source, here = (self.folder / relative).stat(), path.stat()
        except OSError:
            return None
        same = (source.st_dev, source.st_ino) == (here.st_dev, here.st_ino)
        if not same or here.st_size != meta["bytes"] or here.st_mtime_ns > self.written_ns:
            return None
        return {"bytes": meta["bytes"], "sha256": meta["sha256"]}


def link_or_copy(source: Path, target: Path) -> None:
    """Put ``source``'s bytes at ``target`` (replacing it): a hard link, or a copy where
    links cannot be made (another file system, a file system without them). A published
    file is never written again, so sharing its inode with a later snapshot is safe, and
    pruning the older snapshot only removes one of its names."""
    tmp = target.with_name(f".{target.name}.carried")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError as error:
        if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copy2(source, tmp)
    os.replace(tmp, target)


@dataclass
class TierBuild:
    """One tier as written: its row counts, the manifest entries of the files carried or
    already hashed (so they are not read again), the recipe of each export (what a later
    snapshot compares before carrying it) and which files were carried."""

    counts: dict[str, int] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    exports: dict[str, str] = field(default_factory=dict)
    carried: list[str] = field(default_factory=list)
    #: each table's recipe (:func:`_table_recipe`), by its name in the snapshot
    tables: dict[str, str] = field(default_factory=dict)
    #: tables copied from the previous snapshot's tier file rather than sorted again
    carried_tables: list[str] = field(default_factory=list)


PARQUET_OPTIONS = "format parquet, compression zstd"


def _table_recipe(con: duckdb.DuckDBPyConnection, name: str, source: str) -> tuple[str, int]:
    """What a published table's bytes follow from, as a digest, and its row count: the
    source's columns and types, the export order, the rows (their count and two sums of
    one hash per row, so the rows' physical order does not matter and one changed value
    changes it: :data:`pipelines.warehouse.ROWS_DIGEST`, the digest carried organisation
    pages are recognised by), the Parquet options and the DuckDB version. One scan of the
    source, where sorting, writing and hashing a table costs several."""
    schema, table = source.split(".", 1)
    columns = con.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_catalog = 'working' and table_schema = ? and table_name = ?"
        " order by ordinal_position",
        [schema, table],
    ).fetchall()
    [(count, *digest)] = con.execute(f"select {ROWS_DIGEST} from working.{source} as r").fetchall()
    names = [c for c, _ in columns]
    text = "\n".join(
        [
            repr(columns),
            _order_by(name, names),
            f"{count} rows, digest {digest}",
            PARQUET_OPTIONS,
            f"duckdb {duckdb.__version__}",
        ]
    )
    return hashlib.sha256(text.encode()).hexdigest(), count


def build_tier(
    working_db: Path,
    tier_dir: Path,
    tables: dict[str, str],
    *,
    csv: bool = True,
    previous: PreviousSnapshot | None = None,
    prefix: str = "",
    phases: Phases | None = None,
) -> TierBuild:
    """Copy ``tables`` ({published name: qualified name in the working file}) into a new
    DuckDB file, sorted (``EXPORT_ORDER``), and export each as Parquet and, with ``csv``, as
    formula-safe CSV.

    An export whose bytes the ``previous`` snapshot already holds is carried from it
    (:meth:`PreviousSnapshot.carry`) with its checksum: the Parquet file is written and
    hashed (small and quick), and when its SHA-256 is the previous one's the previous file
    is linked in its place; the CSV, far larger and slower to write, is then not written at
    all if the previous one came from the same Parquet bytes and the same CSV query.
    ``prefix`` is the tier's folder in the snapshot, for manifest names; ``phases`` times
    each table (its rows, Parquet and CSV) under ``table <prefix><name>``."""
    phases = phases or Phases()
    (tier_dir / "parquet").mkdir(parents=True)
    if csv:
        (tier_dir / "csv").mkdir()
    built = TierBuild()
    con = open_duckdb(tier_dir / WAREHOUSE_FILE)
    try:
        # Sorted rows stay in their order from the table to the files (DuckDB's default,
        # set here because byte-identical exports depend on it).
        con.execute("set preserve_insertion_order = true")
        con.execute(f"attach '{working_db}' as working (read_only)")
        previous_file = (
            previous.untouched(f"{prefix}{WAREHOUSE_FILE}") if previous is not None else None
        )
        if previous_file is not None:
            con.execute(f"attach '{previous_file}' as previous (read_only)")
        for name, source in sorted(tables.items()):
            with phases(f"table {prefix}{name}"):
                _build_table(
                    con,
                    built,
                    name,
                    source,
                    tier_dir=tier_dir,
                    csv=csv,
                    previous=previous,
                    previous_file=previous_file,
                    prefix=prefix,
                )
        if previous_file is not None:
            con.execute("detach previous")
        con.execute("detach working")
        with phases(f"checkpoint {prefix}{WAREHOUSE_FILE}"):
            con.execute("checkpoint")
    finally:
        con.close()
    return built


def _build_table(
    con: duckdb.DuckDBPyConnection,
    built: TierBuild,
    name: str,
    source: str,
    *,
    tier_dir: Path,
    csv: bool,
    previous: PreviousSnapshot | None,
    previous_file: Path | None,
    prefix: str,
) -> None:
    """One table of :func:`build_tier`: carried, or copied sorted; then its exports."""
    recipe, built.counts[name] = _table_recipe(con, name, source)
    built.tables[f"{prefix}{name}"] = recipe
    parquet = tier_dir / "parquet" / f"{name}.parquet"
    relative = f"{prefix}parquet/{name}.parquet"
    entry = None
    if previous_file is not None and previous is not None:
        entry = _carry_table(con, previous, f"{prefix}{name}", recipe, relative, parquet)
    if entry is not None:
        built.carried_tables.append(f"{prefix}{name}")
        carried: dict | None = entry
    else:
        columns = [d[0] for d in con.execute(f"select * from working.{source} limit 0").description]
        con.execute(
            f"create table main.{name} as select * from working.{source}"
            f" order by {_order_by(name, columns)}"
        )
        con.execute(f"copy main.{name} to '{parquet}' ({PARQUET_OPTIONS})")
        entry = {"bytes": parquet.stat().st_size, "sha256": _sha256(parquet)}
        same = previous is not None and (previous.manifest.get("files", {}).get(relative) == entry)
        carried = previous.carry(relative, parquet) if same and previous else None
    built.files[relative] = carried or entry
    if carried:
        built.carried.append(relative)
    if not csv:
        return
    target = tier_dir / "csv" / f"{name}.csv"
    select = _csv_select(con, name)
    csv_relative = f"{prefix}csv/{name}.csv"
    csv_recipe = hashlib.sha256(
        f"{entry['sha256']}\n{select}\nduckdb {duckdb.__version__}".encode()
    ).hexdigest()
    built.exports[csv_relative] = csv_recipe
    carried = (
        previous.carry(csv_relative, target, recipe=csv_recipe) if carried and previous else None
    )
    if carried:
        built.files[csv_relative] = carried
        built.carried.append(csv_relative)
    else:
        con.execute(f"copy ({select}) to '{target}' (format csv, header)")


def _carry_table(
    con: duckdb.DuckDBPyConnection,
    previous: PreviousSnapshot,
    table: str,
    recipe: str,
    relative: str,
    parquet: Path,
) -> dict | None:
    """Carry an unchanged table: when the previous snapshot published ``table`` from the
    same recipe, copy its rows from the previous tier file (attached as ``previous``;
    already in export order, so not sorted again) and link its Parquet file; return that
    file's manifest entry, or None (nothing linked) to build the table from the working
    file. The rows are copied before anything is linked: a file linked in and then written
    over would be the published file itself."""
    if previous.manifest.get("tables", {}).get(table) != recipe:
        return None
    if previous.untouched(relative) is None:
        return None
    name = table.rsplit("/", 1)[-1]
    try:
        con.execute(f"create table main.{name} as select * from previous.main.{name}")
    except duckdb.CatalogException:
        return None
    carried = previous.carry(relative, parquet)
    if carried is None:  # changed since the check above: build it after all
        con.execute(f"drop table main.{name}")
    return carried


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
#: The board-report PDF step after the swap (``pipelines/publish/pdfs.py``).
PDF_CRASH_POINTS = ("pdfs_rendered", "pdf_placed", "pdf_manifest_written")


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
    internal_csv: bool = False,
    phases: Phases | None = None,
) -> Publication:
    """Build a snapshot in a hidden folder, audit it, then rename it into place and swap
    ``current``.

    ``tiers`` maps a tier name to its tables; the ``internal`` tier is written at the top
    of the snapshot (where analysts have always found it), others in a folder of their
    name. ``extras(snapshot)`` adds derived outputs (data docs, dashboards) and returns
    manifest entries; ``audit(snapshot)`` returns problems, and any problem stops the
    publication with :class:`PublicationRefused`, leaving ``current`` as it was.

    Every tier gets Parquet; the public tier CSV too, the internal one only with
    ``internal_csv``. Whatever is byte-identical to a file of the current snapshot is
    carried from it (hard-linked, its checksum reused) rather than written and hashed again:
    see :func:`build_tier` and :func:`_record_files`.

    ``phases`` (one is made when not given) records each part's wall and CPU seconds: every
    table, ``extras``, ``audit``, ``checksums`` and ``fsync``; they come back on the
    :class:`Publication`.
    """
    phases = phases or Phases()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    snapshot_id = f"{stamp}_{run_id[:8]}"
    snapshots = published_dir / "snapshots"
    try:
        snapshots.mkdir(parents=True, exist_ok=True)
        building = snapshots / f".building-{snapshot_id}"
        building.mkdir()
    except (OSError, duckdb.IOException) as error:
        raise PublicationRefused([write_failure(error)]) from error
    previous = PreviousSnapshot.of(published_dir)
    try:
        built = {
            tier: build_tier(
                working_db,
                building / _tier_folder(tier),
                tables,
                csv=tier != "internal" or internal_csv,
                previous=previous,
                prefix=f"{_tier_folder(tier)}/" if _tier_folder(tier) else "",
                phases=phases,
            )
            for tier, tables in tiers.items()
        }
        counts = {tier: b.counts for tier, b in built.items()}
        crash_point("tiers_built")
        with phases("extras"):
            extra = extras(building) if extras else {}
        with phases("audit"):
            problems = audit(building) if audit else []
        if problems:
            raise PublicationRefused(problems)
        known = {name: meta for b in built.values() for name, meta in b.files.items()}
        with phases("checksums"):
            files, carried = _record_files(building, known, previous)
        carried += [name for b in built.values() for name in b.carried]
        manifest = {
            "snapshot_id": snapshot_id,
            "published_at": datetime.now(UTC).isoformat(),
            "run_id": run_id,
            "code_version": code_version(),
            "row_counts": counts,
            "files": files,
            # How each CSV was made, so that the next snapshot can carry it unchanged.
            "exports": {name: r for b in built.values() for name, r in b.exports.items()},
            # What each table's rows and files follow from, so that the next snapshot can
            # carry an unchanged table without sorting and writing it again.
            "tables": {name: r for b in built.values() for name, r in b.tables.items()},
            "carried_tables": sorted(t for b in built.values() for t in b.carried_tables),
            "carried_files": len(carried),
            "checks": check_results,
            **extra,
        }
        (building / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        with phases("fsync"):
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
    return Publication(final, manifest, phases.seconds)


def _record_files(
    building: Path, known: dict[str, dict], previous: PreviousSnapshot | None
) -> tuple[dict[str, dict], list[str]]:
    """Manifest entries (size and SHA-256) for every file in ``building``, and which of them
    were carried. ``known`` entries (exports carried or hashed as they were written) are
    taken as they are, and so is the entry of a file that is already a link to the previous
    snapshot's file of its name (:meth:`PreviousSnapshot.linked`); every other file is
    hashed, and one byte-identical to the previous snapshot's file of the same name (a
    site page) is replaced by a link to that file, so unchanged outputs take their disk
    space once."""
    files: dict[str, dict] = {}
    carried: list[str] = []
    for path in sorted(building.rglob("*")):
        if not path.is_file():
            continue
        name = path.relative_to(building).as_posix()
        if name in known:
            files[name] = known[name]
            continue
        # Already linked from the previous snapshot (a carried board report): its checksum.
        linked = previous.linked(name, path) if previous is not None else None
        if linked is not None:
            files[name] = linked
            carried.append(name)
            continue
        entry = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        if (
            previous is not None
            and name != WAREHOUSE_FILE
            and not name.endswith(f"/{WAREHOUSE_FILE}")
            and previous.manifest.get("files", {}).get(name) == entry
            and previous.carry(name, path)
        ):
            carried.append(name)
        files[name] = entry
    return files, carried


def _tier_folder(tier: str) -> str:
    return "" if tier == "internal" else tier


def verify_snapshot(snapshot_dir: Path) -> list[str]:
    """Problems with a published snapshot: no manifest, or any file whose size or SHA-256
    differs from what the manifest recorded, or a file the manifest does not list (a
    board-report PDF the manifest names as pending aside: it is being published after the
    swap, see ``pipelines/publish/pdfs.py``)."""
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
    listed = set(manifest["files"]) | {MANIFEST_FILE} | set(manifest.get("pending_pdfs", []))
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
    for leftover in [*snapshots.glob(".building-*"), *snapshots.glob(".pdfs-*")]:
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
