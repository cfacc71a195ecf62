"""KH03 bed occupancy (docs/incidents.md, "Occupied bed days"): the real NHS England file
(tests/fixtures/kh03, with its provenance) read below its title rows, its occupied bed days
worked out by dbt and checked against the test's own arithmetic on the same file, the
sample's generated files in the real layout, and the bad inputs: each refused or
quarantined naming the file, the line and the rule, with nothing else lost."""

from __future__ import annotations

import calendar
import sys
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from incident_inputs import kh03_xlsx
from test_incident_warehouse import SAMPLES, dbt_build, generate_incidents

from pipelines.catalogue import denominator_source_problems, load_catalogue
from pipelines.incidents.kh03 import KH03_LAYOUT, ingest_kh03
from pipelines.ingest.organisations import load_register
from pipelines.settings import load_settings
from pipelines.warehouse import connect

FIXTURE = Path(__file__).parents[1] / "fixtures" / "kh03"
REAL = FIXTURE / "kh03_Beds-Open-Overnight-Web_File-Final-DE5WC.xlsx"
ODS_NATIONAL = Path(__file__).parents[1] / "fixtures" / "ods_national"


def _real_rows() -> tuple[list[tuple], tuple]:
    """The real file's provider rows and its England row, read here by position (the test
    knows this one file's layout: column row on line 14, England on 15, providers from 17;
    Org Code in column 4, occupied Total in column 12)."""
    rows = pl.read_excel(
        REAL, has_header=False, infer_schema_length=0, drop_empty_rows=False
    ).rows()
    assert rows[13][3] == "Org Code" and rows[12][11] == "Occupied"
    return [r for r in rows[16:] if r[3]], rows[14]


@pytest.fixture
def england(tmp_path, monkeypatch):
    """A working file whose register is every NHS trust in the national ODS fixture."""
    monkeypatch.setenv("SAFETY_OBS_REGION_ICBS", "ENGLAND")
    monkeypatch.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
    db = tmp_path / "working.duckdb"
    con = connect(db)
    load_register(con, ODS_NATIONAL, None)
    yield con, db
    con.close()


def test_the_real_kh03_is_read_below_its_title_rows_and_bed_days_are_average_times_days(
    england, tmp_path
):
    con, db = england
    landing = tmp_path / "kh03"
    landing.mkdir()
    (landing / REAL.name).write_bytes(REAL.read_bytes())
    [outcome] = ingest_kh03(con, load_settings(), landing_dir=landing)
    providers, england_row = _real_rows()
    registered = {
        r[0] for r in con.execute("select org_code from raw.ods_organisations").fetchall()
    }
    unknown = [r for r in providers if r[3] not in registered]
    assert outcome.status == "loaded" and outcome.layout == KH03_LAYOUT
    assert outcome.rows_loaded == len(providers) - len(unknown) > 180
    # Providers the 2022 register no longer holds are quarantined, each by line and rule.
    assert unknown and outcome.rows_quarantined == len(unknown)
    reasons = [r[0] for r in con.execute("select reasons from raw.kh03_quarantine").fetchall()]
    for row in unknown:
        assert any(
            f"{REAL.name} line " in reason
            and f"unknown_organisation: Org Code {row[3]} is not in" in reason
            for reason in reasons
        ), row[3]
    # General & acute occupied beds of every provider add up to the England row.
    acute = con.execute(
        "select sum(occupied_beds) from raw.kh03_beds where sector = 'general_acute'"
    ).fetchone()[0]
    assert acute + sum(float(r[12]) for r in unknown) == pytest.approx(float(england_row[12]))
    con.close()
    dbt_build(db, tmp_path, select=["stg_raw__kh03_bed_days"])
    # July-September 2020: each month's bed days = the quarter's average x its days.
    expected = {
        (r[3], date(2020, month, 1)): float(r[11]) * calendar.monthrange(2020, month)[1]
        for r in providers
        if r[3] in registered
        for month in (7, 8, 9)
    }
    with duckdb.connect(str(db), read_only=True) as built:
        got = {
            (org, period): days
            for org, period, days in built.execute(
                "select org_code, period, occupied_bed_days from staging.stg_raw__kh03_bed_days"
                " where sector = 'total'"
            ).fetchall()
        }
        quarter = built.execute(
            "select org_code, sum(occupied_bed_days) from staging.stg_raw__kh03_bed_days"
            " where sector = 'total' group by 1"
        ).fetchall()
    assert got.keys() == expected.keys()
    for key, days in expected.items():
        assert got[key] == pytest.approx(days), key
    # A quarter's bed days = average x 92 days (July, August, September).
    beds = {r[3]: float(r[11]) for r in providers}
    for org, days in quarter:
        assert days == pytest.approx(beds[org] * 92)


@pytest.fixture
def region(tmp_path, monkeypatch):
    """A working file with the sample region's register and one good KH03 already loaded."""
    monkeypatch.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
    con = connect(tmp_path / "working.duckdb")
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    landing = tmp_path / "kh03"
    landing.mkdir()
    (landing / "a_first.xlsx").write_bytes(
        kh03_xlsx([["RTD", "NEWCASTLE", 900.5, 0, 80.25, 0]], year="2023-24", period_end="June")
    )
    [first] = ingest_kh03(con, load_settings(), landing_dir=landing)
    assert first.status == "loaded" and first.rows_loaded == 1
    yield con, landing
    con.close()


GOOD = ["RR7", "GATESHEAD", 300, 0, 20, 0]

# name -> (rows, kh03_xlsx options, rule, what the reason names, rows loaded beside it)
BAD_KH03 = {
    "no_header_row": ([GOOD], {"with_header": False}, "kh03_header_missing", "first 30", 0),
    "unknown_organisation": (
        [GOOD, ["RZZ", "NOWHERE NHS TRUST", 10, 0, 0, 0]],
        {},
        "unknown_organisation",
        "line 18: unknown_organisation: Org Code RZZ is not in the organisation register",
        1,
    ),
    "bed_figure_not_a_number": (
        [GOOD, ["RTF", "NORTHUMBRIA", "about 400", 0, 30, 0]],
        {},
        "beds_not_a_number",
        "line 18: beds_not_a_number: occupied beds (general_acute) 'about 400'",
        1,
    ),
    "quarter_does_not_parse": (
        [GOOD, ["RTF", "NORTHUMBRIA", "2023-24", "Q4", 400, 0, 30, 0]],
        {},
        "quarter_unreadable",
        "line 18: quarter_unreadable: Year '2023-24' with Period End 'Q4'",
        1,
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_KH03))
def test_a_bad_kh03_is_refused_or_quarantined_naming_file_line_and_rule(case, region):
    con, landing = region
    rows, options, rule, named, loaded = BAD_KH03[case]
    before = con.execute("select * from raw.kh03_beds order by all").fetchall()
    name = f"b_{case}.xlsx"
    (landing / name).write_bytes(kh03_xlsx(rows, **options))
    [outcome] = ingest_kh03(con, load_settings(), landing_dir=landing)
    assert outcome.file_name == name
    if loaded == 0:  # refused whole: logged with the rule, nothing written
        assert outcome.status == "rejected"
        assert outcome.reason.startswith(f"{rule}: ") and named in outcome.reason
    else:
        assert (outcome.status, outcome.rows_loaded, outcome.rows_quarantined) == (
            "loaded",
            loaded,
            1,
        )
        [(reasons, rules)] = con.execute(
            "select reasons, rules from raw.kh03_quarantine where source_file = ?", [name]
        ).fetchall()
        assert set(rules) == {rule} and f"{name} {named}" in reasons, reasons
    # Nothing stored before is lost; the good rows beside the bad one load.
    after = con.execute("select * from raw.kh03_beds order by all").fetchall()
    assert set(before) <= set(after)
    assert len(after) == len(before) + 5 * loaded


def test_the_sample_kh03_files_are_in_the_real_layout_and_load_whole(region, tmp_path):
    con, _ = region
    written = generate_incidents.generate_kh03(tmp_path / "sample")
    landing = tmp_path / "sample" / "kh03"
    assert sorted(p.name for p in landing.iterdir()) == sorted(written) and len(written) == 8
    outcomes = ingest_kh03(con, load_settings(), landing_dir=landing)
    assert {o.status for o in outcomes} == {"loaded"}
    assert sum(o.rows_quarantined for o in outcomes) == 0
    # Every trust of the sample with beds, every quarter: not the ambulance trust.
    orgs = {*generate_incidents.DATIX_ORGS, *generate_incidents.LFPSE_ORGS}
    stored = con.execute(
        "select org_code, count(distinct quarter_start) from raw.kh03_beds"
        " where source_file like 'Beds-%' group by 1"
    ).fetchall()
    assert dict(stored) == {org: 8 for org in orgs - generate_incidents.KH03_NO_BEDS}


def test_the_catalogue_names_kh03_for_the_incident_rates_and_refuses_a_bad_source():
    catalogue = load_catalogue()
    per_bed_day = {
        code
        for code, m in catalogue.items()
        if m.source == "incidents" and m.multiplier == 1000 and code != "INC_NO_LOW_HARM_SHARE"
    }
    assert per_bed_day and {catalogue[c].denominator_source for c in per_bed_day} == {"kh03"}
    assert catalogue["INC_REPORTING_LAG"].denominator_source is None
    row = {
        "measure_code": "INC_X",
        "source": "incidents",
        "denominator_definition": "Occupied bed days",
    }
    assert denominator_source_problems({**row, "denominator_source": "returns"}) == []
    assert denominator_source_problems({**row, "denominator_source": "census"}) == [
        "measure INC_X: denominator_source 'census' must be one of kh03, returns or blank"
    ]
    [problem] = denominator_source_problems(
        {**row, "source": "returns", "denominator_source": "kh03"}
    )
    assert "only a derived (source incidents) per-bed-day measure takes one" in problem
