"""Stand-ins for what the impact models read but this test does not build: the SPC outputs
of docs/programme-impact.md sections 1-3 (fct_spc with segments, pub_spc, the changes that
apply to each series, the change register). Real DuckDB tables in a real working file;
only the upstream Python step is replaced, never the models under test."""

from __future__ import annotations

import csv
import subprocess
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb
from support.warehouse import dbt_build as build_models

from pipelines.impact.register import COLUMNS as REGISTER_COLUMNS
from pipelines.settings import Settings

SPC_COLUMNS = {
    "level": "varchar",
    "tier": "varchar",
    "series_key": "varchar",
    "org_code": "varchar",
    "sector_code": "varchar",
    "icb_code": "varchar",
    "programme_code": "varchar",
    "measure_code": "varchar",
    "period": "date",
    "organisations_reporting": "bigint",
    "numerator": "bigint",
    "denominator": "bigint",
    "value": "double",
    "is_suppressed": "boolean",
    "chart": "varchar",
    "improvement_direction": "varchar",
    "target": "double",
    "centre": "double",
    "lpl": "double",
    "upl": "double",
    "near_lpl": "double",
    "near_upl": "double",
    "trial_limits": "boolean",
    "special_cause_flag": "boolean",
    "special_cause_type": "varchar",
    "special_cause_label": "varchar",
    "point_type": "varchar",
    "variation_icon": "varchar",
    "assurance_type": "varchar",
    # docs/programme-impact.md section 3: what the spc branch adds.
    "segment": "integer",
    "segment_start": "date",
    "in_baseline": "boolean",
    "limits_basis": "varchar",
}
SERIES_CHANGE_COLUMNS = {
    "level": "varchar",
    "tier": "varchar",
    "series_key": "varchar",
    "measure_code": "varchar",
    "change_id": "varchar",
    "change_month": "date",
    "kind": "varchar",
    "rebases": "boolean",
}


def month(first: date, n: int) -> date:
    y, m = divmod(first.month - 1 + n, 12)
    return date(first.year + y, m + 1, 1)


@dataclass
class Series:
    """One SPC series: per month a (numerator, denominator) or None (no value), the
    segment starts (indexes), and how many first points of segment 0 are its baseline."""

    level: str
    series_key: str
    measure_code: str
    programme_code: str
    chart: str
    direction: str
    counts: list[tuple[int, int] | None]
    multiplier: int = 100
    first: date = date(2023, 4, 1)
    cuts: tuple[int, ...] = ()
    baseline_points: int = 12
    org_code: str | None = None
    sector_code: str | None = None
    icb_code: str | None = None
    skip: set[int] = field(default_factory=set)  # months with no row at all

    def rows(self, tier: str = "internal") -> list[dict]:
        starts = [0, *self.cuts]
        segment_of = [
            max(i for i, s in enumerate(starts) if s <= n) for n in range(len(self.counts))
        ]
        values = [
            None if c is None or c[1] == 0 else c[0] * self.multiplier / c[1] for c in self.counts
        ]
        centres: dict[int, float] = {}
        for seg in range(len(starts)):
            members = [n for n in range(len(values)) if segment_of[n] == seg]
            base = members[: self.baseline_points] if seg == 0 else members
            counted = [self.counts[n] for n in base if self.counts[n] is not None]
            num = sum(c[0] for c in counted)
            den = sum(c[1] for c in counted)
            if self.chart == "xmr":
                shown = [values[n] for n in base if values[n] is not None]
                centres[seg] = sum(shown) / len(shown)
            else:
                centres[seg] = num * self.multiplier / den
        out = []
        for n, counts in enumerate(self.counts):
            if n in self.skip:
                continue
            seg = segment_of[n]
            centre = centres[seg]
            out.append(
                {
                    "level": self.level,
                    "tier": tier,
                    "series_key": self.series_key,
                    "org_code": self.org_code,
                    "sector_code": self.sector_code,
                    "icb_code": self.icb_code,
                    "programme_code": self.programme_code,
                    "measure_code": self.measure_code,
                    "period": month(self.first, n),
                    "numerator": None if counts is None else counts[0],
                    "denominator": None if counts is None else counts[1],
                    "value": values[n],
                    "is_suppressed": counts is None,
                    "chart": self.chart,
                    "improvement_direction": self.direction,
                    "centre": centre,
                    "lpl": centre - 3.0 - n / 100,  # limits that move a little
                    "upl": centre + 3.0 + n / 100,
                    "segment": seg,
                    "segment_start": month(self.first, starts[seg]),
                    "in_baseline": seg > 0 or n < self.baseline_points,
                    "limits_basis": "baseline_window" if seg == 0 else "all_points",
                }
            )
        return out


@dataclass(frozen=True)
class Change:
    change_id: str
    change_month: date
    description: str
    kind: str = "intervention"
    rebases: bool = False


def write_stand_ins(
    working_db: Path,
    series: list[Series],
    applies: dict[tuple[str, str], list[Change]],
    public_levels: tuple[str, ...] = ("sector", "icb", "region"),
) -> None:
    """What the SPC step writes, stood in: marts.spc_points (internal rows, and the public
    rows of the public levels) and marts.spc_series_changes (``applies``: (series_key,
    measure_code) -> the changes that apply to that series, both tiers); dbt builds fct_spc,
    pub_spc and their series' changes from them as in a run; and the change register CSV
    for dim_change and pub_change."""
    working_db.parent.mkdir(parents=True, exist_ok=True)
    internal = [row for s in series for row in s.rows("internal")]
    public = [row for s in series if s.level in public_levels for row in s.rows("public")]
    with duckdb.connect(str(working_db)) as con:
        for schema in ("marts", "public"):
            con.execute(f"create schema if not exists {schema}")
        con.execute(
            "create or replace table marts.spc_points ("
            + ", ".join(f"{c} {t}" for c, t in SPC_COLUMNS.items())
            + ")"
        )
        _insert(con, "marts.spc_points", SPC_COLUMNS, internal + public)
        changes: dict[str, Change] = {}
        con.execute(
            "create or replace table marts.spc_series_changes ("
            + ", ".join(f"{c} {t}" for c, t in SERIES_CHANGE_COLUMNS.items())
            + ")"
        )
        rows = []
        for tier in ("internal", "public"):
            for s in series:
                if tier == "public" and s.level not in public_levels:
                    continue
                for change in applies.get((s.series_key, s.measure_code), []):
                    changes[change.change_id] = change
                    rows.append(
                        {
                            "level": s.level,
                            "tier": tier,
                            "series_key": s.series_key,
                            "measure_code": s.measure_code,
                            "change_id": change.change_id,
                            "change_month": change.change_month,
                            "kind": change.kind,
                            "rebases": change.rebases,
                        }
                    )
        _insert(con, "marts.spc_series_changes", SERIES_CHANGE_COLUMNS, rows)
    # The register itself goes through dbt (stg_config__change_register -> dim_change,
    # pub_change), as in a run: one region-wide row per change, read via var change_register.
    with register_path(working_db).open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(REGISTER_COLUMNS)
        for c in changes.values():
            writer.writerow(
                [
                    c.change_id,
                    c.change_month.isoformat(),
                    "",
                    "",
                    "region",
                    "",
                    c.kind,
                    str(c.rebases).lower(),
                    c.description,
                ]
            )


def register_path(working_db: Path) -> Path:
    """Where :func:`write_stand_ins` writes the change register for ``working_db``."""
    return working_db.parent / "change_register.csv"


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: dict, rows: list[dict]) -> None:
    if rows:
        names = list(columns)
        con.executemany(
            f"insert into {table} ({', '.join(names)}) values ({', '.join('?' * len(names))})",
            [[row.get(c) for c in names] for row in rows],
        )


def dbt_build_after_spc(
    root: Path, settings: Settings, working_db: Path
) -> subprocess.CompletedProcess:
    """dbt build of the impact models (and the catalogue they join) into ``working_db``
    only, with the deployment's vars and this file's change register."""
    register = register_path(working_db)
    return build_models(
        working_db,
        root,
        # The SPC tier tables and the impact models with what they read (not every
        # after_spc model: fct_measure_by_sector_financial_year reads the period facts,
        # which these stand-ins do not have).
        ["+path:models/spc", "+path:models/impact"],
        dbt_vars={
            **settings.dbt_vars(),
            **({"change_register": str(register)} if register.exists() else {}),
        },
    )
