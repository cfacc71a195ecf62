"""Board-report PDFs published after the snapshot swap (pipelines/publish/pdfs.py).

Publication as the ``published_snapshot`` asset runs it (``derived_outputs`` with
``defer_pdfs``), then the ``board_report_pdfs`` step (``publish_report_pdfs``): the data and
HTML reports are published first with the PDFs named as pending, the PDFs follow with their
checksums; a public PDF that fails the disclosure scan never becomes visible; a kill at any
point of the PDF step leaves a snapshot that verifies, and the step run again finishes it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from test_report_carry import _publish as publish_as_the_asset
from test_report_carry import first_publication

from pipelines.defs.publish import publish_report_pdfs
from pipelines.publish.pdfs import PENDING_KEY, REFUSED_KEY
from pipelines.publish.snapshot import MANIFEST_FILE, PDF_CRASH_POINTS, verify_snapshot
from pipelines.settings import PROJECT_ROOT

PDFS = sorted(
    f"{folder}/{stem}.pdf"
    for folder in ("reports", "public/reports")
    for stem in ("region", "icb-QZZ", "icb-QYY")
)


def _publish(working, published, tiers, run_id):
    return publish_as_the_asset(working, published, tiers, run_id, defer_pdfs=True)


@pytest.fixture
def deferred(tmp_path, monkeypatch):
    return first_publication(tmp_path, monkeypatch, _publish)


def _manifest(snapshot):
    return json.loads((snapshot / MANIFEST_FILE).read_text())


def test_data_is_published_first_and_the_pdfs_follow_with_checksums(deferred):
    snapshot = deferred["first"].snapshot_dir
    assert (deferred["dir"] / "current").resolve() == snapshot
    # Published without PDFs: the HTML (which links to each PDF) is there, the PDFs pending.
    assert deferred["first"].manifest[PENDING_KEY] == PDFS
    assert not list(snapshot.rglob("*.pdf"))
    assert 'href="region.pdf"' in (snapshot / "reports" / "region.html").read_text()
    assert verify_snapshot(snapshot) == []

    outcome = publish_report_pdfs(snapshot)
    assert sorted(outcome.published) == PDFS and outcome.refused == {}
    manifest = _manifest(snapshot)
    assert manifest[PENDING_KEY] == [] and manifest[REFUSED_KEY] == {}
    for name in PDFS:
        assert (snapshot / name).read_bytes()[:5] == b"%PDF-"
        assert manifest["files"][name]["bytes"] == (snapshot / name).stat().st_size
    assert verify_snapshot(snapshot) == []  # every checksum, the PDFs' included
    assert not list(snapshot.parent.glob(".pdfs-*"))
    # Nothing left to do: a second run of the step changes nothing.
    assert publish_report_pdfs(snapshot).published == []

    # The next publication carries the unchanged reports with their PDFs: nothing pending.
    second = _publish(deferred["working"], deferred["dir"], deferred["tiers"], "run-two-bbbb")
    assert second.manifest[PENDING_KEY] == []
    for name in PDFS:
        assert (second.snapshot_dir / name).stat().st_ino == (snapshot / name).stat().st_ino
    assert verify_snapshot(second.snapshot_dir) == []


def test_a_report_whose_pdf_never_came_is_rendered_by_the_next_publication(deferred):
    """The PDF step never ran (killed, failed): the next publication cannot carry those
    reports' PDFs (not in the manifest), so their HTML is rendered again and the PDFs are
    pending again; nothing else differs."""
    second = _publish(deferred["working"], deferred["dir"], deferred["tiers"], "run-two-cccc")
    assert second.manifest[PENDING_KEY] == PDFS
    assert "run-two-cccc" in (second.snapshot_dir / "reports" / "region.html").read_text()
    assert verify_snapshot(second.snapshot_dir) == []


def test_a_public_pdf_that_fails_the_scan_is_not_published(deferred):
    """A provider's name in a public report (here planted in its HTML after the pre-swap
    scan, standing for a renderer that adds what the HTML did not show) is found in the PDF
    text: that PDF never enters the snapshot, the manifest says why, the rest are
    published, and the snapshot still verifies."""
    snapshot = deferred["first"].snapshot_dir
    page = snapshot / "public" / "reports" / "icb-QZZ.html"
    html = page.read_text()
    page.unlink()  # published files are links to no one here; replaced, not edited in place
    page.write_text(html.replace("</h1>", " Sunnyside Hospitals NHS Trust</h1>", 1))
    manifest = _manifest(snapshot)
    manifest["files"]["public/reports/icb-QZZ.html"] = {
        "bytes": page.stat().st_size,
        "sha256": __import__("hashlib").sha256(page.read_bytes()).hexdigest(),
    }
    (snapshot / MANIFEST_FILE).write_text(json.dumps(manifest))

    outcome = publish_report_pdfs(snapshot)
    bad = "public/reports/icb-QZZ.pdf"
    assert list(outcome.refused) == [bad]
    assert "sunnyside hospitals nhs trust" in " ".join(outcome.refused[bad]).lower()
    assert "organisation code(s) or name(s)" in " ".join(outcome.refused[bad])
    assert not (snapshot / bad).exists()
    assert sorted(outcome.published) == [p for p in PDFS if p != bad]
    manifest = _manifest(snapshot)
    assert list(manifest[REFUSED_KEY]) == [bad] and bad not in manifest["files"]
    assert verify_snapshot(snapshot) == []


RUN_PDF_STEP = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from pipelines.defs.publish import publish_report_pdfs
    publish_report_pdfs(Path(sys.argv[1]))
    """
)


@pytest.mark.parametrize("point", PDF_CRASH_POINTS)
def test_a_pdf_step_killed_at_any_point_leaves_a_whole_snapshot(deferred, point):
    snapshot = deferred["first"].snapshot_dir
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    killed = subprocess.run(
        [sys.executable, "-c", RUN_PDF_STEP, str(snapshot)],
        env={**env, "SAFETY_OBS_CRASH_AT": point},
        capture_output=True,
        cwd=PROJECT_ROOT,
    )
    assert killed.returncode == 137, killed.stderr.decode()[-2000:]
    assert (deferred["dir"] / "current").resolve() == snapshot
    assert verify_snapshot(snapshot) == [], point
    placed = sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*.pdf"))
    pending = _manifest(snapshot)[PENDING_KEY]
    assert placed == (
        [] if point == "pdfs_rendered" else PDFS[:1] if point == "pdf_placed" else PDFS
    )
    assert pending == ([] if point == "pdf_manifest_written" else PDFS)
    again = subprocess.run(
        [sys.executable, "-c", RUN_PDF_STEP, str(snapshot)], env=env, cwd=PROJECT_ROOT
    )
    assert again.returncode == 0
    assert _manifest(snapshot)[PENDING_KEY] == []
    assert sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*.pdf")) == PDFS
    assert verify_snapshot(snapshot) == []
    assert not list(snapshot.parent.glob(".pdfs-*"))
