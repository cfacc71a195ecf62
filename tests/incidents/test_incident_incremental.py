"""The incident models are incremental by organisation (docs/incidents.md, "Incremental by
organisation"): runs that bring a revision, a deletion by a replacement extract, a register
change and no extract at all leave every incident table as a full refresh of the same raw
data builds it, and a run recomputes the events of the organisations it brought extracts
for, no others."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from incident_inputs import DATIX_HEADER, LFPSE_HEADER, datix_row, lfpse_row
from support.incremental import assert_same_rows, mark, rebuilt_units
from support.warehouse import dbt_build

from pipelines.incidents.ingest import ingest_incidents
from pipelines.incidents.rules import event_key
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.settings import PROJECT_ROOT, load_settings
from pipelines.warehouse import connect

SAMPLES = PROJECT_ROOT / "data_samples"
SELECT = [
    "+path:models/marts/incidents",
    "+path:models/public/incidents",
    "+int_incident__measure_values",
]
# The two models built incrementally, whose rows a run without the organisation's extract
# must leave in place.
INCREMENTAL = ("intermediate.int_incident__events", "marts.fct_incident")
# The reporting lag, incremental by level, group and event month: a rebuilt unit shows by
# its mean (nulled before the build; fct_incident_reporting_lag copies it whole).
LAG = "intermediate.int_incident__reporting_lag"
LAG_UNIT = ("level", "group_code", "period")
LEVELS = ("organisation", "sector", "icb", "region")
MARCH, APRIL = date(2024, 3, 1), date(2024, 4, 1)


def _build(db: Path, scratch: Path, *args: str) -> None:
    done = dbt_build(db, scratch, SELECT, args=args, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:]


def _incident_relations(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables"
        " where table_name like '%incident%' and table_schema not in ('raw', 'main')"
        " order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def assert_equals_full_refresh(db: Path, scratch: Path) -> None:
    """A copy of ``db`` built with ``--full-refresh`` holds the same rows in every incident
    table and view as ``db`` (EXCEPT ALL both ways, so duplicates count too)."""
    # dbt names the catalog after the file (the views name it): the copy keeps the name,
    # in a folder of its own, and each side is read through its own connection.
    full = scratch / "full" / db.name
    full.parent.mkdir(exist_ok=True)
    shutil.copy(db, full)
    _build(full, scratch / "full_dbt", "--full-refresh")
    with (
        duckdb.connect(str(db), read_only=True) as con,
        duckdb.connect(str(full), read_only=True) as rebuilt,
    ):
        relations = _incident_relations(con)
        assert relations == _incident_relations(rebuilt)
        assert {
            "intermediate.int_incident__events",
            "intermediate.int_incident__reporting_lag",
            "marts.fct_incident_by_geography_monthly",
            "public.pub_incident_reporting_lag",
        } <= set(relations)
        assert con.execute("select count(*) from marts.fct_incident").fetchone()[0] > 0
    assert_same_rows(db, full, relations)
    full.unlink()


def _mark(db: Path) -> pl.DataFrame:
    """Mark every row of the incremental models (``patients`` made negative, reversibly:
    nothing downstream reads it; the reporting lag's mean nulled), so a rebuilt row shows
    as unmarked. Returns what :func:`_unmark` needs to undo the lag's marks."""
    with duckdb.connect(str(db)) as con:
        for rel in INCREMENTAL:
            con.execute(f"update {rel} set patients = -patients - 1")
    return mark(db, LAG, "mean_lag_days", LAG_UNIT)


def _unmark(
    db: Path, lag_marks: pl.DataFrame
) -> tuple[dict[str, dict[str, tuple[int, int]]], set[tuple]]:
    """Per model and organisation: (rows still marked, rows rebuilt), and the reporting
    lag's rebuilt units; marks undone."""
    lag = rebuilt_units(
        db, LAG, "mean_lag_days", LAG_UNIT, lag_marks, copies=["marts.fct_incident_reporting_lag"]
    )
    found: dict[str, dict[str, tuple[int, int]]] = {}
    with duckdb.connect(str(db)) as con:
        for rel in INCREMENTAL:
            rows = con.execute(
                f"select org_code, count(*) filter (where patients < 0),"
                f" count(*) filter (where patients >= 0) from {rel} group by 1"
            ).fetchall()
            found[rel] = {org: (marked, rebuilt) for org, marked, rebuilt in rows}
            con.execute(f"update {rel} set patients = -patients - 1 where patients < 0")
    return found, lag


@pytest.fixture
def region(tmp_path, monkeypatch):
    """A working file with the sample register and one return, and an incident landing
    folder the test fills run by run."""
    monkeypatch.setenv("SAFETY_OBS_LANDING_DIR", str(tmp_path / "landing"))
    monkeypatch.setenv("SAFETY_OBS_VAR_DIR", str(tmp_path / "var"))
    (tmp_path / "landing").mkdir()
    (tmp_path / "incidents").mkdir()
    db = tmp_path / "working.duckdb"
    with connect(db) as con:
        load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    return db


def _run(db: Path, *, extracts: dict[str, list[str]] | None = None, returns: str = "") -> None:
    """One run's intake: the named extracts dropped and ingested, a return if given."""
    root = db.parent
    settings = load_settings()
    with connect(db) as con:
        if returns:
            (root / "landing" / returns).write_text(
                "org_code,period,measure_code,numerator,denominator\n"
                f"{returns[:3]},{returns[4:11]},INCIDENT_REPORTING,3,41000\n"
            )
            ingest_landing(con, settings)
        for name, lines in (extracts or {}).items():
            (root / "incidents" / name).write_text("\n".join(lines))
        if extracts:
            outcomes = ingest_incidents(con, settings, landing_dir=root / "incidents")
            assert [o.status for o in outcomes] == ["loaded"] * len(extracts)
            assert sum(o.rows_quarantined for o in outcomes) == 0


def lfpse(ref: str, org: str = "RTD", **changes: str) -> str:
    return lfpse_row(Reference=ref, OccurredOrganisationCode=org, **changes)


def _lag_units(db: Path, org: str, month: date, levels: Sequence[str] = LEVELS) -> set[tuple]:
    """The reporting-lag units of ``month`` that ``org`` counts in, at ``levels``, where
    the register now places it."""
    with duckdb.connect(str(db), read_only=True) as con:
        icb, sector = con.execute(
            "select icb_code, sector_code from marts.dim_organisation where org_code = ?", [org]
        ).fetchone()
    groups = {
        "organisation": org,
        "sector": f"{icb}:{sector}",
        "icb": icb,
        "region": "region",
    }
    return {(level, groups[level], month) for level in levels}


def test_incremental_builds_equal_a_full_refresh_and_touch_only_what_changed(region):
    db, scratch = region, region.parent
    # Run 1: the ICB's March extract for RTD (one event with two patients) and RR7, and
    # RTD's local export; the first build.
    _run(
        db,
        returns="RTD_2024-03.csv",
        extracts={
            "QHM_lfpse_2024-03.csv": [
                LFPSE_HEADER,
                lfpse("7000001", OT001="4"),
                lfpse("7000002", T005="2024-03-09", SubmissionDate="2024-03-20"),
                lfpse("7000003", EntityId="1"),
                lfpse("7000003", EntityId="2", OT001="2"),
                lfpse("7100001", "RR7", OT001="3"),
                lfpse("7100002", "RR7", T005="2024-03-02"),
            ],
            "RTD_datix_2024-03.csv": [
                DATIX_HEADER,
                datix_row(recordid="56001"),
                datix_row(recordid="56002", inc_severity="MODERATE"),
            ],
        },
    )
    _build(db, scratch / "dbt")

    # Run 2: the ICB re-extracts RTD's March (only RTD): 7000001 revised and re-graded,
    # 7000002 deleted at source (missing from the range it covered), 7000004 new.
    _run(
        db,
        extracts={
            "QHM_lfpse_2024-03_rtd_again.csv": [
                LFPSE_HEADER,
                lfpse("7000001", Revision="2", OT001="3", SubmissionDate="2024-03-25"),
                lfpse("7000003", EntityId="1", SubmissionDate="2024-03-25"),
                lfpse("7000003", EntityId="2", OT001="2", SubmissionDate="2024-03-25"),
                lfpse("7000004", T005="2024-03-20", SubmissionDate="2024-03-25"),
            ]
        },
    )
    lag_marks = _mark(db)
    _build(db, scratch / "dbt")
    touched, lag = _unmark(db, lag_marks)
    for rel in INCREMENTAL:
        assert touched[rel]["RR7"] == (2, 0), rel  # RR7 brought nothing: kept as built
        assert touched[rel]["RTD"][0] == 0, rel  # RTD: every event recomputed
    # RTD's March at each level it counts in; RR7's own March row kept.
    assert lag == _lag_units(db, "RTD", MARCH)
    with duckdb.connect(str(db), read_only=True) as con:
        regraded = con.execute(
            "select harm_code, revision from marts.fct_incident where event_key = ?",
            [event_key("incidents_lfpse", "RTD", "7000001")],
        ).fetchall()
        assert regraded == [(3, 2)]  # revision 2, re-graded to moderate
        assert con.execute(
            "select events_deleted from marts.mart_incident_extracts"
            " where file_name = 'QHM_lfpse_2024-03_rtd_again.csv'"
        ).fetchall() == [(1,)]
    assert_equals_full_refresh(db, scratch)

    # Run 3: a return and a register change (RR7 now a community trust: its sector's
    # roll-ups change), no incident extract: no event is recomputed.
    local = scratch / "local_register.csv"
    local.write_text(
        (SAMPLES / "local_register.csv").read_text().rstrip("\n") + "\nRR7,,community_trust,,,,\n"
    )
    with connect(db) as con:
        load_register(con, SAMPLES / "ods", local)
    _run(db, returns="RR7_2024-03.csv")
    lag_marks = _mark(db)
    _build(db, scratch / "dbt")
    touched, lag = _unmark(db, lag_marks)
    for rel in INCREMENTAL:
        assert all(rebuilt == 0 for _, rebuilt in touched[rel].values()), (rel, touched[rel])
    # RR7's own row (its sector shows), the sector it left and the one it joined; its ICB
    # and the region hold the same organisations and events: kept.
    assert lag == _lag_units(db, "RR7", MARCH, ("organisation", "sector")) | {
        ("sector", "QHM:acute_trust", MARCH)
    }
    with duckdb.connect(str(db), read_only=True) as con:
        sectors = con.execute(
            "select distinct sector_code from marts.fct_incident_reporting_lag"
            " where level = 'organisation' and group_code = 'RR7'"
        ).fetchall()
        assert sectors == [("community_trust",)]
    assert_equals_full_refresh(db, scratch)

    # Run 4: RR7's own extract for April (RTD's events untouched).
    _run(
        db,
        extracts={
            "RR7_lfpse_2024-04.csv": [
                LFPSE_HEADER,
                lfpse("7100003", "RR7", T005="2024-04-02", SubmissionDate="2024-04-05"),
            ]
        },
    )
    lag_marks = _mark(db)
    _build(db, scratch / "dbt")
    touched, lag = _unmark(db, lag_marks)
    for rel in INCREMENTAL:
        assert touched[rel]["RR7"] == (0, 3), rel
        assert touched[rel]["RTD"][1] == 0, rel
    assert lag == _lag_units(db, "RR7", APRIL)  # April's units only: March's kept
    assert_equals_full_refresh(db, scratch)
