"""A small published warehouse built by hand: the dimensions, the four fact marts and
``fct_spc`` as the publication would hold them, with names that are easy to search for."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipelines.defs.spc import build_fct_spc, write_fct_spc

MONTHS = [date(2023 + (3 + i) // 12, (3 + i) % 12 + 1, 1) for i in range(24)]

PROGRAMMES = [
    ("deterioration", "Managing deterioration", True, 1),
    ("local", "Local priorities", False, 2),
    ("culture", "Safety culture", True, 3),  # no measures: the page must still say so
]
SECTORS = [("acute_trust", "Acute trust", "NHS trust", 1), ("care_home", "Care home", "Social", 7)]
# code, name, programme, multiplier, unit, direction, chart, target
MEASURES = [
    ("NEWS2", "Observations on time", "deterioration", 100, "%", "higher", "p_prime", 90.0),
    ("FALLS", "Falls with harm", "local", 1000, "per 1000 occupied bed days", "lower",
     "u_prime", None),
    ("EMPTY", "A measure nobody has sent yet", "local", 100, "%", "higher", "p_prime", None),
]  # fmt: skip
# code, name, sector, icb
ORGANISATIONS = [
    ("RZZ01", "SUNNYSIDE HOSPITALS NHS TRUST", "acute_trust", "QZZ"),
    ("RZZ02", "HILLTOP HEALTHCARE NHS FOUNDATION TRUST", "acute_trust", "QZZ"),
    ("VZZ01", "MEADOWVIEW CARE HOME", "care_home", "QZZ"),
    ("RYY01", "RIVERSIDE NHS TRUST", "acute_trust", "QYY"),
    ("QZZ", "NHS ZEDSHIRE INTEGRATED CARE BOARD", "icb", None),
    ("QYY", "NHS WYESHIRE INTEGRATED CARE BOARD", "icb", None),
]
ORG_NAMES_SHOWN = ["Sunnyside Hospitals", "Hilltop Healthcare", "Meadowview", "Riverside"]


def _facts() -> list[tuple]:
    wobble = [0, 2, -1, 1, -2, 1, 0, -1, 2, -2, 1, 0]
    rows = []
    for code, _, sector, icb in ORGANISATIONS:
        if sector == "icb":
            continue
        for i, month in enumerate(MONTHS):
            if code == "VZZ01" and i == 23:
                continue  # the care home's March return is late
            beds = 3000 + 10 * (i % 5)
            falls = 2 if code == "RZZ01" and i >= 15 else 12 + wobble[(i + len(code)) % 12]
            rows.append((code, "FALLS", month, sector, icb, "local", falls, beds, 1000))
            if sector == "acute_trust":
                audited = 40 + i % 3
                on_time = audited - 3 - (i + int(code[-1])) % 4
                rows.append((code, "NEWS2", month, sector, icb, "deterioration", on_time, audited,
                             100))  # fmt: skip
    return rows


def make_published_warehouse(path: Path) -> Path:
    """Write the warehouse file at ``path`` (tables in ``main``, as a snapshot has them)."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create table dim_programme (programme_code varchar, programme_name varchar, "
            "is_national_programme boolean, sort_order integer)"
        )
        con.executemany("insert into dim_programme values (?, ?, ?, ?)", PROGRAMMES)
        con.execute(
            "create table dim_sector (sector_code varchar, sector_name varchar, "
            "sector_group varchar, sort_order integer)"
        )
        con.executemany("insert into dim_sector values (?, ?, ?, ?)", SECTORS)
        con.execute(
            """create table dim_measure (measure_code varchar, measure_name varchar,
            programme_code varchar, numerator_definition varchar, denominator_definition varchar,
            multiplier integer, unit varchar, improvement_direction varchar, measure_type varchar,
            spc_chart varchar, is_proportion boolean, target double, applies_to_sectors varchar)"""
        )
        con.executemany(
            "insert into dim_measure values (?, ?, ?, 'Numerator text', 'Denominator text', "
            "?, ?, ?, 'outcome', ?, true, ?, 'acute_trust')",
            MEASURES,
        )
        con.execute(
            "create table dim_organisation (org_code varchar, org_name varchar, "
            "sector_code varchar, icb_code varchar)"
        )
        con.executemany("insert into dim_organisation values (?, ?, ?, ?)", ORGANISATIONS)
        con.execute(
            """create table fct_measure_monthly (org_code varchar, measure_code varchar,
            period date, sector_code varchar, icb_code varchar, programme_code varchar,
            numerator bigint, denominator bigint, multiplier integer)"""
        )
        con.executemany(
            "insert into fct_measure_monthly values (?, ?, ?, ?, ?, ?, ?, ?, ?)", _facts()
        )
        con.execute(
            """alter table fct_measure_monthly add column value double;
            update fct_measure_monthly set value = numerator * multiplier / denominator"""
        )
        rollups = {
            "fct_measure_by_sector_monthly": "icb_code, sector_code,",
            "fct_measure_by_icb_monthly": "icb_code,",
            "fct_measure_by_programme_monthly": "",
        }
        for table, keys in rollups.items():
            con.execute(
                f"""create table {table} as
                select {keys} measure_code, period, programme_code,
                       count(*) as organisations_reporting,
                       sum(numerator)::bigint as numerator, sum(denominator)::bigint as denominator,
                       sum(numerator) * max(multiplier) / sum(denominator) as value
                from fct_measure_monthly group by all"""
            )
        # Internal rows only; add_public_rows stands in for the public tier's.
        write_fct_spc(con, build_fct_spc(con, schema="main", public_schema=None), table="fct_spc")
    return path


def add_public_rows(path: Path, suppress: list[tuple[str, str, date]]) -> None:
    """Add ``tier = 'public'`` rows (the aggregates again) with some months suppressed, the
    way disclosure-controlled rows will arrive: null counts and values, never zero."""
    with duckdb.connect(str(path)) as con:
        con.execute(
            "create temp table public_rows as select * from fct_spc where level <> 'organisation'"
        )
        con.execute("update public_rows set tier = 'public', organisations_reporting = null")
        for level, measure, period in suppress:
            con.execute(
                "update public_rows set numerator = null, denominator = null, value = null, "
                "point_type = null, is_suppressed = true "
                "where level = ? and measure_code = ? and period = ?",
                [level, measure, period],
            )
        con.execute("insert into fct_spc select * from public_rows")
