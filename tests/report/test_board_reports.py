"""The board reports (pipelines/report): files, figures in the PDF, tiers, disclosure."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from report_fixtures import (
    ORG_CODES,
    SMALL_EVENTS_SERIES,
    make_report_warehouse,
    public_warehouse,
)

from pipelines.dashboard import build_site
from pipelines.dashboard.build import display_name
from pipelines.dashboard.model import ValueFormat
from pipelines.months import financial_year
from pipelines.publish.disclosure import DisclosureRules, scan_site
from pipelines.report import build_reports
from pipelines.report.__main__ import main
from pipelines.report.build import CountPolicy, in_words

REPORTS = {"region", "icb-QZZ", "icb-QYY"}
ORGANISATIONS = {
    "QZZ": {"RZZ01", "RZZ02", "VZZ01"},
    "QYY": {"RYY01"},
}
PDFTOTEXT = shutil.which("pdftotext")
needs_pdftotext = pytest.mark.skipif(
    PDFTOTEXT is None, reason="pdftotext (Debian poppler-utils; make test installs it)"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """Both tiers' reports, with PDFs, from the fixture snapshot; build times kept."""
    root = tmp_path_factory.mktemp("reports")
    warehouse = make_report_warehouse(root / "snapshot" / "warehouse.duckdb")
    out = {"warehouse": warehouse, "seconds": {}}
    for tier, source in (("internal", warehouse), ("public", public_warehouse(warehouse))):
        started = time.perf_counter()
        index = build_reports(
            source, source.parent / "reports", tier, region_name="Test Region", run_id="run-abc"
        )
        out["seconds"][tier] = time.perf_counter() - started
        out[tier] = index.parent
    print(f"board reports built in {out['seconds']}")  # shown with -s
    return out


def _pdf_text(pdf: Path) -> str:
    return subprocess.run(
        [PDFTOTEXT, pdf, "-"], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def _squash(text: str) -> str:
    return " ".join(text.split())


class _Text(HTMLParser):
    """A page's visible text outside charts and icons (``<svg>``: axis ticks, not counts)
    and styles, and every ``data-*-count`` attribute."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.counts: list[tuple[str, str]] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("svg", "style"):
            self._skip += 1
        for name, value in attrs:
            if name.startswith("data-") and name.endswith("-count"):
                self.counts.append((name, value or ""))

    def handle_endtag(self, tag):
        if tag in ("svg", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.texts.append(data)


def _parse(page: Path) -> _Text:
    parser = _Text()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


# A whole number standing alone, with its sign: not part of a decimal (3.45), a date
# (2026-12-01), a time, an id (CHG-002), a unit (2px) or a percentage (5%).
_STANDALONE = re.compile(
    r"(?<![\w.:/+\-−])(?<!\d,)([+\-−]?)(\d{1,3}(?:,\d{3})+|\d+)(?!\.\d|,\d|[\w:/%])"
)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2})?")


def _small_integers(text: str) -> list[str]:
    text = _ISO.sub(" ", text)
    return [
        sign + digits
        for sign, digits in _STANDALONE.findall(text)
        if 1 <= int(digits.replace(",", "")) <= 7
    ]


def _impact(warehouse: Path, table: str, level: str, key: str, measure: str) -> dict:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cursor = con.execute(
            f"select * from {table} where level = ? and series_key = ? and measure_code = ?",
            [level, key, measure],
        )
        columns = [d[0] for d in cursor.description]
        return dict(zip(columns, cursor.fetchone(), strict=True))


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["internal", "public"])
def test_every_report_has_html_and_pdf_quickly(built, tier):
    folder = built[tier]
    assert {p.stem for p in folder.glob("*.pdf")} == REPORTS
    # The internal ICB reports' organisation chart pages: HTML only (see pipelines/report).
    companions = {f"{r}-organisations" for r in REPORTS if r.startswith("icb-")}
    expected = REPORTS | {"index"} | (companions if tier == "internal" else set())
    assert {p.stem for p in folder.glob("*.html")} == expected
    for name in REPORTS:
        assert (folder / f"{name}.pdf").read_bytes()[:5] == b"%PDF-"
    index = (folder / "index.html").read_text()
    for name in REPORTS:
        assert f'href="{name}.html"' in index and f'href="{name}.pdf"' in index
    # Three reports with their PDFs in seconds (the first PDF of a process loads fonts).
    assert built["seconds"][tier] < 60


def test_reports_are_self_contained(built):
    """Offline: no URL anywhere but the links between the reports themselves."""
    for tier in ("internal", "public"):
        for page in built[tier].glob("*.html"):
            text = page.read_text()
            assert "http://" not in text and "https://" not in text, page
            assert "@font-face" not in text and "<link" not in text, page
            for href in re.findall(r'href="([^"#]+)', text):
                assert (page.parent / href).is_file(), (page, href)


@needs_pdftotext
@pytest.mark.parametrize(
    ("tier", "report", "level", "key"),
    [
        ("internal", "region", "region", "region"),
        ("internal", "icb-QZZ", "icb", "QZZ"),
        ("internal", "icb-QZZ", "organisation", "RZZ01"),
        ("public", "region", "region", "region"),
        ("public", "icb-QZZ", "icb", "QZZ"),
        ("public", "icb-QYY", "icb", "QYY"),
    ],
)
def test_pdf_shows_the_impact_figures_as_the_html_does(built, tier, report, level, key):
    warehouse = built["warehouse"] if tier == "internal" else public_warehouse(built["warehouse"])
    table = "fct_programme_impact" if tier == "internal" else "pub_programme_impact"
    # An organisation's figures are on its chart page (the companion HTML); the PDF has its
    # summary row.
    page = f"{report}-organisations" if level == "organisation" else report
    html = (built[tier] / f"{page}.html").read_text()
    pdf = _squash(_pdf_text(built[tier] / f"{report}.pdf"))
    if level == "organisation":
        pdf = _squash(re.sub(r"<[^>]+>", " ", html))
    falls = ValueFormat.for_measure("per 1000 occupied bed days", 1000)
    news2 = ValueFormat.for_measure("%", 100)
    for measure, fmt in (("FALLS", falls), ("NEWS2", news2)):
        row = _impact(warehouse, table, level, key, measure)
        baseline, last_12 = fmt.value(row["baseline_mean"]), fmt.value(row["last_12_value"])
        assert f'<span class="fig baseline-mean">{baseline}</span>' in html
        assert f'<span class="fig last-12-value">{last_12}</span>' in html
        assert baseline in pdf and last_12 in pdf, (measure, baseline, last_12)
    if level == "organisation":  # its page has the compact impact row only
        return
    # Falls: the sustained signal and the recorded change it follows, as the table has them
    # (Zedshire's improvement follows CHG-002), and the events avoided.
    row = _impact(warehouse, table, level, key, "FALLS")
    if row["signal"]:
        assert f"Sustained {row['signal']} since" in pdf
        if row["attributed_change_id"]:
            follows = f"Follows {row['attributed_change_id']}, "
            assert follows + "May 2024: Falls prevention bundle rolled out across Zedshire" in pdf
        else:
            assert "No recorded change in the months before it" in pdf
    if key == "QZZ":
        assert row["signal"] == "improvement" and row["attributed_change_id"] == "CHG-002"
    if row["events_better"] and row["events_better"] > 7:
        better = f"{round(row['events_better']):,}"
        assert f'data-better-count="{better}"' in html
        if level != "organisation":  # organisation pages have the compact row only
            assert f"{better} fewer than the baseline rate predicts" in pdf
    assert "assumes the baseline rate would otherwise have held" in pdf
    assert "Test Region" in pdf and "run-abc" in pdf and "Page 1 of" in pdf
    assert "Data Apr 2023 to Mar 2025" in pdf


@needs_pdftotext
def test_internal_icb_report_has_a_page_per_organisation(built):
    """The PDF lists every organisation of the ICB (a summary row per measure); their chart
    pages are in the companion HTML, linked from the report and the index."""
    for icb, codes in ORGANISATIONS.items():
        html = (built["internal"] / f"icb-{icb}.html").read_text()
        pages = (built["internal"] / f"icb-{icb}-organisations.html").read_text()
        pdf = _squash(_pdf_text(built["internal"] / f"icb-{icb}.pdf"))
        sections = set(re.findall(r'aria-labelledby="h-org-(\w+)"', pages))
        assert sections == codes
        assert 'class="organisation"' not in html  # no chart pages in the board report
        assert f'href="icb-{icb}-organisations.html"' in html
        for code in codes:
            assert code in pdf
        others = set(ORG_CODES) - codes
        assert not any(f'"h-org-{c}"' in pages for c in others)
        assert not any(c in pdf for c in others)
    assert "Sunnyside Hospitals NHS Trust" in _squash(_pdf_text(built["internal"] / "icb-QZZ.pdf"))
    region = (built["internal"] / "region.html").read_text()
    assert 'class="organisation' not in region
    assert not (built["internal"] / "region-organisations.html").exists()
    index = (built["internal"] / "index.html").read_text()
    assert 'href="icb-QZZ-organisations.html"' in index
    # The organisation-scoped change is internal: shown on Sunnyside's page.
    assert "CHG-001" in (built["internal"] / "icb-QZZ-organisations.html").read_text()


def _public_files(built) -> list[tuple[Path, str]]:
    files = []
    for path in sorted(built["public"].iterdir()):
        if path.suffix == ".html":
            files.append((path, path.read_text()))
        elif path.suffix == ".pdf" and PDFTOTEXT:
            files.append((path, _pdf_text(path)))
    return files


def test_public_reports_show_no_organisation(built):
    names = [display_name(n, c) for c, n in _org_register(built)]
    for path, text in _public_files(built):
        squashed = _squash(text)
        for code in ORG_CODES:
            assert not re.search(rf"(?<![A-Za-z0-9]){code}(?![A-Za-z0-9])", text), (path, code)
        for name in names:
            assert name.lower() not in squashed.lower(), (path, name)
        assert "CHG-001" not in text and "huddles" not in text, path  # organisation-scoped
        assert "h-org-" not in text and "organisation-level figures" not in text, path
    # And the publication's own scan, with the register, agrees (PDF text included).
    assert scan_site(built["public"], organisations=_org_register(built)) == []


def _org_register(built) -> list[tuple[str, str]]:
    with duckdb.connect(str(built["warehouse"]), read_only=True) as con:
        return con.execute(
            "select org_code, org_name from dim_organisation where sector_code <> 'icb'"
        ).fetchall()


def test_public_reports_print_no_small_count(built):
    rules = DisclosureRules()
    for page in built["public"].glob("*.html"):
        parsed = _parse(page)
        # Every count the report prints (event counts; chart points' data-n/data-d are the
        # published, already controlled counts and the scan checks them) is a suppression
        # marker, zero or above the threshold.
        for name, value in parsed.counts:
            if value in ("suppressed", "–"):
                continue
            number = abs(int(value.replace(",", "")))
            assert number == 0 or number > rules.max_suppressed_count, (page, name, value)
        # No whole number from 1 to 7 anywhere in the text (outside the charts' axes).
        assert _small_integers(" ".join(parsed.texts)) == [], page
    # The planted small event count is printed as suppressed, not as 5.
    assert SMALL_EVENTS_SERIES[1].startswith("QZZ|")
    qzz = _parse(built["public"] / "icb-QZZ.html")
    assert ("data-better-count", "suppressed") in qzz.counts
    if PDFTOTEXT:
        for pdf in built["public"].glob("*.pdf"):
            text = re.sub(r"Page \d+ of \d+", " ", _pdf_text(pdf))
            # Lines that hold a lone number are chart axis ticks (values, not counts).
            lines = [line for line in text.splitlines() if not re.fullmatch(r"\s*[\d.,]+\s*", line)]
            assert _small_integers("\n".join(lines)) == [], pdf


def test_small_integer_finder():
    assert _small_integers("3 falls, -5 events, +2") == ["3", "-5", "+2"]
    assert _small_integers("3.45 per 1000; 5% ; 2026-12-01 18:04; CHG-002; FY 2024/25") == []
    assert _small_integers("1,234 and 12 and 0") == []
    assert _small_integers("rounded to the nearest 5.") == ["5"]


def test_count_policy_and_formats():
    rules = DisclosureRules()
    public, internal = CountPolicy("public", rules), CountPolicy("internal", rules)
    assert [public.text(v) for v in (0, 5, -5, 7.4, 10, -90, None)] == [
        "0", "suppressed", "suppressed", "suppressed", "10", "-90", "–",
    ]  # fmt: skip
    assert internal.text(5) == "5" and internal.text(1234.4) == "1,234"
    assert financial_year(2024) == "2024/25"
    assert financial_year("2024/25") == "2024/25"
    from datetime import date

    assert financial_year(date(2025, 3, 1)) == "2024/25"
    assert in_words(5) == "five" and in_words(12) == "12"


def test_reports_without_the_impact_tables_say_so(tmp_path):
    warehouse = make_report_warehouse(tmp_path / "warehouse.duckdb", impact=False)
    for tier, source in (("internal", warehouse), ("public", public_warehouse(warehouse))):
        index = build_reports(source, tmp_path / f"out-{tier}", tier, region_name="R", pdf=False)
        html = (index.parent / "icb-QZZ.html").read_text()
        assert "Programme impact figures are not in this publication yet" in html
        assert "No programme impact figures for this series" in html
        assert "Special cause improvement since" in html  # the charts are still there
        assert not list(index.parent.glob("*.pdf"))


def test_public_reports_refuse_the_internal_file(built, tmp_path):
    with pytest.raises(ValueError, match="organisation-level data"):
        build_reports(built["warehouse"], tmp_path / "wrong", "public", region_name="R")
    assert not (tmp_path / "wrong").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        build_reports(public_warehouse(built["warehouse"]), tmp_path / "other", "public")


def test_command_line_builds_reports(built, tmp_path, capsys):
    source = public_warehouse(built["warehouse"])
    argv = ["--warehouse", str(source), "--out", str(tmp_path / "r"), "--tier", "public"]
    assert main([*argv, "--region-name", "R", "--no-pdf"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / "index.html")
    assert (tmp_path / "r" / "icb-QZZ.html").is_file()


def test_dashboard_home_links_to_the_reports_beside_it(built, tmp_path):
    """As a publication lays them out: <tier>/reports beside <tier>/site."""
    source = public_warehouse(built["warehouse"])
    tier_dir = tmp_path / "public"
    build_reports(source, tier_dir / "reports", "public", region_name="R", pdf=False)
    index = build_site(source, tier_dir / "site", "public")
    assert 'href="../reports/index.html"' in index.read_text()
    alone = build_site(source, tmp_path / "alone" / "site", "public")
    assert "../reports/index.html" not in alone.read_text()


def test_scan_finds_an_organisation_in_a_public_pdf(tmp_path):
    from pipelines.report.build import write_pdf

    folder = tmp_path / "reports"
    folder.mkdir()
    page = folder / "leak.html"
    page.write_text("<html><body><p>Falls at RZZ01 fell.</p></body></html>")
    write_pdf(page, folder / "leak.pdf")
    page.unlink()
    problems = scan_site(folder, organisations=[("RZZ01", "SUNNYSIDE HOSPITALS NHS TRUST")])
    assert problems and "leak.pdf" in problems[0] and "RZZ01" in problems[0]


def test_without_a_pdf_renderer_the_reports_are_html_only(built, tmp_path, monkeypatch):
    import pipelines.report.build as report_build

    monkeypatch.setattr(report_build, "pdf_renderer_available", lambda: False)
    index = build_reports(public_warehouse(built["warehouse"]), tmp_path / "r", "public")
    assert not list(index.parent.glob("*.pdf"))
    assert ".pdf" not in index.read_text()
    assert (index.parent / "region.html").is_file()
    assert 'href="region.pdf"' not in (index.parent / "region.html").read_text()


def test_impact_wording_from_a_row():
    from datetime import date

    from pipelines.dashboard.build import SiteMeasure
    from pipelines.report.build import impact_context

    fmt = ValueFormat.for_measure("%", 100)
    measure = SiteMeasure("M", "M", "p", "", "", "%", "increase", "p", None, fmt)
    row = {
        "improvement_direction": "increase",
        "baseline_from": date(2023, 4, 1),
        "baseline_to": date(2024, 3, 1),
        "baseline_mean": 80.0,
        "last_12_value": 86.0,
        "improvement_abs": 6.0,
        "improvement_rel": 0.075,
        "current_segment_start": date(2024, 6, 1),
        "current_mean": 86.5,
        "signal": "concern",
        "signal_start": date(2024, 9, 1),
        "fy_current": 2025,
        "fy_current_months": 5,
        "fy_current_value": 87.0,
        "fy_previous": 2024,
        "fy_previous_value": 85.0,
        "expected_events": 800.0,
        "observed_events": 860.0,
        "excess_events": 60.0,
        "events_better": 60.0,
    }
    counts = CountPolicy("internal", DisclosureRules())
    text = impact_context(row, measure, counts, {}, date(2022, 4, 1))
    assert text["change"] == "6.0 percentage points (7.5%) better than the baseline"
    assert text["rebased"] and text["current_start"] == "Jun 2024"
    assert text["signal"] == "Sustained concern since Sep 2024"
    assert text["follows"] == "No recorded change in the months before it"
    assert text["fy"]["current"] == "FY 2025/26 (part year)"
    assert text["fy"]["change"] == "up 2.0 percentage points"
    assert text["events"]["summary"] == "60 more than the baseline rate predicts"
    unchanged = impact_context(row, measure, counts, {}, date(2024, 6, 1))
    assert not unchanged["rebased"]
    assert impact_context(None, measure, counts, {}) is None
