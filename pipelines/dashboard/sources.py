"""Where the dashboard reads recorded changes, segments and programme impact.

Every table or column the site reads for docs/programme-impact.md (the change register,
segments and baselines in the SPC table, the impact table) is named here and read only by
the functions below, so a renamed table is a one-line change. Each reader degrades: a
warehouse published before these tables existed gives an empty answer (no markers, one
segment, no impact page), never an error.

The public site reads the public tier's tables only (``pub_*``); the internal site reads
the internal ones and keeps the rows of the internal tier where a table holds both. The
list of names and columns read is in docs/dashboard.md.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

import duckdb

from pipelines.dashboard.model import RecordedChange

#: Columns docs/programme-impact.md §3 adds to fct_spc / pub_spc, with the value used when
#: the column is missing (a single segment, no baseline known).
SEGMENT_COLUMNS: dict[str, str] = {
    "segment": "cast(0 as integer)",
    "segment_start": "cast(null as date)",
    "in_baseline": "cast(false as boolean)",
    "limits_basis": "cast(null as varchar)",
}
DEFAULT_SEGMENT_SELECT = ", ".join(f"{v} as {k}" for k, v in SEGMENT_COLUMNS.items())
#: The validated register and the change-to-series link, per tier (§1 and §3).
CHANGE_TABLE = {"internal": "dim_change", "public": "pub_change"}
SERIES_CHANGE_TABLE = {"internal": "fct_series_change", "public": "pub_series_change"}
#: One row per level, series and measure (§4).
IMPACT_TABLE = {"internal": "fct_programme_impact", "public": "pub_programme_impact"}
#: Levels the impact page shows (region first, then each ICB).
IMPACT_LEVELS = ("region", "icb")


def find_table(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """``schema.name`` of table or view ``name`` in the open file (main first), or None."""
    rows = con.execute(
        """
        select schema_name from duckdb_tables()
        where database_name = current_database() and table_name = ?
        union all
        select schema_name from duckdb_views()
        where database_name = current_database() and view_name = ? and not internal
        """,
        [name, name],
    ).fetchall()
    schemas = sorted({r[0] for r in rows}, key=lambda s: (s != "main", s != "marts", s))
    return f'"{schemas[0]}"."{name}"' if schemas else None


def columns_of(con: duckdb.DuckDBPyConnection, relation: str) -> set[str]:
    """Column names of a table, view or ``(select …)``."""
    return {d[0] for d in con.execute(f"select * from {relation} limit 0").description}


def segment_select(con: duckdb.DuckDBPyConnection, relation: str) -> str:
    """The select-list for the segment columns of ``relation`` (the SPC rows of a tier)."""
    present = columns_of(con, relation)
    return ", ".join(
        name if name in present else f"{fallback} as {name}"
        for name, fallback in SEGMENT_COLUMNS.items()
    )


def _tier_filter(con: duckdb.DuckDBPyConnection, table: str, tier: str, alias: str = "") -> str:
    """Internal tables may hold both tiers' rows (as fct_spc does): keep the internal ones."""
    if tier == "internal" and "tier" in columns_of(con, table):
        return f"{alias}tier = 'internal'"
    return "true"


def series_changes_relation(con: duckdb.DuckDBPyConnection, tier: str) -> str | None:
    """The recorded changes of ``tier`` as a ``(select …)``: measure_code, level,
    series_key, change_id, change_month, kind, rebases, description. From
    ``fct_series_change`` joined to ``dim_change`` for the description (public:
    ``pub_series_change`` and ``pub_change``); None when the tables are missing. What the
    charts show (:func:`read_series_changes`) and what an organisation page's fingerprint
    covers (``pipelines/dashboard/carry.py``) are read through this one relation."""
    link = find_table(con, SERIES_CHANGE_TABLE[tier])
    if link is None:
        return None
    register = find_table(con, CHANGE_TABLE[tier])
    link_columns = columns_of(con, link)
    rebases = "coalesce(s.rebases, false)" if "rebases" in link_columns else "false"
    if register is not None:
        description = "coalesce(c.description, s.change_id)"
        join = f"left join {register} c on c.change_id = s.change_id"
    else:
        description, join = "s.change_id", ""
    kind = "s.kind" if "kind" in link_columns else "'intervention'"
    return f"""(
        select s.measure_code, s.level, s.series_key, s.change_id, s.change_month,
               {kind} as kind, {rebases} as rebases, {description} as description
        from {link} s {join}
        where {_tier_filter(con, link, tier, "s.")})"""


def read_series_changes(
    con: duckdb.DuckDBPyConnection, tier: str, measure_code: str
) -> dict[tuple[str, str], list[RecordedChange]]:
    """Recorded changes per (level, series_key) of one measure, in month order
    (:func:`series_changes_relation`). Empty when the tables are missing."""
    relation = series_changes_relation(con, tier)
    if relation is None:
        return {}
    rows = con.execute(
        f"""
        select level, series_key, change_id, change_month, kind, rebases, description
        from {relation}
        where measure_code = ?
        order by level, series_key, change_month, change_id
        """,
        [measure_code],
    ).fetchall()
    out: dict[tuple[str, str], list[RecordedChange]] = defaultdict(list)
    for level, key, change_id, month, kind_value, rebase, text in rows:
        if isinstance(month, date):
            month = month.replace(day=1)
        out[(level, key)].append(
            RecordedChange(change_id, month, kind_value or "intervention", bool(rebase), text)
        )
    return dict(out)


def read_impact(con: duckdb.DuckDBPyConnection, tier: str) -> list[dict[str, Any]] | None:
    """The impact rows at region and ICB level, or None when the table is missing (no page)."""
    table = find_table(con, IMPACT_TABLE[tier])
    if table is None:
        return None
    cursor = con.execute(
        f"""
        select * from {table}
        where list_contains(?, level) and {_tier_filter(con, table, tier)}
        order by measure_code, level <> 'region', series_key
        """,
        [list(IMPACT_LEVELS)],
    )
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
