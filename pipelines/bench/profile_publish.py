"""Profile the publish step on a benchmark warehouse, outside Dagster, with cProfile.

Why: at national scale publication costs minutes even when one file changed (stage c),
and the step does many things (copy marts, Parquet and CSV exports, dashboards, disclosure
scan, checksums, fsync); this says which. It publishes the benchmark run's working file
exactly as the ``published_snapshot`` asset does (same tiers, audit and derived outputs)
into ``<out>/scale-<s>/profile_publish/``, never touching the benchmark's own publication.

The board-report PDFs are rendered after the swap, as the ``board_report_pdfs`` step
does, and timed apart (``pdfs_after_swap_s``). With ``--again`` the working file is
published a second time into the same folder (nothing changed: what a run that carries
everything costs, carried disclosure verdicts included), and that publication is the one
profiled. With ``--previous SNAPSHOT`` (a folder under the benchmark's
``run/var/published/snapshots``) that snapshot is hard-linked in as the current one first, so
the profiled publication carries from it exactly as the benchmark's did: give the snapshot of
(b) to profile what stage (c) cost.

Run after a benchmark at that scale:
``python -m pipelines.bench.profile_publish --scale 1.0 [--out var/bench] [--again]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import shutil
import subprocess
import time
from pathlib import Path

from pipelines.settings import ALL_ENGLAND

# (file suffix, function) -> label; cumulative seconds of each.
PARTS = {
    ("snapshot.py", "build_tier"): "build_tier (copy marts, Parquet, CSV), all tiers",
    ("snapshot.py", "_csv_select"): "  CSV select (formula neutralising) built",
    ("publish.py", "disclosure_audit"): "disclosure_audit (public tier scan)",
    ("publish.py", "build"): "derived outputs (dashboards, data docs)",
    ("build.py", "build_site"): "  dashboard build_site",
    ("disclosure.py", "scan_site"): "  site and report scans (disclosure)",
    ("disclosure.py", "_pdf_problems"): "  PDF text scans (disclosure)",
    ("snapshot.py", "_sha256"): "SHA-256 of every file (manifest)",
    ("snapshot.py", "_fsync_tree"): "fsync of every file",
    ("snapshot.py", "prune"): "prune old snapshots",
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="cProfile of the publish step")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--again", action="store_true", help="profile a second publication")
    parser.add_argument(
        "--previous", type=Path, help="a benchmark snapshot to carry from (hard-linked in)"
    )
    args = parser.parse_args(argv)
    root = args.out.resolve() / f"scale-{args.scale:g}"
    working = root / "run" / "var" / "warehouse" / "working.duckdb"
    folder = root / "profile_publish"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if args.previous is not None:
        _seed_previous(args.previous.resolve(), folder / "published")
    os.environ.update(
        {
            # The benchmark's working file holds all of England (run.pipeline_env).
            "SAFETY_OBS_REGION_ICBS": ALL_ENGLAND,
            "SAFETY_OBS_VAR_DIR": str(folder / "var"),
            "SAFETY_OBS_WORKING_DB": str(working),
            "SAFETY_OBS_PUBLISHED_DIR": str(folder / "published"),
            "SAFETY_OBS_DBT_TARGET_DIR": str(root / "run" / "dbt_target"),
        }
    )
    from pipelines.defs.publish import (
        derived_outputs,
        disclosure_audit,
        publish_report_pdfs,
        tier_tables,
    )
    from pipelines.publish.pdfs import VERDICTS_KEY
    from pipelines.publish.snapshot import PreviousSnapshot, publish
    from pipelines.settings import load_settings

    def once(run_id: str, profile: cProfile.Profile | None):
        verdicts: dict = {}
        previous = PreviousSnapshot.of(folder / "published")
        started = time.perf_counter()
        if profile is not None:
            profile.enable()
        publication = publish(
            working,
            folder / "published",
            tier_tables(),
            run_id=run_id,
            check_results=[],
            keep=2,
            audit=lambda snapshot: disclosure_audit(snapshot, previous=previous, verdicts=verdicts),
            extras=lambda snapshot: {
                **derived_outputs(run_id, defer_pdfs=True)(snapshot),
                VERDICTS_KEY: verdicts,
            },
        )
        if profile is not None:
            profile.disable()
        published_s = time.perf_counter() - started
        started = time.perf_counter()
        outcome = publish_report_pdfs(
            publication.snapshot_dir, workers=load_settings().report_workers
        )
        return publication, published_s, time.perf_counter() - started, outcome

    first = None
    if args.again:
        first = once("profile-publish-first", None)
    profile = cProfile.Profile()
    publication, total, pdf_s, outcome = once("profile-publish", profile)
    profile.dump_stats(folder / "publish.prof")
    buf = io.StringIO()
    stats = pstats.Stats(profile, stream=buf)
    stats.strip_dirs().sort_stats("cumulative").print_stats(args.top)
    (folder / "publish_profile.txt").write_text(buf.getvalue())
    table = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    parts = {}
    for (suffix, name), label in PARTS.items():
        parts[label] = round(
            max(
                (
                    cumulative
                    for (filename, _, function), (_, _, _, cumulative, _) in table.items()
                    if function == name and filename.endswith(suffix)
                ),
                default=0.0,
            ),
            2,
        )
    files = [p for p in publication.snapshot_dir.rglob("*") if p.is_file()]
    result = {
        "scale": args.scale,
        "publish_s": round(total, 2),
        "pdfs_after_swap_s": round(pdf_s, 2),
        "pdfs_rendered": len(outcome.seconds),
        "first_publication_s (--again)": (
            {"publish_s": round(first[1], 2), "pdfs_after_swap_s": round(first[2], 2)}
            if first
            else None
        ),
        "parts_s (cProfile cumulative)": parts,
        "snapshot_files": len(files),
        "snapshot_bytes": sum(p.stat().st_size for p in files),
        "bytes_by_top_folder": _bytes_by_folder(publication.snapshot_dir, files),
    }
    (folder / "publish_parts.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def _seed_previous(snapshot: Path, published: Path) -> None:
    """Hard-link ``snapshot`` in as ``published``'s current snapshot (``cp -al`` keeps each
    file's inode and times, so the carry rules see it exactly as the benchmark left it)."""
    snapshots = published / "snapshots"
    snapshots.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(snapshot), str(snapshots / snapshot.name)], check=True)
    (published / "current").symlink_to(Path("snapshots") / snapshot.name)


def _bytes_by_folder(root: Path, files: list[Path]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for path in files:
        parts = path.relative_to(root).parts
        key = "/".join(parts[:2]) if parts[0] == "public" and len(parts) > 2 else parts[0]
        sizes[key] = sizes.get(key, 0) + path.stat().st_size
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


if __name__ == "__main__":
    main()
