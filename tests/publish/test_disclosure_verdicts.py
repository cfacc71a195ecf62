"""Carried disclosure verdicts: a public site or report file whose bytes (SHA-256) are the
ones it had when it passed the scan in the previous snapshot is not read again; a changed
file is, and so is a carried file that was tampered with (its checksum differs). The scan
runs for real; the test only records which files it reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.publish import disclosure
from pipelines.publish.disclosure import DisclosureRules, scan_context, scan_site
from pipelines.report.build import write_pdf

ORGANISATIONS = [("RZZ01", "Sunnyside Hospitals NHS Trust"), ("RYY01", "Hilltop Care Trust")]
PAGE = "<!doctype html><html><body><h1>{title}</h1><p>Falls per 1,000 bed days.</p></body></html>"


@pytest.fixture
def site(tmp_path) -> Path:
    folder = tmp_path / "public" / "reports"
    folder.mkdir(parents=True)
    (folder / "region.html").write_text(PAGE.format(title="Region"))
    (folder / "icb-QZZ.html").write_text(PAGE.format(title="ICB QZZ"))
    write_pdf(folder / "region.html", folder / "region.pdf")
    return folder


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """The labels of the files the scan reads, in order (the real function still runs)."""
    seen: list[str] = []
    real = disclosure._file_problems

    def recording(path, label, *args):
        seen.append(label)
        return real(path, label, *args)

    monkeypatch.setattr(disclosure, "_file_problems", recording)
    return seen


def _scan(site: Path, before: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    passed: dict[str, str] = {}
    problems = scan_site(
        site, organisations=ORGANISATIONS, rules=DisclosureRules(), passed_before=before,
        passed=passed,
    )  # fmt: skip
    return problems, passed


def test_a_carried_file_is_not_rescanned_and_a_changed_one_is(site, reads):
    problems, first = _scan(site)
    assert problems == []
    assert sorted(first) == ["reports/icb-QZZ.html", "reports/region.html", "reports/region.pdf"]
    assert sorted(reads) == sorted(first)

    reads.clear()
    (site / "icb-QZZ.html").write_text(PAGE.format(title="ICB QZZ, revised"))
    problems, second = _scan(site, first)
    assert problems == []
    assert reads == ["reports/icb-QZZ.html"]  # the PDF and the unchanged page carried
    assert second["reports/region.pdf"] == first["reports/region.pdf"]
    assert second["reports/icb-QZZ.html"] != first["reports/icb-QZZ.html"]


def test_a_tampered_carried_file_is_rescanned_and_fails(site, reads):
    _, first = _scan(site)
    reads.clear()
    # Same name, new bytes naming a provider: the recorded verdict no longer applies.
    (site / "region.html").write_text(PAGE.format(title="Region: Sunnyside Hospitals NHS Trust"))
    write_pdf(site / "region.html", site / "region.pdf")
    problems, second = _scan(site, first)
    assert sorted(reads) == ["reports/region.html", "reports/region.pdf"]
    assert any(p.startswith("reports/region.pdf:") and "organisation" in p for p in problems)
    assert any(p.startswith("reports/region.html:") for p in problems)
    assert "reports/region.pdf" not in second and "reports/region.html" not in second


def test_a_verdict_is_reused_only_under_the_same_rules_and_register():
    base = scan_context(DisclosureRules(), ORGANISATIONS)
    assert scan_context(DisclosureRules(), list(reversed(ORGANISATIONS))) == base
    assert scan_context(DisclosureRules(rounding_base=10), ORGANISATIONS) != base
    assert scan_context(DisclosureRules(), [*ORGANISATIONS, ("RXX01", "New Trust")]) != base
