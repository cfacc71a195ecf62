"""A second region end to end: the Innovation Agency profile on the NATIONAL ODS files.

This is what a collaborative outside the North East does: copy a profile, name its ICBs
(QYG Cheshire and Merseyside, QE1 Lancashire and South Cumbria), point ``ods_dir`` at the
files ODS publishes for all of England, and run the demo. The published warehouse must
hold that region's organisations only, expect returns only from them, use the profile's
catalogue start and due days, and carry nothing of the North East sample; returns from
outside the region (North West Ambulance Service, filed under Greater Manchester; a
North East trust's file dropped into the wrong landing folder; a Bolton practice in a
Lancashire collated file) are refused with a reason naming the region.

The pipeline runs as ``python -m pipelines.cli demo`` in a subprocess: the Dagster
partitions definition reads ``catalogue_start`` when it is imported, so another region
needs another process. About two minutes.
"""

from __future__ import annotations

import calendar
import csv
import json
import os
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from conftest import FIXTURES, SAMPLES
from pipelines.settings import PROJECT_ROOT

pytestmark = pytest.mark.e2e

PROFILE = PROJECT_ROOT / "config" / "profiles" / "innovation-agency.toml"
REGION_SAMPLE = SAMPLES / "regions" / "innovation_agency"
NATIONAL = FIXTURES / "ods_national"
REGION = {"QYG", "QE1"}
REGION_LABEL = "Innovation Agency (North West Coast) (ICBs QYG, QE1)"
CATALOGUE_START = date(2023, 4, 1)
RETURN_DUE_DAYS = 25
# A North East sample return that lands in this region's folder by mistake.
MISDIRECTED = "2024-07/RTD_2024-06.csv"


def national_icbs() -> dict[str, str]:
    """org_code -> ICB for every trust and GP practice in the national files."""
    icbs = {}
    for name in ("etr.csv", "epraccur.csv"):
        with (NATIONAL / name).open(encoding="latin-1", newline="") as handle:
            icbs |= {row[0]: row[3] for row in csv.reader(handle)}
    return icbs


def north_east_codes() -> set[str]:
    """Every code the North East deployment knows: the QHM rows of the national files and
    its local register (care homes, independents, merged trusts, the ICB itself)."""
    codes = {code for code, icb in national_icbs().items() if icb == "QHM"} | {"QHM"}
    with (SAMPLES / "local_register.csv").open(encoding="utf-8") as handle:
        codes |= {row["org_code"] for row in csv.DictReader(handle)}
    return codes


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Prepare and run the demo once under the profile, on the national ODS files."""
    root = tmp_path_factory.mktemp("innovation_agency")
    landing = root / "landing"
    shutil.copytree(REGION_SAMPLE / "landing", landing)
    (landing / MISDIRECTED).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SAMPLES / "landing" / MISDIRECTED, landing / MISDIRECTED)
    # Nothing from the developer's shell: only the profile and these overrides.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFETY_OBS_")}
    env |= {
        "SAFETY_OBS_CONFIG": str(PROFILE.relative_to(PROJECT_ROOT)),
        "SAFETY_OBS_ODS_DIR": str(NATIONAL.relative_to(PROJECT_ROOT)),
        "SAFETY_OBS_VAR_DIR": str(root / "var"),
        "SAFETY_OBS_LANDING_DIR": str(landing),
        "SAFETY_OBS_SETTLE_SECONDS": "0",  # copied just now, and complete
        "SAFETY_OBS_DBT_TARGET_DIR": str(root / "dbt_target"),
        "DBT_LOG_PATH": str(root / "dbt_logs"),
    }
    env.pop("DAGSTER_HOME", None)
    logs = []
    for command in ("prepare", "demo"):
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", command],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        logs.append(proc.stdout[-4000:] + proc.stderr[-4000:])
        assert proc.returncode == 0, f"{command} failed:\n{logs[-1]}"
    published = root / "var" / "published" / "current"
    return {
        "root": root,
        "internal": published / "warehouse.duckdb",
        "public": published / "public" / "warehouse.duckdb",
        "working": root / "var" / "warehouse" / "working.duckdb",
        "stdout": logs[-1],
    }


def query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def columns(db: Path) -> dict[str, dict[str, str]]:
    """table -> {column: type} for every table of a published file."""
    found: dict[str, dict[str, str]] = {}
    for table, column, kind in query(
        db,
        "select table_name, column_name, data_type from information_schema.columns"
        " order by table_name, ordinal_position",
    ):
        found.setdefault(table, {})[column] = kind
    return found


def test_the_demo_published(run):
    assert "Safety Observatory: published" in run["stdout"]
    manifest = json.loads((REGION_SAMPLE / "SAMPLE_MANIFEST.json").read_text())
    [(facts,)] = query(run["internal"], "select count(*) from fct_measure_monthly")
    assert facts == manifest["fct_measure_monthly_rows"]


def test_every_published_organisation_and_icb_is_in_the_region(run):
    icbs = national_icbs()
    [(organisations,)] = query(run["internal"], "select count(*) from dim_organisation")
    in_files = sum(1 for icb in icbs.values() if icb in REGION)
    # The national files' QYG and QE1 rows, the two ICBs and four care homes.
    assert organisations == in_files + 2 + 4
    checked = []
    for tier in ("internal", "public"):
        for table, cols in columns(run[tier]).items():
            if "icb_code" in cols:
                found = {
                    icb for (icb,) in query(run[tier], f"select distinct icb_code from {table}")
                }
                assert found - {None} <= REGION, (tier, table, found)
                checked.append(table)
            for column in ("org_code", "reporting_org_code", "successor_code"):
                if column not in cols:
                    continue
                found = {c for (c,) in query(run[tier], f"select distinct {column} from {table}")}
                found.discard(None)
                outside = {c for c in found if icbs.get(c, "QYG") not in REGION}
                assert not outside, (tier, table, column, sorted(outside)[:10])
                local = {c for c in found if c not in icbs}
                assert local <= {"QYG", "QE1", "VIA01", "VIA02", "VIA03", "VIA04"}, local
    assert {"dim_organisation", "mart_submission_completeness", "fct_measure_monthly"} <= set(
        checked
    )
    assert {"pub_measure_by_icb_monthly", "pub_measure_by_sector_monthly"} <= set(checked)


def test_no_north_east_code_appears_anywhere_published(run):
    """Not in any text column of any table, in either tier."""
    north_east = north_east_codes()
    assert {"QHM", "RTD", "RTF", "RR7", "VNE01"} <= north_east
    for tier in ("internal", "public"):
        for table, cols in columns(run[tier]).items():
            for column, kind in cols.items():
                if kind != "VARCHAR":
                    continue
                values = {v for (v,) in query(run[tier], f"select distinct {column} from {table}")}
                assert not values & north_east, (tier, table, column, values & north_east)


def test_calendar_starts_at_the_profiles_catalogue_start(run):
    [(first,)] = query(run["internal"], "select min(period) from dim_period")
    assert first == CATALOGUE_START
    [(first_public,)] = query(run["public"], "select min(period) from dim_period")
    assert first_public == CATALOGUE_START


def test_returns_are_due_the_profiles_days_after_month_end(run):
    rows = query(
        run["internal"], "select distinct period, due_date from mart_submission_completeness"
    )
    assert len(rows) == 6  # April to September 2023
    for period, due in rows:
        month_end = period.replace(day=calendar.monthrange(period.year, period.month)[1])
        assert due == month_end + timedelta(days=RETURN_DUE_DAYS), (period, due)


def test_completeness_expects_returns_from_the_regions_organisations_only(run):
    icbs = national_icbs()
    rows = query(
        run["internal"],
        "select org_code, icb_code, sector_code, measure_code, period, status"
        " from mart_submission_completeness",
    )
    assert {icb for _, icb, *_ in rows} == REGION
    missing = [r for r in rows if r[5] == "missing"]
    assert all(icbs.get(org, icb) in REGION for org, icb, *_ in missing)
    # Outside general practice, exactly the returns the sample leaves out on purpose: RBN's
    # July, care home VIA03's August, and REM's August sepsis row (quarantined).
    others = {(org, period) for org, _, sector, _, period, _ in missing if sector != "gp_practice"}
    assert others == {
        ("RBN", date(2023, 7, 1)),
        ("VIA03", date(2023, 8, 1)),
        ("REM", date(2023, 8, 1)),
    }
    # General practice: every region practice the register expects to report (active or
    # closed, open in the month), except those the sample's collated files carry. Hundreds,
    # not the 385,000 national "missing" returns of issue 11.
    expected = _expected_practice_months(date(2023, 4, 1), 6)
    reported = {(org, period) for org, _, sector, _, period, s in rows if s != "missing"}
    gp_missing = {
        (org, period) for org, _, sector, _, period, _ in missing if sector == "gp_practice"
    }
    assert gp_missing == expected - reported
    assert 0 < len(gp_missing) < 6 * 600


def _expected_practice_months(first: date, months: int) -> set[tuple[str, date]]:
    """(practice, month) pairs the register expects for QYG and QE1, from the national file
    (prescribing setting 4, status active or closed, open during the month)."""
    pairs = set()
    periods = [
        date(first.year + (first.month - 1 + i) // 12, (first.month - 1 + i) % 12 + 1, 1)
        for i in range(months)
    ]
    with (NATIONAL / "epraccur.csv").open(encoding="latin-1", newline="") as handle:
        for row in csv.reader(handle):
            if row[3] not in REGION or row[25] != "4" or row[12] not in ("A", "C"):
                continue
            opened = row[10] and date(int(row[10][:4]), int(row[10][4:6]), int(row[10][6:]))
            closed = row[11] and date(int(row[11][:4]), int(row[11][4:6]), int(row[11][6:]))
            for period in periods:
                month_end = period.replace(day=calendar.monthrange(period.year, period.month)[1])
                if (not opened or opened <= month_end) and (not closed or closed >= period):
                    pairs.add((row[0], period))
    return pairs


def test_returns_from_outside_the_region_are_refused_naming_it(run):
    rejected = dict(
        query(
            run["working"],
            "select file_name, reason from raw.submission_log where status = 'rejected'",
        )
    )
    advice = "to accept its returns, give it one of the region's ICBs in the local register"
    assert rejected == {
        "RX7_2023-09.csv": f"submitter_outside_region: 'RX7' is in ICB QOP, outside the region "
        f"{REGION_LABEL}; {advice}",
        "RTD_2024-06.csv": f"submitter_outside_region: 'RTD' is in ICB QHM, outside the region "
        f"{REGION_LABEL}; {advice}",
    }
    quarantined = query(run["working"], "select source_file, rules, reasons from raw.quarantine")
    assert (
        "QE1_2023-05_gp_practices.csv",
        ["organisation_outside_region"],
        "organisation_outside_region: organisation P82001 is in ICB QOP, outside the region "
        f"{REGION_LABEL}",
    ) in quarantined
    rules = sorted(r for _, rules, _ in quarantined for r in rules)
    assert rules == [
        "numerator_exceeds_denominator",
        "organisation_outside_region",
        "period_before_catalogue_start",
    ]
    # The register holds the region only; the rest of England is listed as outside.
    assert query(
        run["working"], "select distinct icb_code from raw.ods_organisations order by 1"
    ) == [
        ("QE1",),
        ("QYG",),
    ]
