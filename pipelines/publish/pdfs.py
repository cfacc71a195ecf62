"""Board-report PDFs, rendered after the snapshot they belong to is published.

Why: a PDF is a printable copy of a report whose HTML is already in the snapshot, and it
costs about 20 s of WeasyPrint each (86 reports at national scale: most of a full
rebuild's publication). Nothing a PDF could show can stop the data being published (its
HTML page, with every figure, is scanned before the swap), so the snapshot with its data,
sites and HTML reports is swapped in first, naming the PDFs still to come in its manifest
(``pending_pdfs``); this step then renders them into a staging folder beside the
snapshots, scans each public one for disclosure as the pre-swap audit would, and moves
each PDF that passed into the published snapshot with a rename, then replaces the
manifest (written in the staging folder, renamed over the old one) with their sizes and
checksums. See docs/benchmark.md ("Board-report PDFs after the swap").

What holds at every instant, a kill included: every file of the snapshot is either in its
manifest with a checksum that verifies, or is a PDF the manifest names as pending (whole:
it was renamed in, never written in place). A PDF that fails the scan is never moved in:
the manifest records it under ``refused_pdfs`` with the rule it broke, and the step fails
naming the file. A pending PDF is rendered again by the next publication (its report's
PDF is not in the manifest, so it is not carried).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.publish.disclosure import file_sha256
from pipelines.publish.snapshot import MANIFEST_FILE, crash_point

PENDING_KEY = "pending_pdfs"
REFUSED_KEY = "refused_pdfs"
VERDICTS_KEY = "disclosure_verdicts"
#: Where a snapshot's PDFs are staged: beside it in ``snapshots/``, on the same file system
#: (so moving one in is a rename), hidden, and swept by ``prune``.
STAGING_PREFIX = ".pdfs-"


@dataclass
class PdfOutcome:
    """What the step did: PDFs moved into the snapshot, and those refused with why."""

    published: list[str] = field(default_factory=list)
    refused: dict[str, list[str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def staging_folder(snapshot_dir: Path) -> Path:
    return snapshot_dir.parent / f"{STAGING_PREFIX}{snapshot_dir.name}"


def publish_pending_pdfs(
    snapshot_dir: Path,
    *,
    render: Callable[[list[tuple[Path, Path]]], list[tuple[int, float]]],
    scan: Callable[[Mapping[str, Path]], dict[str, list[str]]],
) -> PdfOutcome:
    """Render, scan and publish the PDFs ``snapshot_dir``'s manifest names as pending.

    ``render(jobs)`` renders each (HTML, PDF) pair and returns (pages, seconds) for each
    (:func:`pipelines.report.build.render_pdfs`); ``scan({name: file})`` returns each
    public PDF's disclosure problems (empty: it may be published), with ``name`` its path
    in the snapshot (``public/reports/region.pdf``). A pending PDF already in the snapshot
    (moved in by a run killed before it rewrote the manifest) is scanned and recorded, not
    rendered again. Returns what was published and refused; the manifest says the same.
    """
    manifest = json.loads((snapshot_dir / MANIFEST_FILE).read_text())
    pending = list(manifest.get(PENDING_KEY, []))
    outcome = PdfOutcome()
    staging = staging_folder(snapshot_dir)
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's leftovers
    if not pending:
        return outcome
    staging.mkdir()
    try:
        staged = {name: staging / name.replace("/", "__") for name in pending}
        placed = {name for name in pending if (snapshot_dir / name).is_file()}
        jobs = [
            (name, (snapshot_dir / name).with_suffix(".html"))
            for name in pending
            if name not in placed
        ]
        timings = render([(html, staged[name]) for name, html in jobs])
        for (name, _), (_, seconds) in zip(jobs, timings, strict=True):
            outcome.seconds[name] = round(seconds, 3)
        crash_point("pdfs_rendered")
        files = {name: snapshot_dir / name if name in placed else staged[name] for name in pending}
        public = {name: path for name, path in files.items() if name.startswith("public/")}
        problems = scan(public) if public else {}
        verdicts = dict(manifest.get(VERDICTS_KEY, {}).get("passed", {}))
        for name in pending:
            found = problems.get(name, [])
            if found:
                outcome.refused[name] = found
                continue
            path = files[name]
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
            entry = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
            manifest["files"][name] = entry
            if name in public:
                verdicts[name] = entry["sha256"]
            if name not in placed:
                os.replace(path, snapshot_dir / name)
                crash_point("pdf_placed")
            outcome.published.append(name)
        for name in outcome.refused:
            # Never published: a refused PDF that was moved in by a killed run comes out.
            (snapshot_dir / name).unlink(missing_ok=True)
        _fsync_dirs({(snapshot_dir / name).parent for name in pending})
        manifest[PENDING_KEY] = []
        manifest[REFUSED_KEY] = outcome.refused
        if VERDICTS_KEY in manifest:
            manifest[VERDICTS_KEY]["passed"] = dict(sorted(verdicts.items()))
        new_manifest = staging / MANIFEST_FILE
        new_manifest.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
        with new_manifest.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(new_manifest, snapshot_dir / MANIFEST_FILE)
        _fsync_dirs({snapshot_dir})
        crash_point("pdf_manifest_written")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return outcome


def _fsync_dirs(folders: set[Path]) -> None:
    for folder in sorted(folders):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
