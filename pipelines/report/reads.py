"""Every SQL read of the board reports beyond the dashboard's own (series come from
:func:`pipelines.dashboard.build.load_series`): the impact table and the change register.

Kept in one small module so that table and column names can be fixed in one place. Names
follow docs/programme-impact.md (§3 the change tables, §4 the impact table). In a published
snapshot every table sits in its tier file's ``main`` schema under its own name (the
internal file holds the marts, ``public/warehouse.duckdb`` the ``pub_*`` tables); the
working file keeps them in ``marts`` and ``public``, so both are looked for.

A missing table is not an error: the report says the figures are not available yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

#: (internal name, public name) of each table the reports read besides the SPC series.
TABLES: dict[str, tuple[str, str]] = {
    "impact": ("fct_programme_impact", "pub_programme_impact"),
    "change": ("dim_change", "pub_change"),
    "series_change": ("fct_series_change", "pub_series_change"),
}
#: Schemas a table may sit in: a snapshot's tier file (``main``), else the working file.
SCHEMAS = ("main", "marts", "public")

IMPACT_COLUMNS = (
    "level", "series_key", "org_code", "sector_code", "icb_code", "programme_code",
    "measure_code", "chart", "improvement_direction", "baseline_from", "baseline_to",
    "baseline_points", "baseline_mean", "baseline_lpl", "baseline_upl",
    "current_segment_start", "current_mean", "current_lpl", "current_upl", "last_12_from",
    "last_12_to", "last_12_value", "improvement_abs", "improvement_rel", "signal",
    "signal_start", "attributed_change_id", "attributed_change_description", "fy_current",
    "fy_current_months", "fy_current_value", "fy_previous", "fy_previous_months",
    "fy_previous_value", "fy_change_abs", "expected_events", "observed_events",
    "excess_events", "events_better",
)  # fmt: skip
CHANGE_COLUMNS = ("change_id", "change_date", "kind", "rebase", "description")
SERIES_CHANGE_COLUMNS = ("level", "tier", "series_key", "measure_code", "change_id",
                         "change_month", "kind", "rebases")  # fmt: skip

Key = tuple[str, str, str]  # (level, series_key, measure_code)


@dataclass
class ProgrammeData:
    """What the reports read besides the series; ``missing`` names absent tables."""

    impact: dict[Key, dict[str, Any]] = field(default_factory=dict)
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    series_changes: dict[Key, list[dict[str, Any]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    #: Where the impact rows are (None: no table), for :func:`read_organisation_impact`.
    impact_table: str | None = None
    #: Where the recorded changes of each series are (None: no table), for the reports'
    #: input fingerprints (``pipelines/report/carry.py``).
    series_change_table: str | None = None


def _find(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The qualified name of table ``name`` in the open file, or None."""
    found = {
        schema
        for (schema,) in con.execute(
            "select schema_name from duckdb_tables() where database_name = current_database()"
            " and table_name = ? union all select schema_name from duckdb_views()"
            " where database_name = current_database() and view_name = ?",
            [name, name],
        ).fetchall()
    }
    for schema in SCHEMAS:
        if schema in found:
            return f"{schema}.{name}"
    return None


def _select(
    con: duckdb.DuckDBPyConnection,
    table: str,
    wanted: tuple[str, ...],
    where: str = "true",
    params: list | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``table`` with the ``wanted`` columns (those matching ``where``); a column
    the table lacks reads as null (an older or newer table still gives a report, with
    blanks where it differs)."""
    schema, _, bare = table.partition(".")
    have = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns where table_catalog ="
            " current_database() and table_schema = ? and table_name = ?",
            [schema, bare],
        ).fetchall()
    }
    columns = ", ".join(f'"{c}"' if c in have else f'null as "{c}"' for c in wanted)
    cursor = con.execute(f"select {columns} from {table} where {where}", params or [])
    return [dict(zip(wanted, row, strict=True)) for row in cursor.fetchall()]


def read_programme_data(
    con: duckdb.DuckDBPyConnection, tier: str, *, levels: Sequence[str] | None = None
) -> ProgrammeData:
    """The impact rows, the change register and the changes applying to each series, from
    the tier's own tables (the public tier reads ``pub_*`` tables only).

    ``levels``: the impact rows of those levels only (default: every level). An
    organisation's impact row is one per organisation and measure (hundreds of thousands
    nationally), so the board reports read the aggregate levels here and each ICB's
    organisations with :func:`read_organisation_impact` while its report is written."""
    index = 0 if tier == "internal" else 1
    data = ProgrammeData()
    names = {role: pair[index] for role, pair in TABLES.items()}
    impact = _find(con, names["impact"])
    if impact is None:
        data.missing.append(names["impact"])
    else:
        data.impact_table = impact
        where, params = ("list_contains(?, level)", [list(levels)]) if levels else ("true", [])
        _add_impact(data, _select(con, impact, IMPACT_COLUMNS, where, params))
    change = _find(con, names["change"])
    if change is None:
        data.missing.append(names["change"])
    else:
        data.changes = {row["change_id"]: row for row in _select(con, change, CHANGE_COLUMNS)}
    series_change = _find(con, names["series_change"])
    if series_change is None:
        data.missing.append(names["series_change"])
    else:
        data.series_change_table = series_change
        # The internal table holds both tiers' series (column ``tier``): keep this tier's.
        rows = [
            r
            for r in _select(con, series_change, SERIES_CHANGE_COLUMNS)
            if r["tier"] in (None, tier)
        ]
        for row in sorted(rows, key=lambda r: (str(r["change_month"]), str(r["change_id"]))):
            key = (row["level"], row["series_key"], row["measure_code"])
            data.series_changes.setdefault(key, []).append(row)
    return data


def _add_impact(data: ProgrammeData, rows: list[dict[str, Any]]) -> None:
    for row in rows:
        data.impact[(row["level"], row["series_key"], row["measure_code"])] = row


def read_organisation_impact(
    con: duckdb.DuckDBPyConnection, data: ProgrammeData, series_keys: Iterable[str]
) -> None:
    """Make ``data``'s organisation-level impact rows those of the organisation charts
    ``series_keys`` (an ICB's, as its report is written), dropping any read before: what
    the reports hold follows the largest ICB, not the nation's organisations."""
    data.impact = {key: row for key, row in data.impact.items() if key[0] != "organisation"}
    keys = sorted(set(series_keys))
    if data.impact_table is None or not keys:
        return
    where = "level = 'organisation' and list_contains(?, series_key)"
    _add_impact(data, _select(con, data.impact_table, IMPACT_COLUMNS, where, [keys]))
