"""The internal site's incident pages without a browser (docs/incidents.md): the department
level (incidents by service area, location and specialty within an organisation) on the
internal site only, and the completeness page's reconciliation flags. The dbt-built
reconciliation mart with a planted disagreement is checked on the page in
tests/incidents/test_incident_warehouse.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest
from dashboard_fixtures import MONTHS, make_published_warehouse, public_warehouse

from pipelines.dashboard import build_site

# org, month index, service area (code, name), location (code, name), specialty, harm, events
DEPARTMENT_ROWS = [
    ("RZZ01", i, sa, loc, spec, harm, n)
    for i in range(10, 24)
    for sa, loc, spec, harm, n in (
        (("1", "Zed Acute Ward Service"), ("2", "Zed Ward Location"), ("100", "Zed Cardiology"),
         "low", 20 + i),
        (("1", "Zed Acute Ward Service"), ("3", "Zed Theatre Location"), ("101", "Zed Surgery"),
         "moderate", 2),
        (("9", "Zed Community Service"), ("2", "Zed Ward Location"), ("100", "Zed Cardiology"),
         "severe", 1),
    )
]  # fmt: skip
PLANTED_NAMES = ["Zed Acute Ward Service", "Zed Community Service", "Zed Theatre Location",
                 "Zed Cardiology", "Zed Surgery"]  # fmt: skip


def add_incident_marts(warehouse: Path, reconciliation: list[tuple] = ()) -> None:
    """The two incident tables of a published internal file, with the given rows."""
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "create table fct_incident_by_department_monthly (org_code varchar, period date,"
            " service_area varchar, service_area_name varchar, location varchar,"
            " location_name varchar, specialty varchar, specialty_name varchar,"
            " harm_level varchar, incidents bigint)"
        )
        con.executemany(
            "insert into fct_incident_by_department_monthly values (?,?,?,?,?,?,?,?,?,?)",
            [
                (org, MONTHS[i], *sa, *loc, spec[0], spec[1], harm, n)
                for org, i, sa, loc, spec, harm, n in DEPARTMENT_ROWS
            ],
        )
        con.execute(
            "create table mart_incident_reconciliation (org_code varchar, period date,"
            " measure_code varchar, reported_count bigint, derived_count bigint,"
            " difference bigint, is_flagged boolean)"
        )
        if reconciliation:
            con.executemany(
                "insert into mart_incident_reconciliation values (?,?,?,?,?,?,?)", reconciliation
            )


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("incident_pages")
    warehouse = make_published_warehouse(root / "warehouse.duckdb", impact=False)
    add_incident_marts(
        warehouse,
        [
            ("RZZ01", date(2025, 3, 1), "INCIDENT_REPORTING", 40, 12, -28, True),
            ("RZZ02", date(2025, 3, 1), "INCIDENT_REPORTING", 40, 41, 1, False),
        ],
    )
    internal = build_site(warehouse, root / "site_internal").parent
    public = build_site(public_warehouse(warehouse), root / "site_public", tier="public").parent
    return internal, public


def test_an_organisation_page_shows_its_incidents_by_department_for_its_latest_12_months(sites):
    internal, _ = sites
    page = (internal / "incidents" / "rzz01.html").read_text()
    # Expected from the planted rows: the latest 12 months (index 12-23) only.
    recent = [r for r in DEPARTMENT_ROWS if r[1] >= 12]
    acute = sum(r[6] for r in recent if r[2][1] == "Zed Acute Ward Service")
    acute_harm = sum(r[6] for r in recent if r[2][1] == "Zed Acute Ward Service" and r[5] != "low")
    assert acute > 300
    assert (
        f'<th scope="row">Zed Acute Ward Service</th><td class="num">{acute}</td>'
        f'<td class="num">{acute_harm}</td>'
    ) in page
    theatre = sum(r[6] for r in recent if r[3][1] == "Zed Theatre Location")
    assert f'<th scope="row">Zed Theatre Location</th><td class="num">{theatre}</td>' in page
    assert "Apr 2024 to Mar 2025" in page  # MONTHS[12] .. MONTHS[23]
    for heading in ("Service area", "Location within the service", "Specialty"):
        assert f">{heading}</h2>" in page
    # Reached from the completeness page, which every internal page's nav links.
    completeness = (internal / "completeness.html").read_text()
    assert 'href="incidents/rzz01.html"' in completeness
    assert 'href="completeness.html">Completeness</a>' in (internal / "index.html").read_text()


def test_the_completeness_page_flags_the_disagreement(sites):
    internal, _ = sites
    page = (internal / "completeness.html").read_text()
    assert "2 organisation-months compared, 1 flagged." in page
    flagged = page.index('data-org="RZZ01"')
    assert 'class="flagged"' in page[flagged : flagged + 120]
    assert "<strong>Flagged</strong>" in page[flagged : page.index("</tr>", flagged)]
    within = page.index('data-org="RZZ02"')
    assert "Within tolerance" in page[within : page.index("</tr>", within)]
    assert flagged < within  # flagged first


def test_the_public_site_has_no_department_level_and_no_completeness_page(sites):
    _, public = sites
    assert not (public / "completeness.html").exists()
    assert not (public / "incidents").exists()
    for path in public.rglob("*"):
        if path.is_file() and path.suffix in (".html", ".csv", ".json", ".js"):
            text = path.read_text(encoding="utf-8")
            assert "completeness.html" not in text, path
            assert "Incidents by department" not in text, path
            for name in PLANTED_NAMES:
                assert name not in text, (path, name)
