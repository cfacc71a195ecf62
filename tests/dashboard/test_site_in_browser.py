"""The dashboard in a real browser, built from a real publication of the committed sample.

Runs the whole pipeline once, builds the internal site from the published snapshot's
internal file and the public site from its public file, and opens every page in headless
Chromium both from a local web server and from ``file://``: no console errors, no request
leaves the site, every chart has one point per value in ``fct_spc`` (internal) or
``pub_spc`` (public), icons render, and the tooltip shows the month's figures and limits.

Recorded changes, segments and the impact page (docs/programme-impact.md) are checked on
sites built from the hand-made fixture snapshot (tests/dashboard/dashboard_fixtures.py),
which has those tables whatever the pipeline on this branch writes; the sample's sites show
as many change markers as their own series-change table lists. Every page of every site is
also opened 390 px wide: no horizontal scroll, no text under 10 px.

Chromium is Debian's (``make browser`` installs it); nothing is downloaded at test time.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
from dashboard_fixtures import make_published_warehouse
from dashboard_fixtures import public_warehouse as fixture_public

from pipelines.dashboard import build_site
from pipelines.months import month_label
from pipelines.settings import PROJECT_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOT = PROJECT_ROOT / "docs" / "images" / "measure_page.png"
SCREENSHOT_MEASURE = "NEWS2_ON_TIME"  # has a target and special causes: both icons, colours

# e2e: the sites come from the session's full run of the sample (sample_build).
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: run `make browser` (Debian's chromium) to enable this test",
    ),
]


@pytest.fixture(scope="module")
def warehouse(request: pytest.FixtureRequest) -> Path:
    """The internal file published by the session's full run of the sample (its public file is
    ``public/warehouse.duckdb`` beside it). To iterate on the site without rerunning the
    pipeline, set DASHBOARD_TEST_WAREHOUSE to a published (internal) warehouse."""
    given = os.environ.get("DASHBOARD_TEST_WAREHOUSE")
    if given:
        return Path(given)
    return request.getfixturevalue("sample_build").published_snapshot() / "warehouse.duckdb"


def _public(warehouse: Path) -> Path:
    return warehouse.parent / "public" / "warehouse.duckdb"


@pytest.fixture(scope="module")
def fixture_warehouse(tmp_path_factory) -> Path:
    """The hand-made snapshot with recorded changes, segments and impact tables."""
    return make_published_warehouse(tmp_path_factory.mktemp("fixture_wh") / "warehouse.duckdb")


@pytest.fixture(scope="module")
def sites(warehouse, fixture_warehouse, tmp_path_factory) -> dict[str, Path]:
    """The sample's two sites, and the fixture snapshot's two (all under one folder, so one
    server serves them)."""
    out = tmp_path_factory.mktemp("sites")
    return {
        "internal": build_site(warehouse, out / "internal", "internal").parent,
        "public": build_site(_public(warehouse), out / "public", "public").parent,
        "fixture_internal": build_site(
            fixture_warehouse, out / "fixture_internal", "internal"
        ).parent,
        "fixture_public": build_site(
            fixture_public(fixture_warehouse), out / "fixture_public", "public"
        ).parent,
    }


@pytest.fixture(scope="module")
def server(sites) -> Iterator[str]:
    """The sites' parent folder over HTTP on a random localhost port."""
    root = next(iter(sites.values())).parent

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser(sites):
    """Headless Chromium. Depends on ``sites`` so the pipeline runs before Playwright starts
    its event loop in this thread (Dagster's in-process run would otherwise share it)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class Visit:
    """A page plus everything it logged and requested."""

    def __init__(self, browser, allowed_prefix: str, width: int = 1280) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.page = self.context.new_page()
        self.allowed_prefix = allowed_prefix
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(f"console {m.type}: {m.text}")
                if m.type in ("error", "warning")
                else None
            ),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        # Navigating on aborts a request still in flight (the favicon): not an error. A
        # missing file is (a 4xx/5xx response, also logged to the console by Chromium).
        self.page.on(
            "requestfailed",
            lambda r: (
                None
                if r.failure == "net::ERR_ABORTED"
                else self.errors.append(f"request failed: {r.url} {r.failure}")
            ),
        )
        self.page.on(
            "response",
            lambda r: self.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )
        self.page.on(
            "request",
            lambda r: None if r.url.startswith(self.allowed_prefix) else self.outside.append(r.url),
        )

    def open(self, url: str) -> None:
        response = self.page.goto(url, wait_until="load")
        if url.startswith("http"):
            assert response is not None and response.ok, url
        assert self.errors == [], (url, self.errors)
        assert self.outside == [], (url, self.outside)

    def close(self) -> None:
        self.context.close()


def _pages(site: Path) -> list[str]:
    return sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html"))


def _expected_series(warehouse: Path, tier: str) -> dict[tuple[str, str, str], dict]:
    """What each chart must show, straight from the tier's own file: the internal rows of
    fct_spc, or the public file's pub_spc."""
    source, table = (
        (warehouse, "(select * from fct_spc where tier = 'internal')")
        if tier == "internal"
        else (_public(warehouse), "pub_spc")
    )
    with duckdb.connect(str(source), read_only=True) as con:
        rows = con.execute(
            f"""select level, series_key, measure_code, count(value),
                   any_value(variation_icon), any_value(assurance_type)
            from {table} group by all"""
        ).fetchall()
    return {
        (level, key, measure): {"points": n, "variation": icon, "assurance": assurance}
        for level, key, measure, n, icon, assurance in rows
    }


# One JS pass per page: what each chart card shows.
_CARDS_JS = """
() => Array.from(document.querySelectorAll("figure.chart-card")).map((card) => {
  const box = (el) => { if (!el) return 0; const r = el.getBoundingClientRect();
                        return r.width * r.height; };
  const used = (el) => { if (!el) return 0; const u = el.querySelector("use");
                         const b = u.getBBox(); return b.width * b.height; };
  const variation = card.querySelector("svg.icon-variation");
  const assurance = card.querySelector("svg.icon-assurance");
  return {
    level: card.dataset.level, key: card.dataset.seriesKey, measure: card.dataset.measure,
    points: card.querySelectorAll("svg.spc-chart circle.pt").length,
    variation: variation ? variation.dataset.icon : null,
    variationArea: box(variation), variationDrawn: used(variation),
    variationLabel: variation ? variation.getAttribute("aria-label") : null,
    assurance: assurance ? assurance.dataset.icon : null,
    assuranceArea: box(assurance), assuranceDrawn: used(assurance),
    reading: card.querySelector(".reading").textContent.trim(),
  };
})
"""


@pytest.mark.parametrize("tier", ["internal", "public"])
def test_every_page_over_http_charts_match_the_warehouse(browser, sites, server, warehouse, tier):
    site = sites[tier]
    expected = _expected_series(warehouse, tier)
    # Not vacuous: every measure of the sample has a region chart with two years of months,
    # except in public the one only mental-health trusts report: two trusts, so every
    # month is suppressed (too few contributing organisations).
    region = {m: v["points"] for (level, _, m), v in expected.items() if level == "region"}
    assert len(region) == 14, region
    withheld = {"RESTRICTIVE_PRACTICE": 0} if tier == "public" else {}
    assert region == {m: withheld.get(m, 24) for m in region}, region
    seen: dict[tuple[str, str, str], dict] = {}
    visit = Visit(browser, server + "/")
    try:
        for relative in _pages(site):
            visit.open(f"{server}/{tier}/{relative}")
            for card in visit.page.evaluate(_CARDS_JS):
                key = (card["level"], card["key"], card["measure"])
                assert key not in seen, f"{key} drawn twice"
                seen[key] = card
    finally:
        visit.close()
    assert set(seen) == set(expected)
    for key, card in seen.items():
        want = expected[key]
        assert card["points"] == want["points"], key
        assert card["variation"] == want["variation"], key
        assert card["assurance"] == want["assurance"], key
        assert card["reading"], key
        if want["variation"]:
            assert card["variationArea"] > 0 and card["variationDrawn"] > 0, key
            assert card["variationLabel"], key
        if want["assurance"]:
            assert card["assuranceArea"] > 0 and card["assuranceDrawn"] > 0, key
    if tier == "public":
        assert not any(level == "organisation" for level, _, _ in seen)


@pytest.mark.parametrize("tier", ["internal", "public"])
def test_every_page_from_disk(browser, sites, tier):
    site = sites[tier]
    visit = Visit(browser, site.as_uri() + "/")
    try:
        for relative in _pages(site):
            visit.open((site / relative).as_uri())
            charts = visit.page.locator("svg.spc-chart").count()
            if tier == "public" and relative == "measures/RESTRICTIVE_PRACTICE.html":
                # Only the two mental-health trusts report it: every month is withheld,
                # and each card says so instead of drawing empty axes.
                assert charts == 0
                assert "Every month suppressed" in visit.page.locator("main").inner_text()
            elif relative.startswith("measures/INC_"):
                # Incident measures are derived from incident extracts, and this build
                # has none (tests/conftest.py): the page says so instead of charting.
                assert charts == 0
                assert "No data for this measure yet" in visit.page.locator("main").inner_text()
            elif relative == "impact.html":
                # The programme impact page has tables, not SPC charts.
                assert visit.page.locator("table.impact-table").count() > 0
            elif relative == "completeness.html" or relative.startswith("incidents/"):
                # The internal Completeness and incidents-by-department pages are tables of
                # counts, not SPC charts; this build has no incident extracts
                # (tests/conftest.py), so the reconciliation says it compared nothing.
                assert tier == "internal"
                assert charts == 0
                text = visit.page.locator("main").inner_text()
                assert "organisation-months compared" in text or "Events in" in text
            else:
                assert charts > 0 or "EMPTY" in relative or relative == "index.html"
        # The script runs from disk too (the page's CSP allows 'self' scripts under file://).
        visit.open((site / "measures" / f"{SCREENSHOT_MEASURE}.html").as_uri())
        visit.page.locator("svg.spc-chart circle.pt").first.hover()
        assert visit.page.locator("#tooltip").is_visible()
        # Links work from disk: index -> measure -> back.
        visit.open((site / "index.html").as_uri())
        visit.page.locator("table.summary a").first.click()
        visit.page.wait_for_load_state("load")
        assert visit.page.url.startswith(site.as_uri() + "/measures/")
        visit.page.locator("nav.breadcrumb a").first.click()
        visit.page.wait_for_load_state("load")
        assert visit.page.url == (site / "index.html").as_uri()
        assert visit.errors == [] and visit.outside == []
    finally:
        visit.close()


def test_hover_and_keyboard_show_the_month_figures(browser, sites, server, warehouse, tmp_path):
    visit = Visit(browser, server + "/")
    try:
        visit.open(f"{server}/internal/measures/{SCREENSHOT_MEASURE}.html")
        page = visit.page
        region = page.locator('figure[data-level="region"] svg.spc-chart')
        points = region.locator("circle.pt")
        with duckdb.connect(str(warehouse), read_only=True) as con:
            rows = con.execute(
                "select period, numerator, denominator from fct_spc where level = 'region' "
                "and tier = 'internal' and measure_code = ? and value is not null order by period",
                [SCREENSHOT_MEASURE],
            ).fetchall()
        assert points.count() == len(rows)
        tooltip = page.locator("#tooltip")
        assert tooltip.is_hidden()
        points.nth(5).hover()
        assert tooltip.is_visible()
        period, numerator, denominator = rows[5]
        text = tooltip.inner_text()
        assert month_label(period) in text
        assert f"Numerator: {numerator:,}" in text
        assert f"Denominator: {denominator:,}" in text
        assert "Value: " in text and "%" in text
        # The limits the point is judged against.
        assert "Mean: " in text and "Lower limit: " in text and "Upper limit: " in text
        page.mouse.move(0, 0)
        assert tooltip.is_hidden()
        # Keyboard: focus the chart, arrow keys walk the months.
        region.focus()
        page.keyboard.press("ArrowRight")
        assert month_label(rows[0][0]) in tooltip.inner_text()
        page.keyboard.press("End")
        assert month_label(rows[-1][0]) in tooltip.inner_text()
        page.keyboard.press("Escape")
        assert tooltip.is_hidden()

        # The screenshot: the top of the page, with one month's tooltip showing.
        visit.open(f"{server}/internal/measures/{SCREENSHOT_MEASURE}.html")
        page.set_viewport_size({"width": 1280, "height": 1300})
        page.locator('figure[data-level="region"] svg.spc-chart circle.pt').last.hover()
        shot = tmp_path / "measure_page.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(shot, SCREENSHOT)
        assert visit.errors == [] and visit.outside == []
    finally:
        visit.close()


def test_public_site_says_what_it_withholds(browser, sites, server):
    visit = Visit(browser, server + "/")
    try:
        visit.open(f"{server}/public/measures/{SCREENSHOT_MEASURE}.html")
        text = visit.page.locator("main").inner_text()
        assert "Counts from 1 to 7 are suppressed" in text
        assert visit.page.locator('figure[data-level="organisation"]').count() == 0
        assert visit.page.locator("section#h-orgs, #h-orgs").count() == 0
    finally:
        visit.close()


# What each chart on a page draws of docs/programme-impact.md, as the browser lays it out.
_SEGMENTS_JS = """
() => Array.from(document.querySelectorAll("figure.chart-card")).map((card) => {
  const visible = (el) => { const r = el.getBoundingClientRect();
                            return r.width > 0 || r.height > 0; };
  const segments = (css) => Array.from(new Set(Array.from(
      card.querySelectorAll(`svg.spc-chart path.${css}`)).filter(visible)
      .map((p) => p.dataset.segment))).sort();
  return {
    key: card.dataset.seriesKey, level: card.dataset.level,
    markers: Array.from(card.querySelectorAll("svg.spc-chart g.change")).filter(visible)
      .map((g) => ({ id: g.dataset.changeId, title: g.querySelector("title").textContent })),
    listed: Array.from(card.querySelectorAll(".changes li")).map((li) => li.dataset.changeId),
    centres: segments("centre"), limits: segments("limit"),
    baseline: card.querySelectorAll("svg.spc-chart g.baseline rect").length,
    csv: (card.querySelector('a[download][href$=".csv"]') || {}).href || null,
  };
})
"""


@pytest.mark.parametrize("tier", ["internal", "public"])
def test_change_markers_and_segment_limits_on_a_measure_page(browser, sites, server, tier):
    visit = Visit(browser, server + "/")
    try:
        visit.open(f"{server}/fixture_{tier}/measures/FALLS.html")
        cards = {(c["level"], c["key"]): c for c in visit.page.evaluate(_SEGMENTS_JS)}
        # Wyeshire: cut at its data-collection change, then the region-wide intervention.
        wyeshire = cards[("icb", "QYY")]
        assert [m["id"] for m in wyeshire["markers"]] == ["CHG-004", "CHG-001"]
        assert wyeshire["listed"] == ["CHG-004", "CHG-001"]
        assert "Wyeshire moved falls reporting" in wyeshire["markers"][0]["title"]
        assert wyeshire["centres"] == ["0", "1"] and wyeshire["limits"] == ["0", "1"]
        assert wyeshire["baseline"] == 1
        region = cards[("region", "region")]
        assert region["centres"] == ["0"] and region["baseline"] == 1
        assert all(c["csv"] for c in cards.values())
        # Hovering a marker shows its description; the CSV is served beside the page.
        page = visit.page
        page.locator('figure[data-level="icb"][data-series-key="QYY"] g.change').first.hover()
        tooltip = page.locator("#tooltip")
        assert tooltip.is_visible()
        assert "Wyeshire moved falls reporting" in tooltip.inner_text()
        response = page.request.get(wyeshire["csv"])
        # One CSV for the page's charts: Wyeshire's rows are there by level and series_key.
        assert response.ok
        assert response.text().startswith("level,series_key,month,value,numerator,denominator")
        assert "\nicb,QYY,2023-04-01," in response.text()
        # The point at a change month names the change for keyboard users too.
        chart = page.locator('figure[data-level="icb"][data-series-key="QYY"] svg.spc-chart')
        chart.focus()
        for _ in range(10):  # Apr 2023 .. Jan 2024
            page.keyboard.press("ArrowRight")
        assert "Recorded change: CHG-004" in tooltip.inner_text()
        # The impact page is linked from the site's navigation.
        page.locator("nav.site-nav a", has_text="Programme impact").click()
        page.wait_for_load_state("load")
        assert page.url.endswith("/impact.html")
        assert page.locator("table.impact-table").count() == 2
        assert visit.errors == [] and visit.outside == []
    finally:
        visit.close()


@pytest.mark.parametrize("tier", ["internal", "public"])
def test_the_samples_markers_match_its_series_change_table(browser, sites, server, warehouse, tier):
    """Once the pipeline writes the change tables, the sample's pages show every change."""
    source = warehouse if tier == "internal" else _public(warehouse)
    table = "fct_series_change" if tier == "internal" else "pub_series_change"
    with duckdb.connect(str(source), read_only=True) as con:
        present = con.execute(
            "select count(*) from duckdb_tables() where table_name = ?", [table]
        ).fetchone()[0]
        if not present:
            pytest.skip(f"the pipeline on this branch writes no {table} yet")
        where = "and tier = 'internal'" if tier == "internal" else ""
        [(expected,)] = con.execute(
            f"select count(*) from {table} where measure_code = ? and level = 'region' {where}",
            [SCREENSHOT_MEASURE],
        ).fetchall()
    visit = Visit(browser, server + "/")
    try:
        visit.open(f"{server}/{tier}/measures/{SCREENSHOT_MEASURE}.html")
        markers = visit.page.locator('figure[data-level="region"] svg.spc-chart g.change')
        assert markers.count() == expected
    finally:
        visit.close()


# Every visible element with its own text: its computed font size, and for chart text the
# size it is drawn at (the chart scales with its width).
_TEXT_SIZES_JS = """
() => {
  const out = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = Array.from(el.childNodes).some(
      (n) => n.nodeType === Node.TEXT_NODE && n.textContent.trim());
    if (!own || el.closest("symbol, title, desc, script, style")) continue;
    const rects = el.getClientRects();
    const style = getComputedStyle(el);
    if (!rects.length || style.visibility === "hidden" || style.display === "none") continue;
    const size = parseFloat(style.fontSize);
    let drawn = size;
    const chart = el.closest("svg.spc-chart");
    if (chart) {
      drawn = size * chart.getBoundingClientRect().width / chart.viewBox.baseVal.width;
    }
    out.push({ tag: el.tagName, text: el.textContent.trim().slice(0, 40), size, drawn,
               chart: !!chart });
  }
  return out;
}
"""


@pytest.mark.parametrize("tier", ["internal", "public", "fixture_internal", "fixture_public"])
def test_every_page_at_390_px_wide(browser, sites, server, tier):
    site = sites[tier]
    visit = Visit(browser, server + "/", width=390)
    try:
        for relative in _pages(site):
            visit.open(f"{server}/{tier}/{relative}")
            page = visit.page
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, (relative, width)
            small = [t for t in page.evaluate(_TEXT_SIZES_JS) if t["size"] < 10]
            assert small == [], (relative, small[:5])
            # Chart text is drawn at 10 px or more too, not just declared so.
            tiny = [t for t in page.evaluate(_TEXT_SIZES_JS) if t["chart"] and t["drawn"] < 10]
            assert tiny == [], (relative, tiny[:5])
        assert visit.errors == [] and visit.outside == []
    finally:
        visit.close()


# An organisations page after its script ran: each card's points, table rows and drawing.
_ORG_CARDS_JS = """
() => Array.from(document.querySelectorAll('figure.chart-card[data-level="organisation"]'))
  .map((card) => {
    const svg = card.querySelector("svg.spc-chart");
    return {
      key: card.dataset.seriesKey, measure: card.dataset.measure, id: svg ? svg.id : null,
      points: card.querySelectorAll("svg.spc-chart circle.pt").length,
      dataPoints: Number(card.dataset.points),
      rows: Array.from(card.querySelectorAll("details.data-table tbody tr")).map(
        (tr) => Array.from(tr.children).map((cell) => cell.textContent)),
      header: Array.from(card.querySelectorAll("details.data-table thead th")).map(
        (th) => th.textContent),
      title: card.querySelector("h3.chart-title").textContent,
      reading: card.querySelector(".reading").textContent,
      meta: card.querySelector(".meta").textContent.replace(/\\s+/g, " ").trim(),
      csv: card.querySelector('a[download][href$=".csv"]').href,
    };
  })
"""
# Whether the drawing the script made is the one the server draws (same elements,
# attributes and text), and the first difference if not.
_SAME_SVG_JS = """
([id, svg]) => {
  const holder = document.createElement("div");
  holder.innerHTML = svg;
  const drawn = document.getElementById(id), server = holder.firstChild;
  if (drawn.isEqualNode(server)) return null;
  const a = [drawn, ...drawn.querySelectorAll("*")], b = [server, ...server.querySelectorAll("*")];
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (!a[i] || !b[i]) return ["elements", a.length, b.length];
    const x = a[i].cloneNode(false).outerHTML, y = b[i].cloneNode(false).outerHTML;
    if (x !== y) return [x, y];
  }
  return ["text differs"];
}
"""


def test_organisations_page_is_drawn_by_the_script_from_its_data_file(
    browser, sites, server, warehouse
):
    """An ICB's organisations page is a shell: the script draws every organisation's
    chart and data table from the page's data file, the same drawing the server makes for
    the other levels, one point per value and one table row per month in ``fct_spc``."""
    from pipelines.dashboard.build import chart_context, load_series, load_site
    from pipelines.dashboard.charts import render_chart

    site = sites["internal"]
    page_path = sorted((site / "measures" / SCREENSHOT_MEASURE).glob("*.html"))[0]
    icb = page_path.stem
    with duckdb.connect(str(warehouse), read_only=True) as con:
        counts = {
            key: (values, months)
            for key, values, months in con.execute(
                """select series_key, count(value), count(*) from fct_spc
                   where tier = 'internal' and level = 'organisation' and measure_code = ?
                     and icb_code = ? group by all""",
                [SCREENSHOT_MEASURE, icb],
            ).fetchall()
        }
        loaded = load_site(con, "internal")
        measure = loaded.measures[SCREENSHOT_MEASURE]
        load_series(con, loaded, measure)
    series = {s.series_key: s for s in measure.series["organisation"] if s.icb_code == icb}
    assert len(counts) >= 2 and set(series) == set(counts)
    visit = Visit(browser, server + "/")
    try:
        visit.open(f"{server}/internal/measures/{SCREENSHOT_MEASURE}/{icb}.html")
        page = visit.page
        cards = page.evaluate(_ORG_CARDS_JS)
        assert sorted(c["key"] for c in cards) == sorted(counts)
        assert page.locator("#needs-script").is_hidden()
        for card in cards:
            values, months = counts[card["key"]]
            assert card["points"] == card["dataPoints"] == values, card["key"]
            assert len(card["rows"]) == months, card["key"]
            # The drawing and the table are the server's, element for element.
            s = series[card["key"]]
            assert card["title"] == s.title
            svg = render_chart(s, measure.months, measure.fmt, card["id"])
            assert page.evaluate(_SAME_SVG_JS, [card["id"], str(svg)]) is None, card["key"]
            context = chart_context(s, measure, 0)
            assert card["reading"] == context["reading"]
            assert context["completeness"] in card["meta"]
            columns = ["month", "value", "numerator", "denominator", "centre", "lpl", "upl"]
            want = [[str(r[c]) for c in columns] + [r["point"]] for r in context["rows"]]
            assert [row[: len(columns) + 1] for row in card["rows"]] == want, card["key"]
            assert page.request.get(card["csv"]).ok
        # The summary table's links reach the drawn cards; the tooltip works on them.
        first = cards[0]
        page.locator(f'table.summary a[href="#organisation-{first["key"]}"]').click()
        assert page.url.endswith(f"#organisation-{first['key']}")
        point = page.locator(f'figure[data-series-key="{first["key"]}"] circle.pt').first
        point.hover()
        assert page.locator("#tooltip").is_visible()
        assert "Numerator: " in page.locator("#tooltip").inner_text()
        assert visit.errors == [] and visit.outside == []
    finally:
        visit.close()


def test_without_javascript_organisations_say_so_and_aggregates_still_chart(browser, sites, server):
    """With scripts off, an organisations page says plainly that its charts need the
    script and links the data; the measure page's region, ICB and sector charts are drawn
    on the server and need nothing."""
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"{server}/internal/measures/{SCREENSHOT_MEASURE}.html")
        assert page.locator('figure[data-level="region"] svg.spc-chart circle.pt').count() > 0
        assert page.locator('figure[data-level="icb"] svg.spc-chart').count() > 0
        org_page = page.locator("ul.org-pages a").first.get_attribute("href")
        page.goto(f"{server}/internal/measures/{org_page}")
        note = page.locator("#needs-script")
        assert note.is_visible()
        assert "drawn in your browser by the page’s script" in note.inner_text()
        assert page.locator("figure.chart-card").count() == 0
        data = note.locator("a").get_attribute("href")
        assert page.request.get(f"{server}/internal/measures/{SCREENSHOT_MEASURE}/{data}").ok
        rows = page.locator("table.summary tbody tr")
        assert rows.count() > 0
        assert page.locator('table.summary a[download][href$=".csv"]').count() == rows.count()
    finally:
        context.close()
    # The public site has no organisation page, so no data file for one either.
    assert not list(sites["public"].rglob("*.data.js"))
