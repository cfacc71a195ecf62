"""The public tier of one full run on the committed sample, as it is published.

The contributors rule on real data: the sample's mental-health sector is two trusts (and
the one measure only they report has a region row of two trusts), its independent sector
three hospitals, its survey's ambulance and mental-health sectors one trust each. Then the
public tier standing alone: its own SPC table, the public site built from
``public/warehouse.duckdb`` with the internal file gone, and the disclosure scan reading
the site's pages and data files (planted small counts and names fail it).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pytest

from conftest import SampleBuild
from pipelines.dashboard import build_site
from pipelines.defs.publish import disclosure_audit
from pipelines.publish.disclosure import OrganisationFacts, scan_public_tier, scan_site
from pipelines.publish.snapshot import WAREHOUSE_FILE

MEASURE_LEVELS = {
    "pub_measure_by_region_monthly": ["measure_code", "period"],
    "pub_measure_by_icb_monthly": ["icb_code", "measure_code", "period"],
    "pub_measure_by_sector_monthly": ["icb_code", "sector_code", "measure_code", "period"],
}
SURVEY_LEVELS = {
    "pub_culture_survey_by_icb": ["icb_code", "wave_id", "domain_code"],
    "pub_culture_survey_by_sector": ["icb_code", "sector_code", "wave_id", "domain_code"],
}
MENTAL_HEALTH = "mental_health_trust"


@pytest.fixture(scope="module")
def snapshot(sample_build: SampleBuild) -> Path:
    """The published snapshot of the session's full run on the sample (read only)."""
    return sample_build.published_snapshot()


@pytest.fixture
def con(snapshot: Path):
    """The public file, with the internal file attached as ``internal`` (for the truth)."""
    with duckdb.connect(str(snapshot / "public" / WAREHOUSE_FILE), read_only=True) as c:
        c.execute(f"attach '{snapshot / WAREHOUSE_FILE}' as internal (read_only)")
        yield c


def _organisations(snapshot: Path) -> list[tuple[str, str | None]]:
    with duckdb.connect(str(snapshot / WAREHOUSE_FILE), read_only=True) as c:
        return c.execute(
            "select org_code, org_name from dim_organisation"
            " where sector_code is distinct from 'icb'"
        ).fetchall()


# ---------------------------------------------------------------------------------------------
# A. A minimum number of contributors.


def _contributors(con, table: str, keys: list[str], fact: str, contributes: str) -> list:
    on = " and ".join(f"f.{k} is not distinct from p.{k}" for k in keys)
    return con.execute(
        f"""select p.is_suppressed, p.suppression_reason,
                   count(distinct f.org_code) filter (where {contributes})
            from {table} p left join internal.{fact} f on {on}
            group by p.is_suppressed, p.suppression_reason, {", ".join(f"p.{k}" for k in keys)}"""
    ).fetchall()


def test_no_public_cell_has_fewer_than_three_contributing_organisations(con):
    """Counted here from the internal tier's organisation-level facts, every table."""
    found: dict[str, set] = {}
    for table, keys in MEASURE_LEVELS.items():
        rows = _contributors(
            con, table, keys, "fct_measure_monthly", "f.numerator <> 0 or f.denominator <> 0"
        )
        found[table] = {reason for _, reason, _ in rows}
        assert rows and all(n >= 3 for suppressed, _, n in rows if not suppressed), table
        assert all(n < 3 for _, reason, n in rows if reason == "contributors"), table
    for table, keys in SURVEY_LEVELS.items():
        rows = _contributors(con, table, keys, "fct_culture_survey", "f.respondents > 0")
        found[table] = {reason for _, reason, _ in rows}
        assert rows and all(n >= 3 for suppressed, _, n in rows if not suppressed), table
    # Not vacuous: the rule fires at every level of the measures and in the survey (the
    # survey's ICB has ten organisations).
    for table in [*MEASURE_LEVELS, "pub_culture_survey_by_sector"]:
        assert "contributors" in found[table], table


def test_the_two_trust_sector_is_never_published_nor_its_region_row(con):
    # The attack: a trust takes its own figures from the published sector row.
    [(published,)] = con.execute(
        f"select count(*) from pub_measure_by_sector_monthly where sector_code = '{MENTAL_HEALTH}'"
        " and not is_suppressed"
    ).fetchall()
    assert published == 0
    # RESTRICTIVE_PRACTICE only mental-health trusts report: its region and ICB rows are
    # the same two trusts, so they are withheld too, every month.
    for table in ("pub_measure_by_region_monthly", "pub_measure_by_icb_monthly"):
        reasons = con.execute(
            f"select distinct suppression_reason from {table}"
            " where measure_code = 'RESTRICTIVE_PRACTICE'"
        ).fetchall()
        assert reasons == [("contributors",)], table


def _cells(con, measure: str, period) -> tuple[list[tuple], dict[tuple, float | None]]:
    """Every public cell of one measure and month as (level, icb, sector) -> numerator
    (None when suppressed), with the internal (true) numerators for the suppressed ones."""
    cells: dict[tuple, float | None] = {}
    for level, table in (
        ("region", "pub_measure_by_region_monthly"),
        ("icb", "pub_measure_by_icb_monthly"),
        ("sector", "pub_measure_by_sector_monthly"),
    ):
        icb = "icb_code" if level != "region" else "null"
        sector = "sector_code" if level == "sector" else "null"
        for row in con.execute(
            f"select {icb}, {sector}, numerator from {table} where measure_code = ? and period = ?",
            [measure, period],
        ).fetchall():
            cells[(level, row[0], row[1])] = row[2]
    return list(cells), cells


def _derivable(order: list[tuple], cells: dict, target: tuple) -> bool:
    """Whether ``target`` is fixed by the published cells through every additive relation
    the tables have (the region is the sum of its ICBs, an ICB the sum of its sectors): the
    suppressed cells are unknowns, and the target is derivable exactly when its unit
    vector lies in the row space of the relations restricted to the unknowns."""
    unknown = [c for c in order if cells[c] is None]
    index = {c: i for i, c in enumerate(unknown)}
    relations = []
    for parent in order:
        level, icb, _ = parent
        children = [
            c
            for c in order
            if (level == "region" and c[0] == "icb")
            or (level == "icb" and c[0] == "sector" and c[1] == icb)
        ]
        if level == "sector" or not children:
            continue
        row = np.zeros(len(unknown))
        for cell, sign in [(parent, 1.0)] + [(c, -1.0) for c in children]:
            if cell in index:
                row[index[cell]] += sign
        if row.any():
            relations.append(row)
    if not relations:
        return False
    matrix = np.array(relations)
    unit = np.zeros(len(unknown))
    unit[index[target]] = 1.0
    return np.linalg.matrix_rank(np.vstack([matrix, unit])) == np.linalg.matrix_rank(matrix)


def test_the_two_trust_sector_cannot_be_derived_from_any_published_total(con):
    """For every month and measure the mental-health trusts report: neither region nor ICB
    less the other published sectors gives the two trusts, no combination of the tables'
    relations fixes their cell, and what differencing does give (the suppressed sectors
    together) holds at least three organisations, so neither trust can take away its own
    figures and read the other's."""
    series = con.execute(
        "select distinct measure_code, period from pub_measure_by_sector_monthly"
        f" where sector_code = '{MENTAL_HEALTH}' order by 1, 2"
    ).fetchall()
    assert len(series) >= 24 * 3  # four measures over two years
    for measure, period in series:
        order, cells = _cells(con, measure, period)
        for target in [c for c in order if c[2] == MENTAL_HEALTH]:
            assert cells[target] is None
            assert not _derivable(order, cells, target), (measure, period, target)
            icb = target[1]
            siblings = [c for c in order if c[0] == "sector" and c[1] == icb]
            for total in [("region", None, None), ("icb", icb, None)]:
                if cells.get(total) is None:
                    continue  # a suppressed total gives nothing to subtract from
                hidden = [c for c in siblings if cells[c] is None]
                assert len(hidden) >= 2, (measure, period, total)
                [(organisations,)] = con.execute(
                    "select count(distinct org_code) from internal.fct_measure_monthly"
                    " where measure_code = ? and period = ? and icb_code = ?"
                    " and list_contains(?, sector_code)"
                    " and (numerator <> 0 or denominator <> 0)",
                    [measure, period, icb, [c[2] for c in hidden]],
                ).fetchall()
                assert organisations >= 3, (measure, period, total, hidden)


def test_the_scan_passes_the_published_tables_and_recounts_from_the_internal_file(
    snapshot, tmp_path
):
    facts = OrganisationFacts(database=snapshot / WAREHOUSE_FILE, schema="main")
    with duckdb.connect(str(snapshot / "public" / WAREHOUSE_FILE), read_only=True) as c:
        assert scan_public_tier(c, facts=facts) == []
    # The same tables with the contributors rule undone (the two trusts published) fail.
    scratch = tmp_path / "public.duckdb"
    shutil.copyfile(snapshot / "public" / WAREHOUSE_FILE, scratch)
    with duckdb.connect(str(scratch)) as c:
        [(undone,)] = c.execute(
            "update pub_measure_by_sector_monthly set numerator = 760, denominator = 90000,"
            " value = 760 * 1000 / 90000, is_suppressed = false, suppression_reason = null"
            f" where sector_code = '{MENTAL_HEALTH}' and suppression_reason = 'contributors'"
        ).fetchall()
        problems = scan_public_tier(c, facts=facts)
    assert undone > 0
    assert any(
        f"pub_measure_by_sector_monthly: {undone} published cell(s) built from fewer than 3" in p
        for p in problems
    ), problems


# ---------------------------------------------------------------------------------------------
# B. The public tier stands alone.


def test_the_public_file_has_its_own_spc_and_no_organisation_level_table(con):
    tables = {
        t
        for (t,) in con.execute(
            "select table_name from duckdb_tables() where database_name = current_database()"
        ).fetchall()
    }
    public_tables = {t for t in tables if t.startswith(("pub_", "dim_"))}
    assert {"pub_spc", "dim_icb"} <= public_tables
    assert not {"fct_spc", "fct_measure_monthly", "dim_organisation"} & tables
    # pub_spc charts exactly the published cells, at region, ICB and sector level.
    for level, table in (
        ("region", "pub_measure_by_region_monthly"),
        ("icb", "pub_measure_by_icb_monthly"),
        ("sector", "pub_measure_by_sector_monthly"),
    ):
        [(spc_rows,)] = con.execute(
            "select count(*) from pub_spc where level = ?", [level]
        ).fetchall()
        [(cells,)] = con.execute(f"select count(*) from {table}").fetchall()
        assert spc_rows == cells > 0, level
    [(leaks,)] = con.execute(
        "select count(*) from pub_spc where is_suppressed and (numerator is not null"
        " or denominator is not null or value is not null or centre is not null)"
    ).fetchall()
    assert leaks == 0
    [(names,)] = con.execute("select list(icb_name) from dim_icb").fetchall()
    assert names == ["NHS NORTH EAST AND NORTH CUMBRIA INTEGRATED CARE BOARD"]


def test_the_public_site_builds_from_the_public_file_alone(snapshot, tmp_path):
    """A copy of the public tier with no internal file anywhere near it builds the very
    site that was published."""
    alone = tmp_path / "public"
    shutil.copytree(snapshot / "public", alone, ignore=shutil.ignore_patterns("site"))
    assert not (tmp_path / WAREHOUSE_FILE).exists()
    # Built where the publication builds it, beside the public board reports it links to.
    site = build_site(alone / WAREHOUSE_FILE, alone / "site", "public").parent
    published = snapshot / "public" / "site"
    files = sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(published) for p in published.rglob("*") if p.is_file())
    for name in files:
        assert (site / name).read_bytes() == (published / name).read_bytes(), name
    # The internal file will not do.
    with pytest.raises(ValueError, match="not the public tier's warehouse"):
        build_site(snapshot / WAREHOUSE_FILE, tmp_path / "wrong", "public")


def test_the_published_public_site_passes_the_scan(snapshot):
    site = snapshot / "public" / "site"
    organisations = _organisations(snapshot)
    assert len(organisations) > 300
    assert scan_site(site, organisations=organisations) == []
    assert disclosure_audit(snapshot) == []
    text = "\n".join(p.read_text() for p in site.rglob("*.html"))
    # What the scan reads is there: chart figures and data tables, rounded.
    counts = re.findall(r'data-n="([0-9,]+)"', text)
    assert len(counts) > 500 and all(int(c.replace(",", "")) % 5 == 0 for c in counts)


def test_the_publication_carries_board_reports_and_the_public_ones_pass_the_scan(snapshot):
    """Board reports (pipelines/report) per ICB and region, both tiers, HTML and PDF; the
    public ones scanned like the public site (disclosure_audit above ran it too)."""
    for tier in (snapshot, snapshot / "public"):
        reports = tier / "reports"
        assert (reports / "region.pdf").is_file() and (reports / "region.html").is_file()
        assert len(list(reports.glob("icb-*.pdf"))) >= 1
        assert 'href="../reports/index.html"' in (tier / "site" / "index.html").read_text()
    public = snapshot / "public" / "reports"
    assert scan_site(public, organisations=_organisations(snapshot)) == []
    manifest = json.loads((snapshot / "manifest.json").read_text())
    assert manifest["board_reports"] == {
        "internal": "reports/index.html",
        "public": "public/reports/index.html",
    }
    assert "public/reports/region.pdf" in manifest["files"]


def _planted(snapshot: Path, tmp_path: Path) -> Path:
    """A writable copy of the snapshot, to plant things in its public site."""
    copy = tmp_path / "snapshot"
    shutil.copytree(snapshot, copy)
    return copy


def test_the_scan_fails_a_count_of_3_planted_in_the_public_site(snapshot, tmp_path):
    copy = _planted(snapshot, tmp_path)
    page = copy / "public" / "site" / "measures" / "FALLS_HARM.html"
    html = page.read_text()
    first = re.search(r'data-n="([0-9,]+)"', html)
    assert first is not None
    page.write_text(html[: first.start()] + 'data-n="3"' + html[first.end() :])
    expected = [
        "site/measures/FALLS_HARM.html: numerator: 1 published count(s) in 1..7"
        " (must be suppressed), e.g. ['3']",
        "site/measures/FALLS_HARM.html: numerator: 1 count(s) not a multiple of the"
        " rounding base 5, e.g. ['3']",
    ]
    problems = scan_site(copy / "public" / "site", organisations=_organisations(copy))
    assert problems == expected
    # The publication's audit runs the same scan: this snapshot would be refused.
    assert disclosure_audit(copy) == [f"public tier: {p}" for p in expected]


def test_the_scan_reads_data_tables_json_names_and_unknown_files(snapshot, tmp_path):
    copy = _planted(snapshot, tmp_path)
    site = copy / "public" / "site"
    page = site / "measures" / "NEWS2_ON_TIME.html"
    html = page.read_text()
    # A data-table cell under "Denominator": the fourth cell of the first data row.
    row = re.search(
        r"<tr><th scope=\"row\">[^<]+</th><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>", html
    )
    assert row is not None
    html = html[: row.start(1)] + "1,233" + html[row.end(1) :]
    # A provider named on the page, and a sentence counting organisations.
    html = html.replace(
        "</main>", "<p>Gateshead Health NHS Foundation Trust: 2 organisations reported.</p></main>"
    )
    page.write_text(html)
    (site / "data.json").write_text(json.dumps({"series": [{"org_code": "RR7", "numerator": 4}]}))
    (site / "chart.png").write_bytes(b"\x89PNG\r\n")
    problems = "\n".join(scan_site(site, organisations=_organisations(copy)))
    assert (
        "NEWS2_ON_TIME.html: denominator: 1 count(s) not a multiple of the rounding base 5,"
        " e.g. ['1,233']" in problems
    )
    assert (
        "NEWS2_ON_TIME.html: 1 organisation code(s) or name(s),"
        " e.g. ['gateshead health nhs foundation trust']" in problems
    )
    assert "NEWS2_ON_TIME.html: counts of organisations in the text" in problems
    assert "site/data.json: numerator: 1 published count(s) in 1..7" in problems
    assert "site/data.json: org_code would identify an organisation" in problems
    assert "site/data.json: 1 organisation code(s) or name(s), e.g. ['RR7']" in problems
    assert "site/chart.png: a .png file the site scan cannot read" in problems
