"""An ICB report's organisation pages, opened in Chromium beside the dashboard site of the
same snapshot: the dashboard's bundled script draws every organisation's chart card from
the site's per-ICB data files, each card's CSV link reaches the ICB's CSV, and without the
site (the data files missing) the page says so and still has every figure as text."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from report_fixtures import make_report_warehouse

from pipelines.dashboard import build_site
from pipelines.report import build_reports

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is missing: run `make browser` (Debian's chromium) to enable this test",
)
#: The fixture's ICB QZZ: three organisations, two measures each (FALLS, NEWS2), except the
#: care home VZZ01, which reports falls only.
QZZ_SLOTS = {("FALLS", "RZZ01"), ("FALLS", "RZZ02"), ("FALLS", "VZZ01"),
             ("NEWS2", "RZZ01"), ("NEWS2", "RZZ02")}  # fmt: skip


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory) -> Path:
    """A snapshot's internal site and reports side by side, as publication writes them."""
    root = tmp_path_factory.mktemp("snapshot")
    warehouse = make_report_warehouse(root / "warehouse.duckdb")
    build_site(warehouse, root / "site", "internal")
    build_reports(warehouse, root / "reports", "internal", region_name="Test Region", pdf=False)
    return root


@pytest.fixture(scope="module")
def server(snapshot) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=snapshot))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox"]
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page, errors
        browser.close()


def test_the_script_draws_every_organisation_chart_from_the_dashboard_data(server, page):
    page, errors = page
    page.goto(f"{server}/reports/icb-QZZ-organisations.html", wait_until="load")
    assert errors == []
    slots = page.eval_on_selector_all(
        "div.org-chart",
        """els => els.map(e => ({
            measure: e.dataset.measure, key: e.dataset.key,
            card: !!e.querySelector('figure.chart-card'),
            chart: !!e.querySelector('figure.chart-card svg.spc-chart'),
            csv: (e.querySelector('a[download][href$=".csv"]') || {}).href || null}))""",
    )
    assert {(s["measure"], s["key"]) for s in slots} == QZZ_SLOTS
    assert all(s["card"] and s["chart"] and s["csv"] for s in slots), slots
    assert page.locator("#needs-script").is_hidden()
    # The CSV link is relative to the dashboard's data file, not to the report page.
    falls = next(s for s in slots if (s["measure"], s["key"]) == ("FALLS", "RZZ01"))
    assert falls["csv"].endswith("/site/measures/FALLS/QZZ.csv")
    response = page.request.get(falls["csv"])
    assert response.ok and "\norganisation,RZZ01," in response.text()
    # The impact row the report adds stays beside the drawn card.
    assert page.locator("div.org-chart + table.impact-row").count() == len(QZZ_SLOTS)


def test_without_the_dashboard_the_page_says_so_and_keeps_its_figures(snapshot, tmp_path, page):
    page, _ = page
    alone = tmp_path / "reports"
    shutil.copytree(snapshot / "reports", alone)
    page.goto(alone.joinpath("icb-QZZ-organisations.html").as_uri(), wait_until="load")
    assert page.locator("#needs-script").is_visible()
    assert page.locator("figure.chart-card").count() == 0
    assert page.locator("div.org-chart figure.chart p.reading").count() == len(QZZ_SLOTS)
    assert "Sunnyside Hospitals falls huddles" in page.content()  # CHG-001, as text
