"""The configured region decides which organisations the warehouse holds.

Given the national ODS files (every trust and GP practice in England), the register keeps
the region's organisations only, and a return from an organisation of another region is
refused as outside the region, naming its ICB and this region, rather than loaded or
called unknown.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from conftest import FIXTURES, SAMPLES
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import (
    load_register,
    read_local_register,
    read_ods_file,
    split_by_region,
)
from pipelines.warehouse import connect

NATIONAL = FIXTURES / "ods_national"
HEADER = "org_code,period,measure_code,numerator,denominator\n"
TODAY = date(2025, 6, 15)
NORTH_EAST = "North East and North Cumbria (ICB QHM)"


def codes(con, table: str) -> set[str]:
    return {code for (code,) in con.execute(f"select org_code from raw.{table}").fetchall()}


def national_counts_by_icb() -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in ("etr.csv", "epraccur.csv"):
        with (NATIONAL / name).open(encoding="latin-1", newline="") as handle:
            for row in csv.reader(handle):
                counts[row[3]] = counts.get(row[3], 0) + 1
    return counts


# -- the register -------------------------------------------------------------------------


def test_national_files_give_the_north_east_exactly_its_sample_rows(settings):
    con = connect(settings.working_db)
    counts = load_register(con, NATIONAL, SAMPLES / "local_register.csv", ["QHM"])
    # The committed North East sample is the QHM rows of these very files.
    assert counts == {"epraccur.csv": 671, "etr.csv": 11, "local_register.csv": 21}
    sample = {
        row[0]
        for name in ("etr.csv", "epraccur.csv")
        for row in csv.reader((SAMPLES / "ods" / name).open(encoding="utf-8"))
    }
    assert codes(con, "ods_organisations") == sample
    icbs = con.execute("select distinct icb_code from raw.ods_organisations").fetchall()
    assert icbs == [("QHM",)]
    # Everything else is listed as outside, with its ICB, and loaded nowhere.
    [(outside,)] = con.execute("select count(*) from raw.organisations_outside_region").fetchall()
    assert outside == 218 + 15971 - 682
    assert con.execute(
        "select org_name, icb_code, record_type from raw.organisations_outside_region"
        " where org_code = 'RX7'"
    ).fetchall() == [("NORTH WEST AMBULANCE SERVICE NHS TRUST", "QOP", "trust")]


def test_two_icbs_without_a_local_register(settings):
    con = connect(settings.working_db)
    counts = load_register(con, NATIONAL, None, ["QYG", "QE1"])
    national = national_counts_by_icb()
    assert counts == {"epraccur.csv": 1113, "etr.csv": 23}
    assert sum(counts.values()) == national["QYG"] + national["QE1"]
    assert con.execute("select count(*) from raw.local_organisations").fetchone() == (0,)
    icbs = con.execute("select icb_code, count(*) from raw.ods_organisations group by 1 order by 1")
    assert icbs.fetchall() == [("QE1", national["QE1"]), ("QYG", national["QYG"])]
    assert not codes(con, "ods_organisations") & {"RTD", "RTF", "RR7", "A81001"}


def test_reloading_for_another_region_replaces_the_register(settings):
    con = connect(settings.working_db)
    load_register(con, NATIONAL, SAMPLES / "local_register.csv", ["QHM"])
    load_register(con, NATIONAL, None, ["QYG", "QE1"])
    assert not codes(con, "ods_organisations") & codes(con, "organisations_outside_region")
    assert "RTD" in codes(con, "organisations_outside_region")
    assert "RBL" in codes(con, "ods_organisations")


def test_all_england_keeps_every_row(settings):
    con = connect(settings.working_db)
    counts = load_register(con, NATIONAL, SAMPLES / "local_register.csv", ["ENGLAND"])
    assert counts == {"epraccur.csv": 15971, "etr.csv": 218, "local_register.csv": 21}
    assert con.execute("select count(*) from raw.organisations_outside_region").fetchone() == (0,)


def test_region_defaults_to_the_configured_one(settings):
    """A caller that forgets the region gets the deployment's, never all of England."""
    con = connect(settings.working_db)
    assert settings.region_icbs == ("QHM",)
    assert load_register(con, NATIONAL, None) == {"epraccur.csv": 671, "etr.csv": 11}


def test_another_regions_local_register_rows_are_left_out():
    """The North East's local register under another region: its care homes, independents,
    ICB, mergers and the overrides of QHM trusts all stay out."""
    ods = pl.concat(
        [
            read_ods_file(NATIONAL / "etr.csv", "trust"),
            read_ods_file(NATIONAL / "epraccur.csv", "gp_practice"),
        ],
        how="diagonal_relaxed",
    )
    local = read_local_register(SAMPLES / "local_register.csv")
    ods_in, local_in, outside = split_by_region(ods, local, ("QYG", "QE1"))
    assert local_in.height == 0
    assert set(ods_in["icb_code"].unique()) == {"QYG", "QE1"}
    by_code = {row["org_code"]: row for row in outside.iter_rows(named=True)}
    assert by_code["VNE01"]["icb_code"] == "QHM"
    assert by_code["VNE01"]["record_type"] == "local_register"
    assert by_code["RX3"]["icb_code"] == "QHM"  # an override follows its ODS row


def test_the_local_register_can_adopt_or_release_an_organisation():
    """The ICB the warehouse will show decides, and the local register's wins over ODS:
    North West Ambulance Service (ODS: QOP) adopted into QE1 is in; a local organisation
    with no ICB cannot be placed in the region and is out; an in-region trust the local
    register files elsewhere is out."""
    ods = read_ods_file(NATIONAL / "etr.csv", "trust")
    local = pl.DataFrame(
        {
            "org_code": ["RX7", "NIA99", "RXL"],
            "org_name": ["", "Unplaced hospice", ""],
            "sector_code": ["ambulance_trust", "independent_provider", ""],
            "icb_code": ["QE1", "", "QOP"],
            "source_file": ["local.csv"] * 3,
        }
    )
    ods_in, local_in, outside = split_by_region(ods, local, ("QE1",))
    assert "RX7" in ods_in["org_code"].to_list()
    assert local_in["org_code"].to_list() == ["RX7"]
    assert "RXL" not in ods_in["org_code"].to_list()
    assert "RTX" in ods_in["org_code"].to_list()  # QE1 in ODS, untouched locally
    out = {row["org_code"]: row["icb_code"] for row in outside.iter_rows(named=True)}
    assert out["NIA99"] is None and out["RXL"] == "QOP"


# -- returns from outside the region ---------------------------------------------------------


@pytest.fixture
def national_con(settings):
    """The default (North East) deployment pointed at the national ODS files."""
    con = connect(settings.working_db)
    load_register(con, NATIONAL, SAMPLES / "local_register.csv", settings.region_icbs)
    yield con
    con.close()


def drop(settings, name: str, body: str) -> Path:
    path = settings.landing_dir / name
    path.write_text(body, encoding="utf-8")
    return path


def test_a_return_from_another_regions_trust_is_rejected_naming_both(national_con, settings):
    drop(settings, "RX7_2024-03.csv", HEADER + "RX7,2024-03,INCIDENT_REPORTING,388,61200\n")
    drop(settings, "RTD_2024-03.csv", HEADER + "RTD,2024-03,FALLS_HARM,7,41000\n")
    drop(settings, "ZZ9_2024-03.csv", HEADER + "ZZ9,2024-03,FALLS_HARM,7,41000\n")
    outcomes = {o.file_name: o for o in ingest_landing(national_con, settings, today=TODAY)}
    assert outcomes["RTD_2024-03.csv"].status == "loaded"
    outside = outcomes["RX7_2024-03.csv"]
    assert outside.status == "rejected"
    assert outside.reason == (
        f"submitter_outside_region: 'RX7' is in ICB QOP, outside the region {NORTH_EAST}; "
        "to accept its returns, give it one of the region's ICBs in the local register"
    )
    # A code in no register at all is still unknown, not "outside".
    assert outcomes["ZZ9_2024-03.csv"].reason.startswith("unknown_submitter:")
    loaded = national_con.execute("select distinct org_code from raw.measure_values").fetchall()
    assert loaded == [("RTD",)]


def test_another_regions_practice_in_a_collated_file_is_quarantined(national_con, settings):
    drop(
        settings,
        "QHM_2024-03_gp_practices.csv",
        HEADER
        + "A81001,2024-03,OPIOID_HIGH_DOSE,20,410\n"  # 2 a QHM practice: loads
        + "P82001,2024-03,OPIOID_HIGH_DOSE,21,402\n"  # 3 a Bolton practice (QOP)
        + "Z99999,2024-03,OPIOID_HIGH_DOSE,1,10\n",  # 4 in no register
    )
    [outcome] = ingest_landing(national_con, settings, today=TODAY)
    assert (outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (3, 1, 2)
    got = dict(
        national_con.execute("select source_line, rules from raw.quarantine order by 1").fetchall()
    )
    assert got == {3: ["organisation_outside_region"], 4: ["unknown_organisation"]}
    [(reasons,)] = national_con.execute(
        "select reasons from raw.quarantine where source_line = 3"
    ).fetchall()
    assert reasons == (
        f"organisation_outside_region: organisation P82001 is in ICB QOP, outside the region "
        f"{NORTH_EAST}"
    )
    assert national_con.execute("select org_code from raw.measure_values").fetchall() == [
        ("A81001",)
    ]
