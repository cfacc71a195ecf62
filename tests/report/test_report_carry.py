"""Board reports whose inputs did not change are carried from the current snapshot, not
rendered again: published twice with one ICB's organisation changed, only that ICB's
internal report is rendered; every other report (HTML, organisation pages, PDF) is the
previous snapshot's very file (same inode), and every checksum of the manifest verifies.
Publication runs as the ``published_snapshot`` asset runs it (``derived_outputs``)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from report_fixtures import make_report_warehouse, public_warehouse

from pipelines.defs.publish import derived_outputs
from pipelines.publish.snapshot import publish, verify_snapshot
from pipelines.report import build as report_build
from pipelines.report.build import INPUTS_FILE

INTERNAL_REPORTS = ["region", "icb-QZZ", "icb-QYY"]


def _working(fixture: Path, target: Path) -> tuple[Path, dict[str, dict[str, str]]]:
    """A working file holding the fixture snapshot's tables (internal in ``marts``, public
    in ``public``) and the tiers that publish them."""
    tiers: dict[str, dict[str, str]] = {"internal": {}, "public": {}}
    with duckdb.connect(str(target)) as con:
        for tier, schema, source in (
            ("internal", "marts", fixture),
            ("public", "public", public_warehouse(fixture)),
        ):
            con.execute(f"create schema {schema}")
            con.execute(f"attach '{source}' as src (read_only)")
            for (table,) in con.execute(
                "select table_name from duckdb_tables() where database_name = 'src'"
            ).fetchall():
                con.execute(f"create table {schema}.{table} as select * from src.main.{table}")
                tiers[tier][table] = f"{schema}.{table}"
            con.execute("detach src")
    return target, tiers


def _publish(working: Path, published: Path, tiers: dict, run_id: str, *, defer_pdfs=False):
    return publish(
        working,
        published,
        tiers,
        run_id=run_id,
        check_results=[],
        keep=5,
        extras=derived_outputs(run_id, defer_pdfs=defer_pdfs),
    )


def _files(snapshot: Path) -> dict[str, Path]:
    """Every report file of both tiers, by its name in the snapshot."""
    return {
        p.relative_to(snapshot).as_posix(): p
        for folder in (snapshot / "reports", snapshot / "public" / "reports")
        for p in sorted(folder.iterdir())
        if p.suffix in (".html", ".pdf") and p.name != "index.html"
    }


def first_publication(tmp_path, monkeypatch, publish_once=None) -> dict:
    """The fixture snapshot published once (by ``publish_once``, default :func:`_publish`)
    from a working file of its own: the working file, tiers, publication and folder."""
    monkeypatch.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("SAFETY_OBS_PUBLISHED_DIR", str(tmp_path / "published"))
    monkeypatch.setenv("SAFETY_OBS_REPORT_WORKERS", "2")
    # Publication also documents the working file (dbt docs generate): point it at this one.
    monkeypatch.setenv("SAFETY_OBS_WORKING_DB", str(tmp_path / "working.duckdb"))
    fixture = make_report_warehouse(tmp_path / "fixture" / "warehouse.duckdb")
    working, tiers = _working(fixture, tmp_path / "working.duckdb")
    first = (publish_once or _publish)(working, tmp_path / "published", tiers, "run-one-aaaa")
    return {"working": working, "tiers": tiers, "first": first, "dir": tmp_path / "published"}


def change_riverside_falls(working: Path) -> None:
    """One organisation of QYY (RYY01) reports a different latest FALLS value (an ICB's
    changed file)."""
    with duckdb.connect(str(working)) as con:
        updated = con.execute(
            "update marts.fct_spc set value = value * 1.5 where level = 'organisation'"
            " and series_key = 'RYY01' and measure_code = 'FALLS'"
            " and period = (select max(period) from marts.fct_spc where series_key = 'RYY01')"
        ).fetchone()[0]
        assert updated == 1


@pytest.fixture
def published(tmp_path, monkeypatch):
    return first_publication(tmp_path, monkeypatch)


def test_only_the_changed_icbs_report_is_rendered_again(published, monkeypatch):
    first = published["first"].snapshot_dir
    before = _files(first)
    # Internal: three reports, two ICBs' organisation pages, three PDFs; public: three of each.
    assert len(before) == 8 + 6
    change_riverside_falls(published["working"])
    # The unchanged reports are carried on their input fingerprints, before any of their
    # organisations is read (pipelines/report/carry.py): only QYY's are.
    loaded: list[str] = []
    load = report_build.load_icb_organisations

    def loading(con, site, icb):
        loaded.append(icb)
        return load(con, site, icb)

    monkeypatch.setattr(report_build, "load_icb_organisations", loading)
    second = _publish(published["working"], published["dir"], published["tiers"], "run-two-bbbb")
    after = _files(second.snapshot_dir)
    assert sorted(after) == sorted(before)

    rendered = {"reports/icb-QYY.html", "reports/icb-QYY-organisations.html",
                "reports/icb-QYY.pdf"}  # fmt: skip
    for name, path in after.items():
        same = path.stat().st_ino == before[name].stat().st_ino
        assert same == (name not in rendered), name
    # A carried report shows the run that rendered it; the rendered one this run.
    assert "run-one-aaaa" in after["reports/icb-QZZ.html"].read_text()
    assert "run-two-bbbb" in after["reports/icb-QYY.html"].read_text()
    assert "run-two-bbbb" not in after["public/reports/icb-QYY.html"].read_text()
    # The fingerprints published with each snapshot: only QYY's internal one moved.
    old = json.loads((first / "reports" / INPUTS_FILE).read_text())
    new = json.loads((second.snapshot_dir / "reports" / INPUTS_FILE).read_text())
    assert [k for k in INTERNAL_REPORTS if old[k] != new[k]] == ["icb-QYY"]
    assert verify_snapshot(second.snapshot_dir) == []
    assert verify_snapshot(first) == []
    assert loaded == ["QYY"]
    # Carried files kept their checksums (the manifest entry is the previous one's).
    for name in after:
        if name not in rendered:
            assert second.manifest["files"][name] == published["first"].manifest["files"][name]


def test_a_report_altered_after_publication_is_rendered_again(published):
    """A previous PDF that no longer matches its manifest is not trusted: the report is
    rendered again (and nothing changed in the data, so nothing else is)."""
    first = published["first"].snapshot_dir
    pdf = first / "reports" / "icb-QZZ.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"\n% altered\n")
    second = _publish(published["working"], published["dir"], published["tiers"], "run-two-cccc")
    after, before = _files(second.snapshot_dir), _files(first)
    changed = sorted(n for n, p in after.items() if p.stat().st_ino != before[n].stat().st_ino)
    assert changed == [
        "reports/icb-QZZ-organisations.html",
        "reports/icb-QZZ.html",
        "reports/icb-QZZ.pdf",
    ]
    assert after["reports/icb-QZZ.pdf"].read_bytes()[:5] == b"%PDF-"
    assert verify_snapshot(second.snapshot_dir) == []


def test_without_pdfs_no_pdf_is_made_or_carried(published, monkeypatch):
    """``board_report_pdf`` off: HTML only, and a report's fingerprint differs from the one
    with a PDF, so the previous reports (with their PDFs) are not carried."""
    monkeypatch.setenv("SAFETY_OBS_BOARD_REPORT_PDF", "false")
    second = _publish(published["working"], published["dir"], published["tiers"], "run-two-dddd")
    reports = second.snapshot_dir / "reports"
    assert not list(reports.glob("*.pdf")) and not list((reports.parent / "public").rglob("*.pdf"))
    assert "run-two-dddd" in (reports / "icb-QZZ.html").read_text()
    assert 'href="icb-QZZ.pdf"' not in (reports / "index.html").read_text()
    assert verify_snapshot(second.snapshot_dir) == []
