"""The incident marts on the generated sample and on a planted scenario: event semantics
(latest revision, re-grading, deletions), the derived measures equal to counts the test
recomputes from the sample files themselves, and the reconciliation with the returns."""

from __future__ import annotations

import calendar
import csv
import io
import json
import os
import shutil
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from incident_inputs import LFPSE_HEADER, kh03_xlsx, lfpse_row

sys.path.insert(0, str(Path(__file__).parents[1] / "dashboard"))
from dashboard_fixtures import make_published_warehouse
from support.warehouse import dbt_build as build_models

from pipelines.dashboard import build_site
from pipelines.incidents.ingest import ingest_incidents
from pipelines.incidents.kh03 import ingest_kh03
from pipelines.incidents.rules import event_key
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.settings import PROJECT_ROOT, load_settings
from pipelines.warehouse import connect

SAMPLES = PROJECT_ROOT / "data_samples"
sys.path.insert(0, str(SAMPLES / "incidents"))
import generate_incidents  # noqa: E402  (the sample's own generator)


def dbt_build(working_db: Path, scratch: Path, select: list[str] | None = None) -> None:
    """dbt build of the incident marts and measures and what they need (or ``select``),
    through the one shared helper (tests/support/warehouse.py); fails with dbt's output."""
    done = build_models(
        working_db,
        scratch,
        select or ["+path:models/marts/incidents", "+int_incident__measure_values"],
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample region: its returns and two years of generated incident extracts,
    ingested and built."""
    root = tmp_path_factory.mktemp("incident_sample")
    os.environ["SAFETY_OBS_LANDING_DIR"] = str(root / "landing")
    os.environ["SAFETY_OBS_VAR_DIR"] = str(root / "var")
    shutil.copytree(SAMPLES / "landing", root / "landing")
    manifest = generate_incidents.generate(root / "incidents")
    settings = load_settings()
    db = root / "working.duckdb"
    con = connect(db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    ingest_landing(con, settings)
    outcomes = ingest_incidents(con, settings, landing_dir=root / "incidents" / "landing")
    generate_incidents.generate_kh03(root / "incidents")
    outcomes += ingest_kh03(con, settings, landing_dir=root / "incidents" / "kh03")
    assert {o.status for o in outcomes} == {"loaded"}
    assert sum(o.rows_quarantined for o in outcomes) == 0
    con.close()
    dbt_build(db, root)
    yield duckdb.connect(str(db), read_only=True), manifest, root / "incidents" / "landing"
    os.environ.pop("SAFETY_OBS_LANDING_DIR")
    os.environ.pop("SAFETY_OBS_VAR_DIR")


def _read(path: Path) -> list[dict[str, str]]:
    """A sample file's rows by header, read here without the pipeline's reader."""
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    frame = pl.read_excel(path, has_header=False, infer_schema_length=0, drop_empty_rows=False)
    rows = frame.rows()
    header, body = rows[2], rows[3:]  # a title row and a blank row above the header
    return [dict(zip(header, row, strict=True)) for row in body]


def _day(text: str) -> date:
    return date.fromisoformat(text) if "-" in text else date(*map(int, reversed(text.split("/"))))


SEVERITY = {"NONE": 5, "LOW": 4, "MOD": 3, "SEV": 2, "DEATH": 1}


def recompute(landing: Path) -> dict[tuple[str, date], dict[str, int]]:
    """Events per organisation and month, and of them moderate-or-worse, straight from the
    files: per organisation and month the last file (path order) holding that month wins,
    an event is its highest revision there, its harm the worst of its patients."""
    last: dict[tuple[str, date], dict[str, list[dict[str, str]]]] = {}
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        per_key: dict[tuple[str, date], dict[str, list[dict[str, str]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for row in _read(path):
            if "Reference" in row:
                org, day, ref = row["OccurredOrganisationCode"], _day(row["T005"]), row["Reference"]
            else:
                org, day, ref = "RTD", _day(row["inc_dincident"]), row["recordid"]
            per_key[(org, day.replace(day=1))][ref].append(row)
        last.update(per_key)
    counts: dict[tuple[str, date], dict[str, int]] = {}
    for key, events in last.items():
        moderate = 0
        for rows in events.values():
            if "Reference" in rows[0]:
                top = max(int(r["Revision"]) for r in rows)
                harms = [
                    min(int(r["OT001"]), int(r["OT002"]) + 1)
                    for r in rows
                    if int(r["Revision"]) == top
                ]
            else:
                harms = [SEVERITY[r["inc_severity"]] for r in rows]
            moderate += min(harms) <= 3
        counts[key] = {"incidents": len(events), "moderate": moderate}
    return counts


@pytest.mark.e2e  # two years of the sample region, built by dbt: minutes
def test_the_generator_writes_the_committed_manifest(sample):
    """Same seed, same sample: what the generator wrote is what MANIFEST.json records."""
    _, manifest, landing = sample
    committed = json.loads((SAMPLES / "incidents" / "MANIFEST.json").read_text())
    assert manifest == committed
    assert sorted(p.relative_to(landing).as_posix() for p in landing.rglob("*.*")) == sorted(
        committed["files"]
    )
    # Realistic volumes: the large acute trust records 1,000-1,500 events a month.
    per_month = manifest["events"] / 24
    assert 4000 < per_month < 8000


@pytest.mark.e2e  # two years of the sample region, built by dbt: minutes
def test_events_are_the_latest_revision_with_deletions_counted(sample):
    con, manifest, _ = sample
    assert (
        con.execute("select count(*) from marts.fct_incident").fetchone()[0] == manifest["events"]
    )
    story = manifest["story"]
    lfpse = event_key(
        "incidents_lfpse", story["lfpse_regraded"]["org"], story["lfpse_regraded"]["reference"]
    )
    harm, revisions = con.execute(
        "select harm_code, revisions from marts.fct_incident where event_key = ?", [lfpse]
    ).fetchone()
    assert (harm, revisions) == (3, 2)
    datix = event_key("incidents_datix", "RTD", story["datix_regraded"]["reference"])
    assert con.execute(
        "select harm_level from marts.fct_incident where event_key = ?", [datix]
    ).fetchone() == ("severe",)
    for gone in ("lfpse_deleted", "datix_deleted"):
        layout = "incidents_lfpse" if gone.startswith("lfpse") else "incidents_datix"
        key = event_key(layout, story[gone]["org"], story[gone]["reference"])
        assert con.execute(
            "select count(*) from marts.fct_incident where event_key = ?", [key]
        ).fetchone() == (0,)
    deleted = con.execute(
        "select file_name, sum(events_deleted) from marts.mart_incident_extracts"
        " group by 1 having sum(events_deleted) > 0 order by 1"
    ).fetchall()
    assert deleted == [
        ("QHM_lfpse_2023Q4_reextract.csv", 1),
        ("RTD_datix_2024-06_reexport.xlsx", 1),
    ]
    # Reported date = earliest submission: the re-graded LFPSE event keeps its first one.
    lag = con.execute("select min(reporting_lag_days) from marts.fct_incident").fetchone()[0]
    assert lag >= 0


def kh03_bed_days(folder: Path) -> dict[tuple[str, date], float]:
    """Occupied bed days per organisation and month from KH03 files, read here by position
    (column row on line 14: Year, Period End, Region Code, Org Code, Org Name, then
    Available and Occupied Total from columns 6 and 12)."""
    days: dict[tuple[str, date], float] = {}
    for path in sorted(folder.iterdir()):
        rows = pl.read_excel(
            path, has_header=False, infer_schema_length=0, drop_empty_rows=False
        ).rows()
        assert rows[13][3] == "Org Code" and rows[12][11] == "Occupied"
        for row in rows[14:]:
            if not row[3]:
                continue
            fy, end = int(row[0][:4]), row[1]
            first = {"June": 4, "September": 7, "December": 10, "March": 1}[end]
            year = fy + 1 if first < 4 else fy
            for month in range(first, first + 3):
                days[(row[3], date(year, month, 1))] = (
                    float(row[11]) * calendar.monthrange(year, month)[1]
                )
    return days


@pytest.mark.e2e  # two years of the sample region, built by dbt: minutes
def test_derived_measures_equal_counts_recomputed_from_the_files(sample):
    con, _, landing = sample
    expected = recompute(landing)
    derived = con.execute(
        "select org_code, period, measure_code, numerator, denominator"
        " from intermediate.int_incident__measure_values"
        " where measure_code in ('INC_REPORTING_RATE', 'INC_MODERATE_HARM_RATE')"
    ).fetchall()
    assert len(derived) > 400
    for org, period, measure, numerator, denominator in derived:
        key = "incidents" if measure == "INC_REPORTING_RATE" else "moderate"
        assert numerator == expected[(org, period)][key], (org, period, measure)
        assert denominator > 0
    # Every organisation-month the files hold with KH03 beds has its rate (the catalogue
    # names kh03 as the rates' denominator source), divided by the bed days the test works
    # out from the KH03 files themselves: average occupied beds (Total) x days in the month.
    bed_days = kh03_bed_days(landing.parent / "kh03")
    rates = {(o, p): d for o, p, m, _, d in derived if m == "INC_REPORTING_RATE"}
    assert rates.keys() == {k for k in expected if k in bed_days}
    for key, denominator in rates.items():
        assert denominator == round(bed_days[key]), key
    # The roll-ups add up to the organisations' events.
    total = con.execute(
        "select sum(incidents) from marts.fct_incident_by_geography_monthly where level = 'region'"
    ).fetchone()[0]
    assert total == sum(v["incidents"] for v in expected.values())


def test_reconciliation_flags_a_planted_disagreement(tmp_path, monkeypatch):
    monkeypatch.setenv("SAFETY_OBS_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
    returns = tmp_path / "landing"
    returns.mkdir()
    # RTD reports 3 incidents for March 2024, as its records hold; RR7 reports 10 but its
    # records hold 2: the planted disagreement.
    for org, count in (("RTD", 3), ("RR7", 10)):
        (returns / f"{org}_2024-03.csv").write_text(
            "org_code,period,measure_code,numerator,denominator\n"
            f"{org},2024-03,INCIDENT_REPORTING,{count},41000\n"
        )
    incidents = tmp_path / "incidents"
    incidents.mkdir()
    rows = [lfpse_row(Reference=f"50000{i}") for i in range(3)] + [
        lfpse_row(Reference=f"60000{i}", OccurredOrganisationCode="RR7") for i in range(2)
    ]
    (incidents / "QHM_lfpse_2024-03.csv").write_text("\n".join([LFPSE_HEADER, *rows]))
    # KH03 for January-March 2024: RTD's occupied beds (the rates' denominator, catalogue
    # denominator_source kh03) average 1,000.5 a day; RR7 is not in it.
    kh03 = tmp_path / "kh03"
    kh03.mkdir()
    (kh03 / "KH03_2023-24_Q4.xlsx").write_bytes(kh03_xlsx([["RTD", "NEWCASTLE", 900, 0, 100.5, 0]]))
    settings = load_settings()
    db = tmp_path / "working.duckdb"
    con = connect(db)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    ingest_landing(con, settings)
    [outcome] = ingest_incidents(con, settings, landing_dir=incidents)
    assert outcome.rows_loaded == 5
    assert [o.rows_loaded for o in ingest_kh03(con, settings, landing_dir=kh03)] == [1]
    con.close()
    dbt_build(db, tmp_path)
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select org_code, reported_count, derived_count, difference, is_flagged"
            " from marts.mart_incident_reconciliation order by org_code"
        ).fetchall()
        assert rows == [("RR7", 10, 2, -8, True), ("RTD", 3, 3, 0, False)]
        rate = con.execute(
            "select numerator, denominator from intermediate.int_incident__measure_values"
            " where org_code = 'RTD' and measure_code = 'INC_REPORTING_RATE'"
        ).fetchall()
        # KH03's bed days (1,000.5 x 31 days in March), not the returned 41,000.
        assert rate == [(3, round(1000.5 * 31))]
    # The completeness page of the internal site shows the mart as dbt built it: RR7's
    # disagreement flagged (and first), RTD's agreement not.
    (tmp_path / "published").mkdir()
    published = make_published_warehouse(tmp_path / "published" / "warehouse.duckdb", impact=False)
    with duckdb.connect(str(published)) as site_con:
        site_con.execute(f"attach '{db}' as built (read_only)")
        site_con.execute(
            "create table mart_incident_reconciliation as"
            " select * from built.marts.mart_incident_reconciliation"
        )
    page = (build_site(published, tmp_path / "site").parent / "completeness.html").read_text()
    assert "2 organisation-months compared, 1 flagged." in page
    rr7, rtd = page.index('data-org="RR7"'), page.index('data-org="RTD"')
    assert rr7 < rtd
    assert 'class="flagged"' in page[rr7 : page.index(">", rr7)]
    assert "<strong>Flagged</strong>" in page[rr7 : page.index("</tr>", rr7)]
    assert '<td class="num">10</td><td class="num">2</td>' in page[rr7 : page.index("</tr>", rr7)]
    assert "Within tolerance" in page[rtd : page.index("</tr>", rtd)]
