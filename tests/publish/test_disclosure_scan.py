"""The disclosure scan and the CSV neutraliser on small hand-made tables and files.

Fast and independent of dbt: each rule of the scan is shown to pass a safe table and to name
the problem in an unsafe one, so a scan that silently stops checking something fails here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest

from pipelines.publish.disclosure import (
    DisclosureRules,
    OrganisationFacts,
    _Identifiers,
    is_count_column,
    is_forbidden_column,
    neutralise_csv_cell,
    rules_from_settings,
    scan_csv_and_parquet,
    scan_public_tier,
    scan_site,
)

RULES = DisclosureRules()
COLUMNS = "icb_code, measure_code, period, numerator, denominator, value, is_suppressed, reason"
# A tiny region / ICB pair: QAA small (primary), QBB withheld so QAA cannot be derived.
REGION = [("M1", "2024-01-01", 120, 6000, 20.0, False, None)]
ICB = [
    ("QAA", "M1", "2024-01-01", None, None, None, True, "primary"),
    ("QBB", "M1", "2024-01-01", None, None, None, True, "secondary"),
    ("QCC", "M1", "2024-01-01", 100, 5000, 20.0, False, None),
]


# The organisation-level fact behind them: three organisations in each ICB.
ORGANISATIONS = {"QAA": ["A1", "A2", "A3"], "QBB": ["B1", "B2", "B3"], "QCC": ["C1", "C2", "C3"]}
FACTS = OrganisationFacts(schema="facts")


def _facts(con: duckdb.DuckDBPyConnection, organisations=ORGANISATIONS) -> None:
    """``facts.fct_measure_monthly``: each organisation's share of its ICB's figures."""
    con.execute("create schema if not exists facts")
    con.execute(
        "create or replace table facts.fct_measure_monthly (org_code varchar, icb_code varchar,"
        " measure_code varchar, period date, numerator bigint, denominator bigint)"
    )
    for icb, orgs in organisations.items():
        con.executemany(
            "insert into facts.fct_measure_monthly values (?, ?, 'M1', '2024-01-01', ?, ?)",
            [(org, icb, 10, 1000) for org in orgs],
        )


def _warehouse(region=REGION, icb=ICB, organisations=ORGANISATIONS) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    _facts(con, organisations)
    con.execute("create schema public")
    con.execute(
        "create table public.pub_measure_by_region_monthly (measure_code varchar,"
        " period date, numerator bigint, denominator bigint, value double,"
        " is_suppressed boolean, suppression_reason varchar)"
    )
    con.execute(
        "create table public.pub_measure_by_icb_monthly (icb_code varchar, measure_code varchar,"
        " period date, numerator bigint, denominator bigint, value double,"
        " is_suppressed boolean, suppression_reason varchar)"
    )
    con.executemany(
        "insert into public.pub_measure_by_region_monthly values (?,?,?,?,?,?,?)", region
    )
    con.executemany("insert into public.pub_measure_by_icb_monthly values (?,?,?,?,?,?,?,?)", icb)
    return con


def test_a_safe_public_tier_has_no_problems():
    assert scan_public_tier(_warehouse(), rules=RULES, facts=FACTS) == []


@pytest.mark.parametrize(
    ("icb", "expected"),
    [
        (
            [ICB[0], ("QBB", "M1", "2024-01-01", 20, 1000, 20.0, False, None), ICB[2]],
            "exactly one suppressed cell under a published",
        ),
        ([*ICB[:2], ("QCC", "M1", "2024-01-01", 5, 5000, 1.0, False, None)], "in 1..7"),
        ([*ICB[:2], ("QCC", "M1", "2024-01-01", 101, 5000, 20.2, False, None)], "not a multiple"),
        ([ICB[0], ("QBB", "M1", "2024-01-01", 0, 0, None, True, "secondary"), ICB[2]], "carry"),
        (
            [ICB[0], ("QBB", "M1", "2024-01-01", None, None, None, False, None), ICB[2]],
            "not flagged",
        ),
        (
            [ICB[0], ("QBB", "M1", "2024-01-01", None, None, None, None, None), ICB[2]],
            "null or unread",
        ),
        ([ICB[0], ("QBB", "M1", "2024-01-01", None, None, None, True, None), ICB[2]], "reason"),
    ],
    ids=["derivable", "small", "unrounded", "zero-not-null", "unflagged", "null-flag", "no-reason"],
)
def test_each_rule_names_its_problem(icb, expected):
    problems = scan_public_tier(_warehouse(icb=icb), rules=RULES, facts=FACTS)
    assert any(expected in p for p in problems), problems


def test_a_suppressed_parent_made_of_published_children_is_derivable():
    region = [("M1", "2024-01-01", None, None, None, True, "primary")]
    icb = [("QCC", "M1", "2024-01-01", 100, 5000, 20.0, False, None)]
    problems = scan_public_tier(_warehouse(region, icb), rules=RULES, facts=FACTS)
    assert any("whose children" in p and "all published" in p for p in problems), problems


def test_thresholds_follow_the_rules():
    looser = DisclosureRules(min_count=1, max_suppressed_count=4, rounding_base=1)
    icb = [*ICB[:2], ("QCC", "M1", "2024-01-01", 6, 5001, 1.2, False, None)]
    assert scan_public_tier(_warehouse(icb=icb), rules=looser, facts=FACTS) == []
    assert scan_public_tier(_warehouse(icb=icb), rules=RULES, facts=FACTS) != []


def test_a_published_cell_from_two_organisations_fails():
    """The planted cell: QCC's published row is two organisations' figures, so either reads
    the other's by taking away its own."""
    two = {**ORGANISATIONS, "QCC": ["C1", "C2"]}
    problems = scan_public_tier(_warehouse(organisations=two), rules=RULES, facts=FACTS)
    assert problems == [
        "public.pub_measure_by_icb_monthly: 1 published cell(s) built from fewer than 3"
        " organisations (with one, the cell is its figures; with two, either reads the"
        " other's by taking away its own) (e.g. icb_code=QCC, measure_code=M1,"
        " period=2024-01-01)"
    ]
    # One organisation is as bad; three or more (or a looser configuration) pass.
    one = {**ORGANISATIONS, "QCC": ["C1"]}
    assert scan_public_tier(_warehouse(organisations=one), rules=RULES, facts=FACTS) != []
    four = {**ORGANISATIONS, "QCC": ["C1", "C2", "C3", "C4"]}
    assert scan_public_tier(_warehouse(organisations=four), rules=RULES, facts=FACTS) == []
    looser = DisclosureRules(min_contributors=2)
    assert scan_public_tier(_warehouse(organisations=two), rules=looser, facts=FACTS) == []


def test_an_all_zero_return_is_not_a_contributor():
    # A third organisation that sent zeros adds nothing to the sum: still two.
    con = _warehouse(organisations={**ORGANISATIONS, "QCC": ["C1", "C2"]})
    con.execute(
        "insert into facts.fct_measure_monthly values ('C3', 'QCC', 'M1', '2024-01-01', 0, 0)"
    )
    problems = scan_public_tier(con, rules=RULES, facts=FACTS)
    assert any("1 published cell(s) built from fewer than 3" in p for p in problems), problems


def test_suppressed_cells_must_hold_enough_organisations_between_them():
    """QAA and QBB are suppressed under a published region: the region less QCC is their
    sum. With one organisation each, either reads the other's figures."""
    one_each = {"QAA": ["A1"], "QBB": ["B1"], "QCC": ["C1", "C2", "C3"]}
    problems = scan_public_tier(_warehouse(organisations=one_each), rules=RULES, facts=FACTS)
    assert problems == [
        "public.pub_measure_by_icb_monthly: 1 group(s) whose suppressed cells hold fewer than"
        " 3 organisations between them, so public.pub_measure_by_region_monthly less the"
        " published cells gives their figures together and one can read another's"
        " (e.g. measure_code=M1, period=2024-01-01: 2 organisation(s))"
    ]
    enough = {"QAA": ["A1"], "QBB": ["B1", "B2"], "QCC": ["C1", "C2", "C3"]}
    assert scan_public_tier(_warehouse(organisations=enough), rules=RULES, facts=FACTS) == []


def test_contributors_are_unchecked_without_facts_and_wrong_facts_are_caught(tmp_path):
    con = _warehouse()
    # No facts: reported, never a silent pass.
    assert scan_public_tier(con, rules=RULES) == [
        f"public.{table}: cannot check contributing organisations, no organisation-level"
        " facts were given to the scan"
        for table in ("pub_measure_by_icb_monthly", "pub_measure_by_region_monthly")
    ]
    # Facts that are not the ones behind the tables (here: empty) explain no published cell.
    con.execute("delete from facts.fct_measure_monthly")
    problems = scan_public_tier(con, rules=RULES, facts=FACTS)
    assert any("published cell(s) with counts but no organisation behind them" in p
               for p in problems), problems  # fmt: skip
    # A missing fact table is named.
    problems = scan_public_tier(con, rules=RULES, facts=OrganisationFacts(schema="nowhere"))
    assert all("cannot count contributing organisations from nowhere" in p for p in problems)
    # Facts in another file (the internal tier beside a published public tier).
    internal = tmp_path / "internal.duckdb"
    with duckdb.connect(str(internal)) as other:
        _facts(other)
    facts = OrganisationFacts(database=internal, schema="facts")
    assert scan_public_tier(_warehouse(), rules=RULES, facts=facts) == []


def _spc(con: duckdb.DuckDBPyConnection, rows: list[tuple]) -> None:
    con.execute(
        "create table public.pub_spc (level varchar, series_key varchar, icb_code varchar,"
        " sector_code varchar, measure_code varchar, period date, numerator bigint,"
        " denominator bigint, value double, is_suppressed boolean, centre double)"
    )
    con.executemany("insert into public.pub_spc values (?,?,?,?,?,?,?,?,?,?,?)", rows)


SPC = [
    ("region", "region", None, None, "M1", "2024-01-01", 120, 6000, 20.0, False, 20.0),
    ("icb", "QAA", "QAA", None, "M1", "2024-01-01", None, None, None, True, None),
    ("icb", "QBB", "QBB", None, "M1", "2024-01-01", None, None, None, True, None),
    ("icb", "QCC", "QCC", None, "M1", "2024-01-01", 100, 5000, 20.0, False, 20.0),
]


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (3, ("icb", "QCC", "QCC", None, "M1", "2024-01-01", 102, 5000, 20.4, False, 20.0)),
        (1, ("icb", "QAA", "QAA", None, "M1", "2024-01-01", 10, 500, 20.0, False, 20.0)),
        (0, ("country", "x", None, None, "M1", "2024-01-01", 120, 6000, 20.0, False, 20.0)),
    ],
    ids=["unrounded-internal-counts", "suppressed-cell-charted", "unknown-level"],
)
def test_public_spc_must_chart_the_published_cells(row, expected):
    con = _warehouse()
    _spc(con, SPC)
    assert scan_public_tier(con, rules=RULES, facts=FACTS) == []
    con.execute("delete from public.pub_spc")
    con.executemany(
        "insert into public.pub_spc values (?,?,?,?,?,?,?,?,?,?,?)",
        [expected if i == row else r for i, r in enumerate(SPC)],
    )
    problems = scan_public_tier(con, rules=RULES, facts=FACTS)
    wanted = {
        0: "public.pub_spc: 1 row(s) at a level other than",
        1: "public.pub_spc: 1 icb row(s) that are not a published cell",
        3: "public.pub_spc: 1 icb row(s) that are not a published cell",
    }[row]
    assert any(wanted in p for p in problems), problems


def test_identifying_columns_and_respondent_counts():
    con = duckdb.connect()
    con.execute(
        "create table pub_survey (icb_code varchar, org_code varchar, measure_name varchar,"
        " respondent_email varchar, respondents bigint, is_suppressed boolean)"
    )
    con.execute("insert into pub_survey values ('QAA', 'RTD', 'x', 'a@b', 5, false)")
    problems = scan_public_tier(con, ["main.pub_survey"], rules=RULES)
    assert any("pub_survey.org_code: column would identify" in p for p in problems)
    assert any("pub_survey.respondent_email: column would identify" in p for p in problems)
    assert not any("measure_name" in p for p in problems)
    # Survey groups under 10 respondents are small even when a multiple of 5.
    assert any("respondents: 1 published count(s) in 1..9" in p for p in problems), problems


def test_a_count_column_without_a_flag_may_not_be_null():
    con = duckdb.connect()
    con.execute("create table pub_x (measure_code varchar, row_count bigint)")
    con.execute("insert into pub_x values ('M1', null), ('M2', 10)")
    problems = scan_public_tier(con, ["main.pub_x"], rules=RULES)
    assert problems == [
        "main.pub_x.row_count: 1 null count(s) with no is_suppressed column to flag them"
        " (e.g. measure_code=M1)"
    ]


def test_event_estimates_are_rounded_and_never_small_either_way():
    """pub_programme_impact's events (docs/programme-impact.md section 4): null is allowed
    (not a count chart, or withheld), a small count is not, nor is a negative one."""
    con = duckdb.connect()
    con.execute(
        "create table pub_programme_impact (measure_code varchar, expected_events bigint,"
        " observed_events bigint, excess_events bigint, events_better bigint)"
    )
    con.execute(
        "insert into pub_programme_impact values ('M1', 600, 650, 50, -50),"
        " ('M2', null, null, null, null), ('M3', 0, 0, 0, 0)"
    )
    assert scan_public_tier(con, ["main.pub_programme_impact"], rules=RULES) == []
    con.execute(
        "insert into pub_programme_impact values ('M4', 600, 605, 5, -5), ('M5', 12, 20, 8, 8)"
    )
    problems = scan_public_tier(con, ["main.pub_programme_impact"], rules=RULES)
    assert problems == [
        "main.pub_programme_impact.expected_events: 1 event estimate(s) not a multiple of"
        " the rounding base 5 (e.g. measure_code=M5)",
        "main.pub_programme_impact.excess_events: 1 published event estimate(s) in 1..7"
        " either way (must be withheld) (e.g. measure_code=M4)",
        "main.pub_programme_impact.excess_events: 1 event estimate(s) not a multiple of"
        " the rounding base 5 (e.g. measure_code=M5)",
        "main.pub_programme_impact.events_better: 1 published event estimate(s) in 1..7"
        " either way (must be withheld) (e.g. measure_code=M4)",
        "main.pub_programme_impact.events_better: 1 event estimate(s) not a multiple of"
        " the rounding base 5 (e.g. measure_code=M5)",
    ], problems


@pytest.mark.parametrize(
    ("name", "count", "forbidden"),
    [
        ("numerator", True, False),
        ("denominator_rounded", True, False),
        ("numerator_definition", False, False),  # text about a count (dim_measure)
        ("organisations_reporting", False, True),
        ("row_count", True, False),
        ("country_code", False, False),
        ("n_respondents", True, False),
        ("org_name", False, True),
        ("name", False, True),
        ("full_name", False, True),
        ("email", False, True),
        ("sector_name", False, False),
        ("value", False, False),
    ],
)
def test_column_classification(name, count, forbidden):
    assert is_count_column(name) is count
    assert is_forbidden_column(name) is forbidden


@pytest.mark.parametrize(
    ("cell", "safe"),
    [
        ("=1+2", "'=1+2"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+44 20 7946 0000", "'+44 20 7946 0000"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("-1.5", "-1.5"),  # a plain number: a spreadsheet reads it as a number
        ("+3", "+3"),
        ("1e-5", "1e-5"),
        ("acute_trust", "acute_trust"),
        ("", ""),
        ("'=1", "'=1"),  # already neutralised: idempotent
    ],
)
def test_neutralise_csv_cell(cell, safe):
    assert neutralise_csv_cell(cell) == safe
    assert neutralise_csv_cell(safe) == safe


def _write_csv(path: Path, rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def test_files_scan_counts_injection_and_hierarchy(tmp_path):
    con = _warehouse()
    facts_db = tmp_path / "facts" / "internal.duckdb"
    facts_db.parent.mkdir()
    with duckdb.connect(str(facts_db)) as other:
        _facts(other)
    facts = OrganisationFacts(database=facts_db, schema="facts")
    for table in ("pub_measure_by_region_monthly", "pub_measure_by_icb_monthly"):
        con.execute(f"copy public.{table} to '{tmp_path / table}.parquet' (format parquet)")
    header = ["measure_code", "label", "numerator", "denominator", "is_suppressed"]
    _write_csv(
        tmp_path / "pub_safe.csv",
        [header, ["M1", neutralise_csv_cell("=cmd"), 10, 20, False], ["M2", "-1.5", "", "", True]],
    )
    assert scan_csv_and_parquet(tmp_path, rules=RULES, facts=facts) == []

    (tmp_path / "sub").mkdir()
    _write_csv(
        tmp_path / "sub" / "pub_bad.csv",
        [header, ["M1", "=cmd", "'3", 20, False], ["M2", "@x", 7, 20, False]],
    )
    # Unsuppress QBB in the ICB export: QAA becomes derivable from the region total.
    con.execute(
        "update public.pub_measure_by_icb_monthly set numerator = 20, denominator = 1000,"
        " value = 20.0, is_suppressed = false, suppression_reason = null where icb_code = 'QBB'"
    )
    con.execute(
        "copy public.pub_measure_by_icb_monthly"
        f" to '{tmp_path / 'pub_measure_by_icb_monthly'}.parquet' (format parquet)"
    )
    problems = scan_csv_and_parquet(tmp_path, rules=RULES, facts=facts)
    text = "\n".join(problems)
    assert "sub/pub_bad.csv.label: 2 cell(s) open to formula injection" in text
    assert "sub/pub_bad.csv.numerator: 1 cell(s) that are not numbers" in text
    assert "sub/pub_bad.csv.numerator: 1 published count(s) in 1..7" in text
    assert "pub_measure_by_icb_monthly.parquet: 1 group(s) with exactly one suppressed" in text
    assert "pub_safe.csv" not in text


def test_unreadable_export_is_a_problem(tmp_path):
    (tmp_path / "pub_x.parquet").write_bytes(b"not parquet")
    [problem] = scan_csv_and_parquet(tmp_path, rules=RULES)
    assert problem.startswith("pub_x.parquet: unreadable")


def test_rules_come_from_the_configuration(monkeypatch):
    """The scan reads the deployment's configuration, the same values dbt gets as vars."""
    from pipelines.settings import load_settings

    assert rules_from_settings() == DisclosureRules()  # the committed configuration
    monkeypatch.setenv("SAFETY_OBS_PUBLIC_MAX_SUPPRESSED_COUNT", "9")
    monkeypatch.setenv("SAFETY_OBS_PUBLIC_ROUNDING_BASE", "10")
    monkeypatch.setenv("SAFETY_OBS_PUBLIC_MIN_CONTRIBUTORS", "4")
    assert rules_from_settings() == DisclosureRules(
        max_suppressed_count=9, rounding_base=10, min_contributors=4
    )
    dbt_vars = load_settings().dbt_vars()
    assert dbt_vars["public_max_suppressed_count"] == 9
    assert dbt_vars["public_rounding_base"] == 10
    assert dbt_vars["public_min_contributors"] == 4
    # The lower bound is a constant, one value for dbt's macro and for the scan.
    assert dbt_vars["public_min_count"] == DisclosureRules().min_count == 1


# The public site, as pipelines/dashboard writes it: chart points carry their month's
# figures as data-n / data-d, data tables hold them under their column headers.
PAGE = """<!doctype html><html><body><main>
<h1>Falls with harm</h1><p>NHS Zedshire Integrated Care Board</p>
<svg class="spc-chart"><circle class="pt cc" data-m="Jan 2024" data-n="{n}" data-d="6,000"/>
<circle class="pt cc" data-m="Feb 2024" data-n="suppressed" data-d="suppressed"/></svg>
<table><thead><tr><th>Month</th><th>Value</th><th>Numerator</th><th>Denominator</th></tr>
</thead><tbody><tr><th>Jan 2024</th><td>20.0</td><td>{n}</td><td>6,000</td></tr>
<tr><th>Feb 2024</th><td>–</td><td>suppressed</td><td>suppressed</td></tr></tbody></table>
<svg><use href="#icon-cc"/><path fill="#A81001" d="M1 1"/></svg>
{extra}</main></body></html>"""
SITE_ORGANISATIONS = [
    ("RZZ01", "SUNNYSIDE HOSPITALS NHS TRUST"),
    ("A81001", "THE DENSHAM SURGERY"),
    ("Y01957", "FOUNDATIONS"),  # one word: its code is looked for, not the word
]


def _site(tmp_path: Path, n: str = "120", extra: str = "") -> Path:
    site = tmp_path / "site"
    (site / "measures").mkdir(parents=True)
    (site / "measures" / "FALLS.html").write_text(PAGE.format(n=n, extra=extra))
    (site / "static").mkdir()
    (site / "static" / "dashboard.js").write_text("var tip = document.getElementById('t');")
    (site / ".safety-observatory-site").write_text("tier=public\n")
    return site


def test_a_safe_site_passes(tmp_path):
    extra = "<p>Foundations of safety: counts of reporting organisations are not published.</p>"
    assert (
        scan_site(_site(tmp_path, extra=extra), rules=RULES, organisations=SITE_ORGANISATIONS) == []
    )


@pytest.mark.parametrize(
    ("n", "extra", "expected"),
    [
        ("3", "", "measures/FALLS.html: numerator: 2 published count(s) in 1..7"),
        ("121", "", "numerator: 2 count(s) not a multiple of the rounding base 5"),
        ("about 120", "", "numerator: 2 cell(s) that are neither a number nor a suppression"),
        ("120", "<p>Sunnyside Hospitals NHS Trust</p>", "e.g. ['sunnyside hospitals nhs trust']"),
        ("120", '<a href="RZZ01.html">x</a>', "1 organisation code(s) or name(s), e.g. ['RZZ01']"),
        ("120", "<p>Y01957</p>", "e.g. ['Y01957']"),
        ("120", "<p>3 organisations reported for Mar 2025</p>", "counts of organisations"),
        ("120", '<circle class="pt" data-o="2"/>', "1 organisations_reporting figure(s) published"),
        (
            "120",
            "<table><thead><tr><th>Organisations</th></tr></thead></table>",
            "organisations would identify",
        ),
        # Cells a browser closes itself are cells: Python's html.parser saw none here.
        (
            "120",
            "<table><thead><tr><th>Month<th>Numerator</tr></thead><tr><td>Mar<td>4</table>",
            "numerator: 1 published count(s) in 1..7 (must be suppressed), e.g. ['4']",
        ),
        # Not shown by a browser, but in the page's source for anyone to read.
        ("120", "<!-- checked against The Densham Surgery -->", "['the densham surgery']"),
        ("120", "<p>THE&#32;DENSHAM&nbsp;SURGERY</p>", "['the densham surgery']"),
    ],
    ids=[
        "small",
        "unrounded",
        "not-a-number",
        "name",
        "code",
        "one-word-name-code",
        "org-count-text",
        "org-count-attribute",
        "org-count-column",
        "cells-left-open",
        "name-in-a-comment",
        "name-with-character-references",
    ],
)
def test_each_site_rule_names_its_problem(tmp_path, n, extra, expected):
    problems = scan_site(_site(tmp_path, n, extra), rules=RULES, organisations=SITE_ORGANISATIONS)
    assert any(expected in p for p in problems), problems


def test_names_sharing_their_first_words_are_each_found_whole_and_only_whole():
    """A national register has thousands of names starting with the same words ("CARE
    HOME ...", "THE SURGERY ..."): each is found in any case and punctuation, a name that
    begins another is found on its own, and a near miss or a one-word name is not."""
    register = [(f"VN{i:04}", f"CARE HOME {i:04}") for i in range(3000)]
    register += [("RX1", "THE SURGERY"), ("RX2", "The Surgery, North Road"), ("RX3", "CARE")]
    finder = _Identifiers(register)
    text = (
        "Figures for Care Home 0042 and the surgery; then Care-Home 12, "
        "The Surgery (North Road) and care."
    )
    assert finder.find(text) == {"care home 0042", "the surgery", "the surgery north road"}
    assert finder.find("care home 2999 VN0007 #VN0008") == {"care home 2999", "VN0007"}
    assert finder.find("care home") == set()


def test_site_data_files_are_scanned_and_unreadable_files_reported(tmp_path):
    site = _site(tmp_path)
    data = {"measure": "FALLS", "points": [{"numerator": 120, "denominator": 6000}]}
    (site / "data.json").write_text(json.dumps(data))
    assert scan_site(site, rules=RULES, organisations=SITE_ORGANISATIONS) == []
    data["points"].append({"numerator": 4, "denominator": None, "org_name": "x"})
    (site / "data.json").write_text(json.dumps(data))
    (site / "logo.png").write_bytes(b"\x89PNG")
    (site / "broken.json").write_text("{")
    problems = scan_site(site, rules=RULES, organisations=SITE_ORGANISATIONS)
    text = "\n".join(problems)
    assert "site/data.json: numerator: 1 published count(s) in 1..7" in text
    assert "site/data.json: org_name would identify an organisation" in text
    assert "site/logo.png: a .png file the site scan cannot read" in text
    assert "site/broken.json: unreadable JSON" in text
    assert scan_site(tmp_path / "nowhere", rules=RULES) == [
        f"{tmp_path / 'nowhere'}: no site to scan"
    ]
