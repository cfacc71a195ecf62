"""The dashboard site without a browser: pages, relative links, tiers, readings, swapping."""

from __future__ import annotations

import re
import shutil
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pytest
from dashboard_fixtures import (
    MONTHS,
    ORG_NAMES_SHOWN,
    make_published_warehouse,
    organisation_charts,
    public_warehouse,
)

from pipelines.dashboard import build_site
from pipelines.dashboard.build import (
    DATA_FILE_SUFFIX,
    MARKER,
    display_name,
    organisation_data_text,
    read_organisation_data,
)
from pipelines.dashboard.charts import nice_ticks
from pipelines.dashboard.model import Point, Series, ValueFormat, reading, variation_reading


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    return make_published_warehouse(tmp_path_factory.mktemp("wh") / "warehouse.duckdb")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        for name in ("href", "src", "action", "xlink:href"):
            if attributes.get(name):
                self.urls.append(attributes[name])
        if tag == "script" and not attributes.get("src"):
            self.inline_scripts += 1
        if attributes.get("id"):
            self.ids.add(attributes["id"])


def _parse(page: Path) -> _Links:
    """A page's links and ids, with the ids of the cards its script draws from its data
    file (an organisations page's charts are drawn in the browser)."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    for url in parser.urls:
        if url.endswith(DATA_FILE_SUFFIX):
            parser.ids |= {s["anchor"] for s in read_organisation_data(page.parent / url)["series"]}
    return parser


def _html_pages(site: Path) -> list[Path]:
    return sorted(site.rglob("*.html"))


def test_internal_site_has_every_page_and_only_relative_links_that_resolve(warehouse, tmp_path):
    index = build_site(warehouse, tmp_path / "internal")
    site = index.parent
    assert index == tmp_path / "internal" / "index.html"
    pages = {p.relative_to(site).as_posix() for p in _html_pages(site)}
    assert pages == {
        "index.html",
        "impact.html",
        "measures/NEWS2.html",
        "measures/FALLS.html",
        "measures/EMPTY.html",
        "measures/NEWS2/QZZ.html",
        "measures/NEWS2/QYY.html",
        "measures/FALLS/QZZ.html",
        "measures/FALLS/QYY.html",
    }
    assert (site / "static" / "dashboard.js").exists()
    assert (site / "static" / "dashboard.css").exists()
    for page in _html_pages(site):
        parsed = _parse(page)
        assert parsed.inline_scripts == 0, page  # the CSP allows scripts from files only
        for url in parsed.urls:
            assert not re.match(r"^[a-z][a-z0-9+.-]*:|^//|^/", url, re.I), (page, url)
            target, _, anchor = url.partition("#")
            resolved = (page.parent / target).resolve() if target else page
            assert resolved.is_file(), (page, url)
            if anchor:
                assert anchor in _parse(resolved).ids, (page, url)


def test_pages_say_what_a_reader_needs(warehouse, tmp_path):
    site = build_site(warehouse, tmp_path / "internal").parent
    index = (site / "index.html").read_text()
    assert "Managing deterioration" in index and "Safety culture" in index
    assert "No measures in this programme yet." in index
    assert "No data yet." in index  # the EMPTY measure
    news2 = (site / "measures" / "NEWS2.html").read_text()
    assert "Target</dt><dd>90%" in news2
    assert (
        '<p class="reading">Common cause variation: no significant change. Hit and miss against '
        "the 90% target: it lies within the process limits.</p>"
    ) in news2
    assert "3 organisations reported for Mar 2025 (Feb 2025: 3)." in news2
    # Region chart first, then ICBs, then sectors.
    assert news2.index('data-level="region"') < news2.index('data-level="icb"')
    assert news2.index('data-level="icb"') < news2.index('data-level="sector"')
    falls = (site / "measures" / "FALLS" / "QZZ.html").read_text()
    assert "Sunnyside Hospitals NHS Trust" in falls  # ODS capitals made readable
    # Limits on the FALLS baseline window (Apr 2023 to Mar 2024): Sunnyside's fall starts
    # with a trend of 7 falling points from Apr 2024.
    assert "Special cause improvement since Apr 2024" in falls
    # The cards are drawn by the script from the page's data file, which says the same.
    assert '<script src="QZZ.data.js"></script>' in falls
    charts = read_organisation_data(site / "measures" / "FALLS" / "QZZ.data.js")["series"]
    by_key = {s["key"]: s for s in charts}
    assert by_key["RZZ01"]["title"] == "Sunnyside Hospitals NHS Trust"
    assert by_key["RZZ01"]["reading"].startswith("Special cause improvement since Apr 2024")
    # The late care home.
    assert by_key["VZZ01"]["completeness"] == "No return for Mar 2025 yet (last: Feb 2025)."
    # Without the script the page says so and links the data.
    assert "drawn in your browser by the page’s script, which has not run" in falls
    # One CSV for the page's organisations (a row per organisation and month).
    assert '<a href="QZZ.csv" download>' in falls
    rows = (site / "measures" / "FALLS" / "QZZ.csv").read_text().splitlines()
    assert rows[0].startswith("level,series_key,month,value,")
    assert {r.split(",")[1] for r in rows[1:]} == {"RZZ01", "RZZ02", "VZZ01"}
    falls_measure = (site / "measures" / "FALLS.html").read_text()
    assert "the latest month may still be incomplete" in falls_measure
    assert "Provisional build" not in index


def test_charts_hold_one_point_per_value(warehouse, tmp_path):
    site = build_site(warehouse, tmp_path / "internal").parent
    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = {
            (level, key, measure): n
            for level, key, measure, n in con.execute(
                "select level, series_key, measure_code, count(value) from fct_spc "
                "where tier = 'internal' group by all"
            ).fetchall()
        }
    found = {}
    figure = re.compile(
        r'<figure class="chart-card[^"]*" id="[^"]*" data-level="([^"]+)" '
        r'data-series-key="([^"]+)" data-measure="([^"]+)".*?</figure>',
        re.S,
    )
    for page in _html_pages(site):
        for match in figure.finditer(page.read_text()):
            key = match.groups()
            assert key not in found, f"{key} drawn twice"
            found[key] = match.group(0).count('<circle class="pt ')
    # Organisation charts: one value per point in the data file the script draws from.
    for key, (_, entry) in organisation_charts(site).items():
        assert key not in found, f"{key} drawn twice"
        found[key] = sum(v is not None for v in entry.get("v", []))
    assert any(level == "organisation" for level, _, _ in found)
    assert found == expected


def test_organisation_data_file_round_trips_and_refuses_other_files(tmp_path):
    data = {"measure": "FALLS", "series": [{"key": "RZZ01", "v": [1.5, None], "title": "A “B”"}]}
    path = tmp_path / f"QZZ{DATA_FILE_SUFFIX}"
    path.write_text(organisation_data_text(data), encoding="utf-8")
    assert path.read_text().startswith("SafetyObservatory.organisations({")
    assert read_organisation_data(path) == data
    # Not a data file: a plain JSON file, a truncated one, any other script.
    for text in ('{"measure": "FALLS"}', "SafetyObservatory.organisations({", "alert(1);"):
        path.write_text(text)
        with pytest.raises(ValueError):
            read_organisation_data(path)
    # A figure that is not a number cannot be written (JSON has no NaN).
    with pytest.raises(ValueError):
        organisation_data_text({"v": [float("nan")]})


def test_public_site_has_no_organisation_anything(warehouse, tmp_path):
    site = build_site(public_warehouse(warehouse), tmp_path / "public_site", tier="public").parent
    pages = {p.relative_to(site).as_posix() for p in _html_pages(site)}
    assert pages == {"index.html", "impact.html", "measures/NEWS2.html", "measures/FALLS.html",
                     "measures/EMPTY.html"}  # fmt: skip
    text = "\n".join(p.read_text() for p in _html_pages(site))
    for name in [*ORG_NAMES_SHOWN, "RZZ01", "RZZ02", "VZZ01", "RYY01", 'data-level="organisation"']:
        assert name not in text, name
    assert "Zedshire" in text  # ICB names are public (the public file's dim_icb)
    # No organisation chart data file either: only the bundled script is a script.
    scripts = {p.relative_to(site).as_posix() for p in site.rglob("*.js")}
    assert scripts == {"static/dashboard.js"}
    assert not list(site.rglob(f"*{DATA_FILE_SUFFIX}"))
    # No count of organisations: no tooltip figure, no empty data-table column.
    assert "data-o=" not in text and ">Organisations<" not in text
    news2 = (site / "measures" / "NEWS2.html").read_text()
    assert "Counts from 1 to 7 are suppressed, and so are figures from fewer than 3" in news2
    assert "Provisional build" not in text


def test_public_site_reads_the_public_file_alone(warehouse, tmp_path):
    """Built with the internal file gone, the public site is the same site."""
    alone = tmp_path / "snapshot" / "public" / "warehouse.duckdb"
    alone.parent.mkdir(parents=True)
    shutil.copyfile(public_warehouse(warehouse), alone)
    assert not (alone.parent.parent / "warehouse.duckdb").exists()
    site = build_site(alone, tmp_path / "alone", tier="public").parent
    beside = build_site(public_warehouse(warehouse), tmp_path / "beside", tier="public").parent
    pages = sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file())
    assert pages == sorted(p.relative_to(beside) for p in beside.rglob("*") if p.is_file())
    for page in pages:
        assert (site / page).read_bytes() == (beside / page).read_bytes(), page


def test_public_site_refuses_anything_but_the_public_file(warehouse, tmp_path):
    # The internal file: no pub_spc, and organisation-level tables. Nothing is written.
    with pytest.raises(ValueError, match="no pub_spc table") as refused:
        build_site(warehouse, tmp_path / "public_site", tier="public")
    assert "dim_organisation is organisation-level data" in str(refused.value)
    assert not (tmp_path / "public").exists()
    # A public file that somehow carries organisation-level data is refused too.
    tainted = tmp_path / "tainted.duckdb"
    shutil.copyfile(public_warehouse(warehouse), tainted)
    with duckdb.connect(str(tainted)) as con:
        con.execute("create table fct_measure_monthly (org_code varchar)")
    with pytest.raises(ValueError, match="fct_measure_monthly is organisation-level data"):
        build_site(tainted, tmp_path / "public_site", tier="public")
    # And an internal site needs the internal file.
    with pytest.raises(ValueError, match="no fct_spc table"):
        build_site(public_warehouse(warehouse), tmp_path / "internal", tier="internal")


def test_public_site_shows_suppressed_months_as_gaps(tmp_path):
    warehouse = make_published_warehouse(
        tmp_path / "warehouse.duckdb",
        [("sector", "FALLS", MONTHS[3]), ("sector", "FALLS", MONTHS[4])]
        + [("icb", "NEWS2", month) for month in MONTHS],  # every month of the ICB charts
    )
    site = build_site(public_warehouse(warehouse), tmp_path / "public_site", tier="public").parent
    falls = (site / "measures" / "FALLS.html").read_text()
    assert "Suppressed (small numbers or too few organisations): Jul 2023, Aug 2023." in falls
    assert "Counts of reporting organisations are not published in the public tier." in falls
    assert ">suppressed<" in falls  # the data table says so instead of showing a zero
    news2 = (site / "measures" / "NEWS2.html").read_text()
    icb_cards = re.findall(r'<figure[^>]*data-level="icb".*?</figure>', news2, re.S)
    assert len(icb_cards) == 2
    for card in icb_cards:
        assert (
            "Every month suppressed: the numbers are too small, or come from too few"
            " organisations, to publish." in card
        )
        assert "spc-chart" not in card  # no empty axes
    # Public figures are the rounded counts.
    with duckdb.connect(str(public_warehouse(warehouse)), read_only=True) as con:
        counts = con.execute(
            "select numerator, denominator from pub_spc where not is_suppressed"
        ).fetchall()
    assert counts and all(n % 5 == 0 and d % 5 == 0 for n, d in counts)


def test_command_line_builds_a_site(warehouse, tmp_path, capsys):
    from pipelines.dashboard.__main__ import main

    assert main([str(public_warehouse(warehouse)), str(tmp_path / "cli"), "--tier", "public"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "cli" / "index.html")
    assert (tmp_path / "cli" / "measures" / "NEWS2.html").exists()


def test_build_replaces_its_own_site_and_refuses_any_other_folder(warehouse, tmp_path):
    out = tmp_path / "site"
    build_site(warehouse, out)
    stale = out / "measures" / "GONE.html"
    stale.write_text("old")
    build_site(warehouse, out)
    assert not stale.exists()
    assert (out / MARKER).exists()
    assert not any(p.name.startswith(".site.") for p in tmp_path.iterdir())
    other = tmp_path / "documents"
    other.mkdir()
    (other / "thesis.txt").write_text("precious")
    with pytest.raises(FileExistsError):
        build_site(warehouse, other)
    assert (other / "thesis.txt").read_text() == "precious"
    with pytest.raises(ValueError, match="tier"):
        build_site(warehouse, tmp_path / "x", tier="everyone")


def _month(i: int) -> date:
    return date(2024 + i // 12, i % 12 + 1, 1)


def _series(types: list[str | None], icon: str | None, assurance=None, target=None) -> Series:
    points = [
        Point(_month(i), None if t is None else 10.0, 1, 10, 10.0, 5.0, 15.0, t, False)
        for i, t in enumerate(types)
    ]
    return Series("region", "region", "Region", points, icon, assurance, target, "increase")


def test_readings_in_plain_english():
    fmt = ValueFormat.for_measure("%", 100)
    cc, imp, con = "common_cause", "special_cause_improvement", "special_cause_concern"
    assert reading(_series([cc] * 6, "common_cause"), fmt) == (
        "Common cause variation: no significant change."
    )
    # The signal started at the first month of the final run of improvement points.
    assert variation_reading(_series([cc, imp, cc, imp, imp, imp], "improvement_high")) == (
        "Special cause improvement since Apr 2024"
    )
    # A missing month ends the run.
    assert variation_reading(_series([imp, imp, None, con, con], "concern_low")) == (
        "Special cause concern since Apr 2024"
    )
    assert (
        variation_reading(_series([cc, "special_cause_neutral_high"], "neutral_high"))
        == "Special cause variation: unusually high since Feb 2024"
    )
    assert variation_reading(_series([cc], "common_cause")).startswith("Only one month")
    assert variation_reading(_series([], None)) == "No data to chart yet"
    assert reading(_series([cc] * 3, "common_cause", "consistent_pass", 85.0), fmt) == (
        "Common cause variation: no significant change. Consistently passing the 85% target."
    )
    assert "Consistently failing the 85% target" in reading(
        _series([cc] * 3, "common_cause", "consistent_fail", 85.0), fmt
    )
    assert "Hit and miss against the 85% target" in reading(
        _series([cc] * 3, "common_cause", "inconsistent", 85.0), fmt
    )
    assert "too few points" in reading(_series([cc], "common_cause", None, 85.0), fmt)


def test_formats_ticks_and_names():
    assert ValueFormat.for_measure("%", 100).value(91.234) == "91.2%"
    assert ValueFormat.for_measure("% of opioid items", 100).value(4.04) == "4.0% of opioid items"
    rate = ValueFormat.for_measure("per 1000 occupied bed days", 1000)
    assert rate.value(0.1934) == "0.19 per 1000 occupied bed days"
    assert ValueFormat.for_measure("per 100 live births at 37+ weeks", 100).decimals == 2
    assert nice_ticks(0.0, 1.0) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(72.3, 98.9) == [80.0, 90.0]
    assert display_name("NHS NORTH EAST AND NORTH CUMBRIA INTEGRATED CARE BOARD", "QHM") == (
        "NHS North East and North Cumbria Integrated Care Board"
    )
    assert display_name("Already Mixed Case", "X") == "Already Mixed Case"
    assert display_name(None, "X1") == "X1"
