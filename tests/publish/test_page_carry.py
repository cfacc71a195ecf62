"""Organisation pages carried by the fingerprint of their inputs (docs/dashboard.md,
"Carried pages"): published twice, a page whose rows, names, code and context did not
change is the previous snapshot's very file (same inode) and is never rendered; a page
whose inputs changed is rendered again; and either way the site is byte for byte the one
a publication from scratch writes. Publication runs as the ``published_snapshot`` asset
runs it (``derived_outputs``), on the board reports' fixture snapshot (real SPC rows).
Each test publishes several times in a row (a publication also documents the working file
with dbt: the slow part)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "report"))

from test_report_carry import _publish, change_riverside_falls, first_publication

from pipelines.dashboard import build
from pipelines.dashboard.build import build_site
from pipelines.dashboard.carry import RENDERED_FROM_KEY
from pipelines.publish.snapshot import verify_snapshot

#: The fixture's organisation pages (measure, ICB): two measures with organisations, two ICBs.
PAGES = [f"site/measures/{m}/{i}.html" for m in ("FALLS", "NEWS2") for i in ("QYY", "QZZ")]


def _companions(page: str) -> list[str]:
    stem = page.removesuffix(".html")
    return [page, f"{stem}.csv", f"{stem}.data.js"]


def _site_files(root: Path) -> dict[str, bytes]:
    """Every file of both tiers' sites under ``root`` (a snapshot), by name."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for folder in (root / "site", root / "public" / "site")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _inode(snapshot: Path, name: str) -> int:
    return (snapshot / name).stat().st_ino


def _assert_as_from_scratch(snapshot: Path, scratch: Path) -> None:
    """Both tiers' sites of ``snapshot`` are byte for byte (a ``diff -r``) the sites built
    from scratch, without any previous snapshot, from the snapshot's own warehouse files
    (beside its reports and data dictionary, which the pages link to)."""
    for tier, folder in (("internal", Path()), ("public", Path("public"))):
        (scratch / folder).mkdir(parents=True)
        for linked in ("reports", "dbt_docs"):
            if (snapshot / folder / linked).exists():
                (scratch / folder / linked).symlink_to(snapshot / folder / linked)
        build_site(snapshot / folder / "warehouse.duckdb", scratch / folder / "site", tier)
    ours, theirs = _site_files(snapshot), _site_files(scratch)
    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if ours[name] != theirs[name]] == []


@pytest.fixture
def published(tmp_path, monkeypatch):
    return first_publication(tmp_path, monkeypatch)


def _again(published: dict, run_id: str):
    """Publish the working file again, from the current snapshot."""
    return _publish(published["working"], published["dir"], published["tiers"], run_id)


def test_pages_whose_rows_or_names_changed_are_rendered_the_others_carried(published, tmp_path):
    """First publication: every page rendered, its fingerprint recorded. Then RYY01's
    latest FALLS value changes (Wyeshire's new file): FALLS/QYY is rendered again (it would
    be carried, stale, if the fingerprint left out the page's rows), the three other
    organisation pages are the first snapshot's files. Then Hilltop's register name
    changes: both measures' Zedshire pages name it and are rendered again, the Wyeshire
    pages carried. Each time the sites are those of a build from scratch."""
    first = published["first"]
    assert first.manifest["carried_pages"] == []
    recorded = first.manifest[RENDERED_FROM_KEY]
    assert sorted(recorded) == PAGES
    assert len({entry["fingerprint"] for entry in recorded.values()}) == len(PAGES)
    # The measure page's entry for each page, kept for the page's next carry.
    assert recorded["site/measures/FALLS/QZZ.html"]["entry"]["count"] == 3
    assert verify_snapshot(first.snapshot_dir) == []

    change_riverside_falls(published["working"])
    second = _again(published, "run-two-bbbb")
    rendered = "site/measures/FALLS/QYY.html"
    assert second.manifest["carried_pages"] == sorted(p for p in PAGES if p != rendered)
    for page in PAGES:
        for name in _companions(page):
            same = _inode(second.snapshot_dir, name) == _inode(first.snapshot_dir, name)
            assert same == (page != rendered), name
            # A carried file keeps the checksum the first snapshot recorded for it.
            if page != rendered:
                assert second.manifest["files"][name] == first.manifest["files"][name]
    old, new = recorded, second.manifest[RENDERED_FROM_KEY]
    assert [p for p in PAGES if old[p]["fingerprint"] != new[p]["fingerprint"]] == [rendered]
    assert (second.snapshot_dir / rendered).read_bytes() != (
        first.snapshot_dir / rendered
    ).read_bytes()
    _assert_as_from_scratch(second.snapshot_dir, tmp_path / "scratch-two")
    assert verify_snapshot(second.snapshot_dir) == []
    assert verify_snapshot(first.snapshot_dir) == []

    with duckdb.connect(str(published["working"])) as con:
        con.execute(
            "update marts.dim_organisation set org_name = 'HILLTOP AND VALE NHS TRUST'"
            " where org_code = 'RZZ02'"
        )
    third = _again(published, "run-three-cc")
    assert third.manifest["carried_pages"] == [p for p in PAGES if "QYY" in p]
    assert "Hilltop and Vale" in (third.snapshot_dir / "site/measures/FALLS/QZZ.html").read_text()
    _assert_as_from_scratch(third.snapshot_dir, tmp_path / "scratch-three")
    assert verify_snapshot(third.snapshot_dir) == []


def test_a_missing_file_no_fingerprints_or_other_templates_mean_rendering(
    published, tmp_path, monkeypatch
):
    """The previous snapshot lost one page's data file (its manifest still lists it): that
    page is rendered, every other one carried, nothing crashes and no file of the previous
    snapshot is written. A previous manifest without fingerprints (published before they
    existed): nothing carried. A comment added to the organisation page's template changes
    no page's bytes but does change the render digest: nothing carried by fingerprint
    (byte-identical files are still shared by the publication's checksum comparison)."""
    first = published["first"].snapshot_dir
    lost = "site/measures/NEWS2/QZZ.data.js"
    (first / lost).unlink()
    kept = {n: (first / n).read_bytes() for n in _companions("site/measures/NEWS2/QZZ.html")[:2]}
    second = _again(published, "run-two-bbbb")
    assert second.manifest["carried_pages"] == [
        p for p in PAGES if p != "site/measures/NEWS2/QZZ.html"
    ]
    assert {n: (first / n).read_bytes() for n in kept} == kept
    _assert_as_from_scratch(second.snapshot_dir, tmp_path / "scratch-two")
    assert verify_snapshot(second.snapshot_dir) == []
    assert verify_snapshot(first) == [f"{lost}: missing"]

    manifest_path = second.snapshot_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest[RENDERED_FROM_KEY]
    manifest_path.write_text(json.dumps(manifest))
    third = _again(published, "run-three-cc")
    assert third.manifest["carried_pages"] == []
    assert sorted(third.manifest[RENDERED_FROM_KEY]) == PAGES

    templates = tmp_path / "templates"
    shutil.copytree(build.TEMPLATES, templates)
    page = templates / "organisations.html.j2"
    page.write_text(page.read_text() + "{# reviewed #}\n")
    monkeypatch.setattr(build, "TEMPLATES", templates)
    fourth = _again(published, "run-four-dd")
    assert fourth.manifest["carried_pages"] == []
    old, new = third.manifest[RENDERED_FROM_KEY], fourth.manifest[RENDERED_FROM_KEY]
    assert all(old[p]["fingerprint"] != new[p]["fingerprint"] for p in PAGES)
    _assert_as_from_scratch(fourth.snapshot_dir, tmp_path / "scratch-four")
    assert verify_snapshot(fourth.snapshot_dir) == []
