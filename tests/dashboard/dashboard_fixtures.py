"""A small published snapshot built by hand, with names that are easy to search for: the
internal tier's warehouse (the dimensions, the four fact marts, ``fct_spc``) and the public
tier's own file beside it (``public/warehouse.duckdb``: public dimensions, ``dim_icb``, the
disclosure-controlled tables and ``pub_spc``), as the publication writes them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from pipelines.defs.spc import build_fct_spc, write_fct_spc, write_pub_spc

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


def public_warehouse(internal: Path) -> Path:
    """The public tier's file of the snapshot whose internal file is ``internal``."""
    return internal.parent / "public" / "warehouse.duckdb"


# (public table, internal roll-up, keys) for the disclosure-controlled tables.
_PUBLIC_TABLES = [
    ("pub_measure_by_sector_monthly", "fct_measure_by_sector_monthly", "icb_code, sector_code,"),
    ("pub_measure_by_icb_monthly", "fct_measure_by_icb_monthly", "icb_code,"),
    ("pub_measure_by_region_monthly", "fct_measure_by_programme_monthly", ""),
]
_LEVEL = {
    "pub_measure_by_sector_monthly": "sector",
    "pub_measure_by_icb_monthly": "icb",
    "pub_measure_by_region_monthly": "region",
}


def make_published_warehouse(path: Path, suppress: list[tuple[str, str, date]] = ()) -> Path:
    """Write the snapshot's internal file at ``path`` (tables in ``main``) and its public
    file at :func:`public_warehouse` (``path``). Public counts are rounded to 5, with 1-7
    suppressed (simplified: no secondary suppression) and the (level, measure, month) cells
    in ``suppress`` suppressed too; SPC runs on them as the ``fct_spc`` asset runs it."""
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
            """create table dim_icb as select org_code as icb_code, org_name as icb_name
            from dim_organisation where sector_code = 'icb'"""
        )
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
        con.execute("create schema public")
        con.execute("create temp table forced (level varchar, measure_code varchar, period date)")
        if suppress:
            con.executemany("insert into forced values (?, ?, ?)", list(suppress))
        for public, source, keys in _PUBLIC_TABLES:
            con.execute(
                f"""create table public.{public} as
                with cells as (
                    select s.*, (s.numerator between 1 and 7 or s.denominator between 1 and 7
                                 or exists (select 1 from forced f where f.level = ?
                                            and f.measure_code = s.measure_code
                                            and f.period = s.period)) as is_suppressed,
                           cast(round(s.numerator / 5) * 5 as bigint) as n,
                           cast(round(s.denominator / 5) * 5 as bigint) as d,
                           m.multiplier
                    from {source} s join dim_measure m using (measure_code)
                )
                select {keys} measure_code, period, programme_code,
                       case when not is_suppressed then n end as numerator,
                       case when not is_suppressed then d end as denominator,
                       case when not is_suppressed and d > 0 then n * multiplier / d end
                           as value,
                       is_suppressed,
                       case when is_suppressed then 'primary' end as suppression_reason
                from cells""",
                [_LEVEL[public]],
            )
        write_fct_spc(con, build_fct_spc(con, schema="main", public_schema="public"), "fct_spc")
        write_pub_spc(con, source="main.fct_spc", table="public.pub_spc")
        public_file = public_warehouse(path)
        public_file.parent.mkdir(parents=True, exist_ok=True)
        con.execute(f"attach '{public_file}' as public_tier")
        for table in ("dim_programme", "dim_sector", "dim_measure", "dim_icb"):
            con.execute(f"create table public_tier.main.{table} as select * from main.{table}")
        for table in (*(t for t, _, _ in _PUBLIC_TABLES), "pub_spc"):
            con.execute(f"create table public_tier.main.{table} as select * from public.{table}")
        con.execute("detach public_tier")
        # The internal snapshot has fct_spc (both tiers' rows) but no public tables.
        con.execute("drop schema public cascade")
    return path
