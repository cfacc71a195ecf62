"""The site built from a snapshot with the change register, segments and impact tables
(docs/programme-impact.md): markers and segments on the measure pages, the CSV beside every
chart, the programme impact page per tier, and a snapshot from before those tables existed."""

from __future__ import annotations

import csv
import html
import re
from pathlib import Path

import duckdb
import pytest
from dashboard_fixtures import (
    ORGANISATIONS,
    make_published_warehouse,
    organisation_charts,
    public_warehouse,
)

from pipelines.dashboard import build_site
from pipelines.publish.disclosure import DisclosureRules, scan_site


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return make_published_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb")


@pytest.fixture(scope="module")
def sites(warehouse, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sites")
    return {
        "internal": build_site(warehouse, out / "internal").parent,
        "public": build_site(public_warehouse(warehouse), out / "public", "public").parent,
    }


_FIGURE = re.compile(
    r'<figure class="chart-card[^"]*" id="[^"]*" data-level="([^"]+)" '
    r'data-series-key="([^"]+)" data-measure="([^"]+)".*?</figure>',
    re.S,
)


def _cards(page: Path) -> dict[tuple[str, str, str], str]:
    return {m.groups(): m.group(0) for m in _FIGURE.finditer(page.read_text())}


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_measure_page_draws_segments_markers_and_baseline(sites):
    cards = _cards(sites["internal"] / "measures" / "FALLS.html")
    wyeshire = cards[("icb", "QYY", "FALLS")]
    # Cut at the data-collection change (Jan 2024): two segments, each its own lines.
    assert set(re.findall(r'<path class="centre" data-segment="(\d)"', wyeshire)) == {"0", "1"}
    markers = re.findall(r'<g class="(change[^"]*)" data-change-id="([^"]+)"', wyeshire)
    assert markers == [("change rebase", "CHG-004"), ("change", "CHG-001")]
    assert (
        "<title>CHG-004 (Jan 2024, data collection change; limits recalculated from here):"
        " Wyeshire moved falls reporting to the new incident system</title>"
    ) in wyeshire
    text = _text(wyeshire)
    assert "Recorded changes" in text
    assert "Jan 2024 , CHG-004 (data collection change; limits recalculated from here)" in text
    assert "Limits recalculated from Jan 2024 after a recorded change" in text
    # The data table: a Recorded change column, filled in the change months only.
    assert '<th scope="col">Recorded change</th>' in wyeshire
    assert "<td>CHG-001: Falls prevention bundle launched across the region</td>" in wyeshire
    # Baseline window (segment 0's months inside it: Apr to Dec 2023) shaded.
    assert "<title>Baseline: Apr 2023 to Dec 2023</title>" in wyeshire
    region = cards[("region", "region", "FALLS")]
    assert "<title>Baseline: Apr 2023 to Mar 2024</title>" in region
    assert set(re.findall(r'<path class="centre" data-segment="(\d)"', region)) == {"0"}
    # An organisation-scoped change is on that organisation's chart only.
    assert "CHG-003" not in (sites["internal"] / "measures" / "FALLS.html").read_text()
    orgs = organisation_charts(sites["internal"])
    changes = {key: [c["id"] for c in entry.get("changes", [])] for key, (_, entry) in orgs.items()}
    assert "CHG-003" in changes[("organisation", "RZZ01", "FALLS")]
    assert "CHG-003" not in changes[("organisation", "RZZ02", "FALLS")]
    # NEWS2: first 12 points of each segment; the definition change cuts the region too.
    news2 = _cards(sites["internal"] / "measures" / "NEWS2.html")[("region", "region", "NEWS2")]
    assert set(re.findall(r'<path class="limit" data-segment="(\d)"', news2)) == {"0", "1"}
    assert "the limits rest on the first months of each segment" in _text(news2)


def test_public_pages_show_public_changes_only(sites):
    text = "\n".join(p.read_text() for p in sites["public"].rglob("*.html"))
    assert 'data-change-id="CHG-002"' in text and 'data-change-id="CHG-004"' in text
    assert "CHG-003" not in text and "Sunnyside" not in text and "hourly rounding" not in text
    csv_text = "\n".join(p.read_text() for p in sites["public"].rglob("*.csv"))
    assert "CHG-003" not in csv_text and "CHG-004" in csv_text


@pytest.mark.parametrize("tier", ["internal", "public"])
def test_every_chart_links_a_csv_of_exactly_its_data(sites, warehouse, tier):
    site = sites[tier]
    source, table = (
        (warehouse, "(select * from fct_spc where tier = 'internal')")
        if tier == "internal"
        else (public_warehouse(warehouse), "pub_spc")
    )
    with duckdb.connect(str(source), read_only=True) as con:
        rows = con.execute(
            f"""select level, series_key, measure_code, period, value, numerator, denominator,
                       centre, lpl, upl, segment, in_baseline, is_suppressed
                from {table} order by period"""
        ).fetchall()
    expected: dict[tuple, list[tuple]] = {}
    for level, key, measure, *rest in rows:
        expected.setdefault((level, key, measure), []).append(tuple(rest))
    seen = set()
    for page in site.rglob("*.html"):
        for key, card in _cards(page).items():
            link = re.search(r'<a href="([^"]+\.csv)" download>', card)
            assert link, (page, key)
            # The page's CSV holds every chart of the page: this chart's rows are its series'.
            rows_csv = [
                r
                for r in csv.DictReader((page.parent / link.group(1)).open())
                if (r["level"], r["series_key"]) == key[:2]
            ]
            want = expected[key]
            assert len(rows_csv) == len(want), key
            for got, (period, value, num, den, centre, lpl, upl, seg, base, sup) in zip(
                rows_csv, want, strict=True
            ):

                def number(text: str) -> float | None:
                    return float(text) if text else None

                assert got["month"] == period.isoformat()
                assert number(got["value"]) == value
                assert number(got["numerator"]) == num
                assert number(got["denominator"]) == den
                assert number(got["centre"]) == centre
                assert number(got["lower_limit"]) == lpl
                assert number(got["upper_limit"]) == upl
                assert got["is_suppressed"] == ("true" if sup else "false")
                assert got["segment"] == ("" if sup else str(seg))
                assert got["in_baseline"] == ("true" if base else "false")
            seen.add(key)
    # Organisation charts (internal): the CSV each one's entry in its data file links.
    for key, (path, entry) in organisation_charts(site).items():
        rows_csv = [
            r
            for r in csv.DictReader((path.parent / entry["csv"]).open())
            if (r["level"], r["series_key"]) == key[:2]
        ]
        want = expected[key]
        assert [r["month"] for r in rows_csv] == [w[0].isoformat() for w in want], key
        assert [float(r["value"]) if r["value"] else None for r in rows_csv] == [
            w[1] for w in want
        ], key
        seen.add(key)
    assert seen == set(expected)


def test_public_site_with_csv_files_passes_the_disclosure_scan(sites):
    organisations = [(code, name) for code, name, sector, _ in ORGANISATIONS if sector != "icb"]
    rules = DisclosureRules()  # the fixture rounds to 5 and suppresses 1-7, as these do
    assert scan_site(sites["public"], rules=rules, organisations=organisations) == []


def _impact_rows(page: Path, measure: str) -> dict[str, str]:
    table = re.search(
        rf'<table class="impact-table" data-measure="{measure}">.*?</table>', page.read_text(), re.S
    ).group(0)
    return {
        _text(re.search(r"<th scope=\"row\">(.*?)</th>", row, re.S).group(1)): _text(row)
        for row in re.findall(r"<tr data-level=.*?</tr>", table, re.S)
    }


def test_internal_impact_page(sites):
    site = sites["internal"]
    index = (site / "index.html").read_text()
    assert 'href="impact.html"' in index  # nav and lede
    page = site / "impact.html"
    text = _text(page.read_text())
    # Programmes with measures, in the catalogue's order; none for a programme without.
    assert text.index("Managing deterioration") < text.index("Local priorities")
    assert "Safety culture" not in text.split("Programme impact", 2)[-1].split("Data to")[0]
    # The method, one sentence each; events avoided or added say they are an estimate.
    assert "an estimate that assumes the baseline rate would otherwise have held" in text
    falls = _impact_rows(page, "FALLS")
    assert list(falls) == [
        "Whole region",
        "NHS Wyeshire Integrated Care Board",
        "NHS Zedshire Integrated Care Board",
    ]
    region = falls["Whole region"]
    assert "4.00 per 1000 occupied bed days Apr 2023 to Mar 2024 (12 months)" in region
    assert "3.37 per 1000 occupied bed days Apr 2024 to Mar 2025" in region
    assert "Better −0.63 per 1000 occupied bed days (15.7% lower)" in region
    assert "Improvement since May 2024" in region
    assert "Follows CHG-001: Falls prevention bundle launched across the region" in region
    assert "2023/24: 4.00 per 1000 occupied bed days (12 months)" in region
    assert "2024/25: 3.37 per 1000 occupied bed days (12 months) Better" in region
    assert "Better : 90 fewer than expected observed 479, expected 569" in region
    assert 'data-icon="improvement_low"' in page.read_text()  # the site's own icons
    wyeshire = falls["NHS Wyeshire Integrated Care Board"]
    assert "Apr 2023 to Dec 2023 (9 months)" in wyeshire  # segment 0 ends at the rebase
    assert "Mean since Jan 2024: 3.95 per 1000 occupied bed days" in wyeshire
    assert "No sustained shift" in wyeshire
    news2 = _impact_rows(page, "NEWS2")["Whole region"]
    assert "No change" in news2 and "Hit and miss" in news2
    assert "Sustained shifts with no recorded change" in text


def test_public_impact_page_reads_the_public_table(sites, warehouse):
    page = sites["public"] / "impact.html"
    text = _text(page.read_text())
    assert "Computed from the public, disclosure-controlled figures." in text
    assert "(rounded to the nearest 5)" in text
    assert "Sustained shifts with no recorded change" not in text  # internal review only
    falls = _impact_rows(page, "FALLS")
    assert "observed 480, expected 570" in falls["Whole region"]  # rounded public counts
    assert "Improvement since Jun 2024" in falls["Whole region"]
    with duckdb.connect(str(public_warehouse(warehouse)), read_only=True) as con:
        [(value,)] = con.execute(
            "select last_12_value from pub_programme_impact where level = 'region'"
            " and measure_code = 'FALLS'"
        ).fetchall()
    assert f"{value:.2f} per 1000 occupied bed days Apr 2024 to Mar 2025" in falls["Whole region"]


def test_a_snapshot_without_the_new_tables_builds_the_site_as_before(tmp_path):
    warehouse = make_published_warehouse(tmp_path / "warehouse.duckdb", with_changes=False)
    for tier, source in (("internal", warehouse), ("public", public_warehouse(warehouse))):
        site = build_site(source, tmp_path / f"site_{tier}", tier).parent
        assert not (site / "impact.html").exists()
        text = "\n".join(p.read_text() for p in site.rglob("*.html"))
        assert "impact.html" not in text
        assert 'class="change' not in text and 'class="baseline"' not in text
        assert 'data-segment="1"' not in text
        assert list(site.rglob("*.csv"))  # the downloads do not depend on the new tables


def test_the_chart_key_lists_baseline_and_changes_only_where_drawn(sites, tmp_path):
    news2 = (sites["internal"] / "measures" / "NEWS2.html").read_text()
    assert "Baseline months</li>" in news2 and "Recorded change (numbered)</li>" in news2
    empty = (sites["internal"] / "measures" / "EMPTY.html").read_text()
    assert "Baseline months</li>" not in empty and "Recorded change (numbered)</li>" not in empty


def test_a_withheld_month_stays_in_its_segment(tmp_path):
    """pub_spc nulls the segment of a suppressed month with its other figures; the chart
    puts the month in the segment segment_start gives it, and never splits a segment: the
    region's NEWS2 is cut at the definition change (Oct 2024), and both the month of the cut
    and a month inside the new segment (Dec 2024) are withheld."""
    from dashboard_fixtures import MONTHS

    withheld = [MONTHS[18], MONTHS[20]]
    warehouse = make_published_warehouse(
        tmp_path / "warehouse.duckdb", [("region", "NEWS2", month) for month in withheld]
    )
    with duckdb.connect(str(public_warehouse(warehouse)), read_only=True) as con:
        rows = con.execute(
            """select period, segment, segment_start from pub_spc
            where level = 'region' and measure_code = 'NEWS2' and is_suppressed
            order by period"""
        ).fetchall()
    assert rows == [(month, None, MONTHS[18]) for month in withheld]
    site = build_site(public_warehouse(warehouse), tmp_path / "site", "public").parent
    region = _cards(site / "measures" / "NEWS2.html")[("region", "region", "NEWS2")]
    assert sorted(re.findall(r'<path class="centre" data-segment="(\d)"', region)) == ["0", "1"]
    assert "Limits recalculated from Oct 2024 after a recorded change" in _text(region)
