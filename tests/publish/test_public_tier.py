"""The public tier end to end: real ingest of the sample plus planted small counts, the real
dbt models, then the disclosure rules checked cell by cell and by the scan.

Why planted data: the sample is one ICB, so it never exercises suppression between ICBs.
The planted month (January 2023, before the sample starts, so nothing else lands in it)
adds two small ICBs from an extended local register and cells chosen so that every rule
fires once: primary on a numerator and on a denominator, too few contributing
organisations (a two-trust mental-health sector, a one-home ICB, a one-hospital sector), a
secondary sector, a secondary ICB whose sectors then need enough organisations suppressed
between them, a zero that stays published, and rates that differ once computed from
rounded counts. Every published cell has at least three contributing organisations.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest
from support.warehouse import dbt_build as build_models

from conftest import SAMPLES
from pipelines.ingest.measure_returns import ingest_landing
from pipelines.ingest.organisations import load_register
from pipelines.publish.disclosure import (
    OrganisationFacts,
    neutralise_csv_cell,
    scan_csv_and_parquet,
    scan_public_tier,
)
from pipelines.settings import load_settings
from pipelines.warehouse import working_connection

PUBLIC = [
    "pub_measure_by_region_monthly",
    "pub_measure_by_icb_monthly",
    "pub_measure_by_sector_monthly",
]
PLANTED = date(2023, 1, 1)
SAMPLE_FOLDERS = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06"]

# Two ICBs that the sample does not have: QXX with one care home, QYY with three care
# homes and one independent hospital.
EXTRA_REGISTER = [
    ("QXX", "TEST ICB QXX", "icb", "QXX", "2022-07-01", "", ""),
    ("QYY", "TEST ICB QYY", "icb", "QYY", "2022-07-01", "", ""),
    ("VXX01", "Care home VXX01", "care_home", "QXX", "2015-01-01", "", ""),
    ("VYY01", "Care home VYY01", "care_home", "QYY", "2015-01-01", "", ""),
    ("VYY02", "Care home VYY02", "care_home", "QYY", "2015-01-01", "", ""),
    ("VYY03", "Care home VYY03", "care_home", "QYY", "2015-01-01", "", ""),
    ("NYY01", "Independent hospital NYY01", "independent_provider", "QYY", "2010-01-01", "", ""),
]

# file name -> rows (org_code, measure_code, numerator, denominator), all for 2023-01.
PLANTED_FILES = {
    "QHM_2023-01_planted.csv": [
        # acute, three trusts: 82 / 60001 -> 80 / 60000, published
        ("R0B", "FALLS_HARM", 40, 30000),
        ("RTD", "FALLS_HARM", 12, 20001),
        ("RR7", "FALLS_HARM", 30, 10000),
        # care homes, three: 3 / 900, a small count -> primary
        ("VNE01", "FALLS_HARM", 1, 300),
        ("VNE02", "FALLS_HARM", 1, 300),
        ("VNE03", "FALLS_HARM", 1, 300),
        # independent, three: 9 / 1000, the smallest other sector -> secondary
        ("NNE01", "FALLS_HARM", 3, 300),
        ("NNE02", "FALLS_HARM", 3, 300),
        ("NNE03", "FALLS_HARM", 3, 400),
        # The two mental-health trusts: 19 / 5000 from two organisations -> contributors,
        # and the care homes' 12 / 900 (the smallest other) -> secondary.
        ("R0B", "MED_INCIDENTS_HARM", 20, 30000),
        ("RTD", "MED_INCIDENTS_HARM", 15, 20000),
        ("RR7", "MED_INCIDENTS_HARM", 10, 10000),
        ("RX3", "MED_INCIDENTS_HARM", 10, 2000),
        ("RX4", "MED_INCIDENTS_HARM", 9, 3000),
        ("VNE01", "MED_INCIDENTS_HARM", 4, 300),
        ("VNE02", "MED_INCIDENTS_HARM", 3, 300),
        ("VNE03", "MED_INCIDENTS_HARM", 5, 300),
        # small denominator, zero numerator, three trusts: primary
        ("R0B", "MAG_SULPH", 0, 2),
        ("RTD", "MAG_SULPH", 0, 2),
        ("RR7", "MAG_SULPH", 0, 2),
        # zero is published, not suppressed
        ("R0B", "PU_CAT2PLUS", 0, 10000),
        ("RTD", "PU_CAT2PLUS", 0, 10000),
        ("RR7", "PU_CAT2PLUS", 0, 10000),
        # 8 / 13 -> 10 / 15: 66.67 %, not 61.54 %
        ("R0B", "NEWS2_ON_TIME", 3, 5),
        ("RTD", "NEWS2_ON_TIME", 3, 4),
        ("RR7", "NEWS2_ON_TIME", 2, 4),
    ],
    # The whole ICB is one care home: not a small count, but one organisation.
    "QXX_2023-01.csv": [("VXX01", "FALLS_HARM", 40, 8000)],
    "QYY_2023-01.csv": [
        ("VYY01", "FALLS_HARM", 10, 2000),
        ("VYY02", "FALLS_HARM", 5, 1000),
        ("VYY03", "FALLS_HARM", 6, 1500),
        ("NYY01", "FALLS_HARM", 20, 3000),
    ],
}

P, C, S = "primary", "contributors", "secondary"
# (keys...) -> (numerator, denominator, value, suppression_reason) for the planted month.
EXPECTED_SECTOR = {
    ("QHM", "acute_trust", "FALLS_HARM"): (80, 60000, 80 * 1000 / 60000, None),
    ("QHM", "care_home", "FALLS_HARM"): (None, None, None, P),
    ("QHM", "independent_provider", "FALLS_HARM"): (None, None, None, S),
    ("QHM", "acute_trust", "MED_INCIDENTS_HARM"): (45, 60000, 0.75, None),
    ("QHM", "mental_health_trust", "MED_INCIDENTS_HARM"): (None, None, None, C),
    ("QHM", "care_home", "MED_INCIDENTS_HARM"): (None, None, None, S),
    ("QXX", "care_home", "FALLS_HARM"): (None, None, None, C),
    # QYY is secondary at ICB level. Its one-hospital sector is suppressed on its own,
    # and its care homes with it: otherwise the region less QHM (QXX + QYY) less QYY's
    # care homes would be VXX01 and NYY01 together, and each would read the other.
    ("QYY", "care_home", "FALLS_HARM"): (None, None, None, S),
    ("QYY", "independent_provider", "FALLS_HARM"): (None, None, None, C),
    ("QHM", "acute_trust", "MAG_SULPH"): (None, None, None, P),
    ("QHM", "acute_trust", "PU_CAT2PLUS"): (0, 30000, 0.0, None),
    ("QHM", "acute_trust", "NEWS2_ON_TIME"): (10, 15, 10 * 100 / 15, None),
}
EXPECTED_ICB = {
    ("QHM", "FALLS_HARM"): (95, 61900, 95 * 1000 / 61900, None),  # 94 / 61901 unrounded
    ("QXX", "FALLS_HARM"): (None, None, None, C),
    ("QYY", "FALLS_HARM"): (None, None, None, S),  # 41 < 94: the smallest other ICB
    ("QHM", "MED_INCIDENTS_HARM"): (75, 65900, 75 * 1000 / 65900, None),  # 76 / 65900
    ("QHM", "MAG_SULPH"): (None, None, None, P),
    ("QHM", "PU_CAT2PLUS"): (0, 30000, 0.0, None),
    ("QHM", "NEWS2_ON_TIME"): (10, 15, 10 * 100 / 15, None),
}
EXPECTED_REGION = {
    ("FALLS_HARM",): (175, 77400, 175 * 1000 / 77400, None),  # 175 / 77401 unrounded
    ("MED_INCIDENTS_HARM",): (75, 65900, 75 * 1000 / 65900, None),
    ("MAG_SULPH",): (None, None, None, P),
    ("PU_CAT2PLUS",): (0, 30000, 0.0, None),
    ("NEWS2_ON_TIME",): (10, 15, 10 * 100 / 15, None),
}
FACTS = OrganisationFacts(schema="marts")  # the organisation-level facts in the working file


def _plant(landing: Path, register: Path) -> None:
    folder = landing / "2023-02"
    folder.mkdir(parents=True)
    for name, rows in PLANTED_FILES.items():
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["org_code", "period", "measure_code", "numerator", "denominator"])
            for org, measure, numerator, denominator in rows:
                writer.writerow([org, "2023-01", measure, numerator, denominator])
    shutil.copyfile(SAMPLES / "local_register.csv", register)
    with register.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(EXTRA_REGISTER)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working file built by the real ingest and the real dbt models; returns its path."""
    root = tmp_path_factory.mktemp("public_tier")
    with pytest.MonkeyPatch.context() as mp:
        var = root / "var"
        mp.setenv("SAFETY_OBS_VAR_DIR", str(var))
        mp.setenv("SAFETY_OBS_WORKING_DB", str(var / "warehouse" / "working.duckdb"))
        mp.setenv("SAFETY_OBS_PUBLISHED_DIR", str(var / "published"))
        mp.setenv("SAFETY_OBS_LANDING_DIR", str(root / "landing"))
        mp.setenv("SAFETY_OBS_LOCAL_REGISTER", str(root / "local_register.csv"))
        # The two planted ICBs are test codes, not England's: part of the region here.
        mp.setenv("SAFETY_OBS_REGION_ICBS", "QHM,QXX,QYY")
        for folder in SAMPLE_FOLDERS:  # half a year of the sample keeps the test fast
            shutil.copytree(SAMPLES / "landing" / folder, root / "landing" / folder)
        _plant(root / "landing", root / "local_register.csv")
        settings = load_settings()
        with working_connection(settings.working_db) as con:
            load_register(con, settings.ods_dir, settings.local_register)
            outcomes = ingest_landing(con, settings, run_id="public-tier-test")
        planted = {o.file_name: o for o in outcomes if o.file_name in PLANTED_FILES}
        assert {name: o.status for name, o in planted.items()} == dict.fromkeys(
            PLANTED_FILES, "loaded"
        )
        assert all(o.rows_quarantined == 0 for o in planted.values())
        # The first build is a full one whatever the vars (the tables do not exist yet);
        # passing the same vars to both builds lets the second reuse the parse. The
        # deployment's settings go with them, as the pipeline passes them (dbt has no defaults).
        months = {
            **settings.dbt_vars(),
            "period_start": "2023-01-01",
            "period_end": "2024-03-01",
        }
        built = build_models(
            settings.working_db, root, ["+pub_measure_by_sector_monthly"], dbt_vars=months
        )
        assert built.returncode == 0, built.stdout[-4000:]
        full = _public_contents(settings.working_db)
        # What Dagster does for a partition run: rebuild only some months, incrementally.
        rebuilt = build_models(settings.working_db, root, PUBLIC, dbt_vars=months)
        assert rebuilt.returncode == 0, rebuilt.stdout[-4000:]
        assert "delete from" in (root / "dbt_logs" / "dbt.log").read_text()
        assert _public_contents(settings.working_db) == full
    return settings.working_db


def _public_contents(working_db: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(working_db), read_only=True) as con:
        return {
            table: con.execute(f"select * from public.{table} order by all").fetchall()
            for table in PUBLIC
        }


@pytest.fixture
def con(warehouse: Path):
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        yield connection


@pytest.fixture
def scratch(warehouse: Path, tmp_path: Path):
    """A writable copy of the working file, to tamper with."""
    copy = tmp_path / "tampered.duckdb"
    shutil.copyfile(warehouse, copy)
    with duckdb.connect(str(copy)) as connection:
        yield connection


def _cells(con, table: str, keys: list[str]) -> dict[tuple, tuple]:
    rows = con.execute(
        f"select {', '.join(keys)}, numerator, denominator, value, suppression_reason"
        f" from public.{table} where period = ?",
        [PLANTED],
    ).fetchall()
    return {row[: len(keys)]: row[len(keys) :] for row in rows}


def _assert_cells(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for key, (numerator, denominator, value, reason) in expected.items():
        got = actual[key]
        assert got[0:2] == (numerator, denominator), key
        assert got[2] == (pytest.approx(value, rel=1e-12) if value is not None else None), key
        assert got[3] == reason, key


def test_planted_month_suppresses_exactly_the_expected_cells(con):
    _assert_cells(
        _cells(con, "pub_measure_by_sector_monthly", ["icb_code", "sector_code", "measure_code"]),
        EXPECTED_SECTOR,
    )
    _assert_cells(
        _cells(con, "pub_measure_by_icb_monthly", ["icb_code", "measure_code"]), EXPECTED_ICB
    )
    _assert_cells(_cells(con, "pub_measure_by_region_monthly", ["measure_code"]), EXPECTED_REGION)


def test_rates_come_from_rounded_counts(con):
    # NEWS2 on time: 8 of 13 unrounded (61.5 %); published 10 of 15, so 66.7 %.
    [(numerator, denominator, value, multiplier)] = con.execute(
        "select p.numerator, p.denominator, p.value, m.multiplier"
        " from public.pub_measure_by_region_monthly p"
        " join reference.measure_catalogue m using (measure_code)"
        " where p.measure_code = 'NEWS2_ON_TIME' and p.period = ?",
        [PLANTED],
    ).fetchall()
    assert (numerator, denominator, multiplier) == (10, 15, 100)
    assert value == pytest.approx(66.666666666, rel=1e-9)
    # Every published rate, everywhere, is its rounded numerator x multiplier / denominator.
    for table in PUBLIC:
        [(wrong,)] = con.execute(
            f"select count(*) from public.{table} p"
            " join reference.measure_catalogue m using (measure_code)"
            " where not p.is_suppressed and ("
            "   (p.denominator = 0 and p.value is not null)"
            "   or (p.denominator > 0 and abs(p.value - p.numerator * m.multiplier"
            "       / p.denominator) > 1e-9 * (1 + abs(p.value))))"
        ).fetchall()
        assert wrong == 0, table


@pytest.mark.parametrize("table", PUBLIC)
def test_no_small_or_unrounded_count_anywhere(con, table):
    rows = con.execute(
        f"select numerator, denominator, is_suppressed, suppression_reason from public.{table}"
    ).fetchall()
    assert rows
    for numerator, denominator, suppressed, reason in rows:
        if suppressed:
            assert (numerator, denominator) == (None, None)
            assert reason in ("primary", "contributors", "secondary")
        else:
            assert reason is None
            for count in (numerator, denominator):
                assert count is not None and count % 5 == 0 and not 1 <= count <= 7


def test_counts_are_the_rounded_sums_of_the_org_level_fact(con):
    # Published public counts match the fact, summed then rounded, for every row.
    [(mismatched,)] = con.execute(
        """
        with sums as (
            select icb_code, sector_code, measure_code, period,
                   sum(numerator) as n, sum(denominator) as d
            from marts.fct_measure_monthly group by all
        )
        select count(*) from public.pub_measure_by_sector_monthly p
        join sums using (icb_code, sector_code, measure_code, period)
        where not p.is_suppressed and (
            p.numerator <> cast(floor((n + 2.5) / 5) * 5 as bigint)
            or p.denominator <> cast(floor((d + 2.5) / 5) * 5 as bigint))
        """
    ).fetchall()
    assert mismatched == 0
    [(fact_groups,)] = con.execute(
        "select count(*) from (select distinct icb_code, sector_code, measure_code, period"
        " from marts.fct_measure_monthly)"
    ).fetchall()
    [(public_rows,)] = con.execute(
        "select count(*) from public.pub_measure_by_sector_monthly"
    ).fetchall()
    assert public_rows == fact_groups


def test_no_organisation_codes_or_counts_in_the_public_schema(con):
    columns = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns where table_schema = 'public'"
        ).fetchall()
    }
    assert not {c for c in columns if "org" in c or "name" in c or "reporting" in c}
    providers = {
        code
        for (code,) in con.execute(
            "select org_code from marts.fct_measure_monthly"
            " where org_code not in (select distinct icb_code from marts.fct_measure_monthly)"
        ).fetchall()
    }
    for table in PUBLIC:
        text_cells = con.execute(
            f"select distinct unnest([{', '.join(_text_columns(con, table))}]) from public.{table}"
        ).fetchall()
        assert not providers & {cell for (cell,) in text_cells}, table


def _text_columns(con, table: str) -> list[str]:
    return [
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns"
            " where table_schema = 'public' and table_name = ? and data_type = 'VARCHAR'",
            [table],
        ).fetchall()
    ]


def test_no_published_cell_has_fewer_than_three_contributing_organisations(con):
    """Counted here straight from the organisation-level fact, the sample's months and the
    planted one: every published cell has three or more organisations with figures in it,
    and the two-trust mental-health sector is never published."""
    levels = {
        "pub_measure_by_region_monthly": ["measure_code", "period"],
        "pub_measure_by_icb_monthly": ["icb_code", "measure_code", "period"],
        "pub_measure_by_sector_monthly": ["icb_code", "sector_code", "measure_code", "period"],
    }
    for table, keys in levels.items():
        on = " and ".join(f"f.{k} is not distinct from p.{k}" for k in keys)
        rows = con.execute(
            f"""select p.is_suppressed, p.suppression_reason, count(distinct f.org_code)
            from public.{table} p join marts.fct_measure_monthly f on {on}
            where f.numerator <> 0 or f.denominator <> 0
            group by p.is_suppressed, p.suppression_reason, {", ".join(f"p.{k}" for k in keys)}"""
        ).fetchall()
        assert rows, table
        assert all(n >= 3 for suppressed, _, n in rows if not suppressed), table
        assert all(reason != "contributors" or n < 3 for _, reason, n in rows), table
    [(published_mental_health,)] = con.execute(
        "select count(*) from public.pub_measure_by_sector_monthly"
        " where sector_code = 'mental_health_trust' and not is_suppressed"
    ).fetchall()
    assert published_mental_health == 0


def test_scan_passes_the_real_output(con):
    assert scan_public_tier(con, [f"public.{t}" for t in PUBLIC], facts=FACTS) == []
    assert scan_public_tier(con, facts=FACTS) == []  # discovery finds the same tables
    # Without the organisation-level facts the contributors rule is unchecked: a problem.
    unchecked = scan_public_tier(con)
    assert len(unchecked) == len(PUBLIC)
    assert all("cannot check contributing organisations" in p for p in unchecked)


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        (
            "update public.pub_measure_by_icb_monthly set numerator = 3"
            " where icb_code = 'QHM' and measure_code = 'FALLS_HARM' and period = '2023-01-01'",
            "pub_measure_by_icb_monthly.numerator: 1 published count(s) in 1..7",
        ),
        (
            "update public.pub_measure_by_region_monthly set denominator = 77401"
            " where measure_code = 'FALLS_HARM' and period = '2023-01-01'",
            "pub_measure_by_region_monthly.denominator: 1 count(s) not a multiple",
        ),
        (
            # Unsuppress the secondary sector: the primary one becomes ICB minus the rest.
            "update public.pub_measure_by_sector_monthly set numerator = 10,"
            " denominator = 1000, value = 10.0, is_suppressed = false,"
            " suppression_reason = null where icb_code = 'QHM'"
            " and sector_code = 'independent_provider' and measure_code = 'FALLS_HARM'"
            " and period = '2023-01-01'",
            "pub_measure_by_sector_monthly: 1 group(s) with exactly one suppressed cell",
        ),
        (
            # Publish the two mental-health trusts' sector.
            "update public.pub_measure_by_sector_monthly set numerator = 20,"
            " denominator = 5000, value = 4.0, is_suppressed = false,"
            " suppression_reason = null where sector_code = 'mental_health_trust'"
            " and measure_code = 'MED_INCIDENTS_HARM' and period = '2023-01-01'",
            "pub_measure_by_sector_monthly: 1 published cell(s) built from fewer than 3"
            " organisations",
        ),
        (
            # Unsuppress QYY's care homes: its one-hospital sector is then the only one
            # suppressed under it, one organisation (with QXX's care home, through the
            # region total less QHM).
            "update public.pub_measure_by_sector_monthly set numerator = 20,"
            " denominator = 4500, value = 20 * 1000 / 4500, is_suppressed = false,"
            " suppression_reason = null where icb_code = 'QYY' and sector_code = 'care_home'"
            " and measure_code = 'FALLS_HARM' and period = '2023-01-01'",
            "pub_measure_by_sector_monthly: 1 group(s) whose suppressed cells hold fewer"
            " than 3 organisations",
        ),
        (
            # Unsuppress both QYY sectors: QYY is then the sum of its sectors.
            "update public.pub_measure_by_sector_monthly set numerator = 20,"
            " denominator = 3000, value = 20 * 1000 / 3000, is_suppressed = false,"
            " suppression_reason = null where icb_code = 'QYY'"
            " and measure_code = 'FALLS_HARM' and period = '2023-01-01'",
            "pub_measure_by_icb_monthly: 1 suppressed cell(s) whose children",
        ),
        (
            "update public.pub_measure_by_sector_monthly set numerator = 0"
            " where suppression_reason = 'contributors' and period = '2023-01-01'"
            " and icb_code = 'QXX'",
            "suppressed cell(s) still carry a figure",
        ),
        (
            "alter table public.pub_measure_by_region_monthly add column org_code varchar",
            "pub_measure_by_region_monthly.org_code: column would identify",
        ),
    ],
    ids=[
        "small-count",
        "unrounded",
        "secondary-unsuppressed",
        "contributors-unsuppressed",
        "too-few-organisations-suppressed-together",
        "cascade-unsuppressed",
        "suppressed-as-zero",
        "org-column",
    ],
)
def test_scan_names_the_problem_when_a_public_table_is_tampered(scratch, tamper, expected):
    assert scan_public_tier(scratch, facts=FACTS) == []
    scratch.execute(tamper)
    problems = scan_public_tier(scratch, facts=FACTS)
    assert any(expected in problem for problem in problems), problems


def _export(con, folder: Path) -> None:
    """Parquet and CSV exports the way an exporter should write them: numbers as numbers,
    text cells through neutralise_csv_cell."""
    (folder / "parquet").mkdir(parents=True)
    (folder / "csv").mkdir()
    for table in PUBLIC:
        con.execute(
            f"copy public.{table} to '{folder / 'parquet' / f'{table}.parquet'}' (format parquet)"
        )
        result = con.execute(f"select * from public.{table} order by all")
        header = [d[0] for d in result.description]
        with (folder / "csv" / f"{table}.csv").open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            for row in result.fetchall():
                writer.writerow(
                    [
                        "" if v is None else neutralise_csv_cell(v) if isinstance(v, str) else v
                        for v in row
                    ]
                )


def test_scan_of_exported_files_passes_and_catches_tampering(con, warehouse, tmp_path):
    _export(con, tmp_path)
    facts = OrganisationFacts(database=warehouse, schema="marts")
    assert scan_csv_and_parquet(tmp_path, facts=facts) == []

    sector_csv = tmp_path / "csv" / "pub_measure_by_sector_monthly.csv"
    with sector_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    published = next(r for r in rows[1:] if r[header.index("is_suppressed")] == "False")
    published[header.index("numerator")] = "3"
    published[header.index("sector_code")] = '=HYPERLINK("http://x")'
    with sector_csv.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)

    con.execute(
        "copy (select * replace (denominator + 1 as denominator)"
        " from public.pub_measure_by_region_monthly)"
        f" to '{tmp_path / 'parquet' / 'pub_measure_by_region_monthly.parquet'}' (format parquet)"
    )
    problems = scan_csv_and_parquet(tmp_path, facts=facts)
    joined = "\n".join(problems)
    assert "csv/pub_measure_by_sector_monthly.csv.numerator: 1 published count(s) in 1..7" in joined
    assert "csv/pub_measure_by_sector_monthly.csv.sector_code: 1 cell(s) open to formula" in joined
    assert (
        "parquet/pub_measure_by_region_monthly.parquet.denominator:" in joined
        and "not a multiple of the rounding base 5" in joined
    )
