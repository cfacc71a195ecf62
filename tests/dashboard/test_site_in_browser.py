"""The dashboard in a real browser, built from a real publication of the committed sample.

Runs the whole pipeline once, builds the internal site from the published snapshot's
internal file and the public site from its public file, and opens every page in headless
Chromium both from a local web server and from ``file://``: no console errors, no request
leaves the site, every chart has one point per value in ``fct_spc`` (internal) or
``pub_spc`` (public), icons render, and the tooltip shows the month's figures.

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

import dagster as dg
import duckdb
import pytest

from conftest import SAMPLES, run_full_pipeline
from pipelines.dashboard import build_site
from pipelines.dashboard.model import month_label
from pipelines.settings import PROJECT_ROOT, load_settings

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

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: run `make browser` (Debian's chromium) to enable this test",
)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    """The internal file of one full run's publication on the sample (its public file is
    ``public/warehouse.duckdb`` beside it). To iterate on the site without rerunning the
    pipeline, set DASHBOARD_TEST_WAREHOUSE to a published (internal) warehouse."""
    given = os.environ.get("DASHBOARD_TEST_WAREHOUSE")
    return Path(given) if given else _publish_the_sample(tmp_path_factory.mktemp("dashboard_e2e"))


def _public(warehouse: Path) -> Path:
    return warehouse.parent / "public" / "warehouse.duckdb"


def _publish_the_sample(root: Path) -> Path:
    """Run the full pipeline on a copy of the sample under ``root``; the published file."""
    with pytest.MonkeyPatch.context() as mp:
        var = root / "var"
        mp.setenv("SAFETY_OBS_VAR_DIR", str(var))
        mp.setenv("SAFETY_OBS_WORKING_DB", str(var / "warehouse" / "working.duckdb"))
        mp.setenv("SAFETY_OBS_PUBLISHED_DIR", str(var / "published"))
        mp.setenv("SAFETY_OBS_LANDING_DIR", str(root / "landing"))
        shutil.copytree(SAMPLES / "landing", root / "landing")
        result = run_full_pipeline(dg.DagsterInstance.ephemeral())
        assert result.success, "full pipeline run failed"
        return load_settings().published_current / "warehouse.duckdb"


@pytest.fixture(scope="module")
def sites(warehouse, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sites")
    return {
        "internal": build_site(warehouse, out / "internal", "internal").parent,
        "public": build_site(_public(warehouse), out / "public", "public").parent,
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

    def __init__(self, browser, allowed_prefix: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
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
