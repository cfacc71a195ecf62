"""The internal site's incident pages (docs/incidents.md): the completeness page with the
reconciliation of providers' returned incident counts against the counts derived from
their records (``mart_incident_reconciliation``), and the department level: each
organisation's incidents by service area, location and specialty
(``fct_incident_by_department_monthly``).

Both read organisation-level tables, so they are built for the internal tier only: a public
build never calls into this module's readers (:func:`incident_pages` returns nothing for
it), and the public tier's file does not hold the tables anyway.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment

from pipelines.dashboard.sources import find_table
from pipelines.months import month_label
from pipelines.settings import load_settings

RECONCILIATION_TABLE = "mart_incident_reconciliation"
DEPARTMENT_TABLE = "fct_incident_by_department_monthly"
#: The department views: (column, its label column, heading).
DEPARTMENT_VIEWS = (
    ("service_area", "service_area_name", "Service area"),
    ("location", "location_name", "Location within the service"),
    ("specialty", "specialty_name", "Specialty"),
)
#: Months the department tables cover, counting back from the organisation's latest.
DEPARTMENT_MONTHS = 12
MEASURE_LABELS = {
    "INCIDENT_REPORTING": "Patient safety incidents",
    "MED_INCIDENTS_HARM": "Medication incidents, moderate harm or worse",
    "DEVICE_INCIDENTS": "Medical device incidents",
    "FALLS_HARM": "Falls, moderate harm or worse",
}


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def read_reconciliation(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]] | None:
    """Every compared organisation-month and measure, flagged first, latest month first;
    None when the file has no reconciliation table."""
    table = find_table(con, RECONCILIATION_TABLE)
    if table is None:
        return None
    return _rows(
        con,
        f"select org_code, period, measure_code, reported_count, derived_count, difference,"
        f" is_flagged from {table}"
        " order by is_flagged desc, period desc, org_code, measure_code",
    )


@dataclass(frozen=True)
class DepartmentView:
    heading: str
    first: str  # month label of the first month covered
    last: str
    rows: list[dict[str, Any]]  # name, code, incidents, moderate_or_worse


def read_departments(con: duckdb.DuckDBPyConnection) -> dict[str, list[DepartmentView]]:
    """Per organisation, its incidents in its latest :data:`DEPARTMENT_MONTHS` months by
    service area, location and specialty (most incidents first); empty without the table."""
    table = find_table(con, DEPARTMENT_TABLE)
    if table is None:
        return {}
    views: dict[str, list[DepartmentView]] = defaultdict(list)
    for column, label, heading in DEPARTMENT_VIEWS:
        rows = _rows(
            con,
            f"""
            with recent as (
                select *, max(period) over (partition by org_code) as latest
                from {table}
            )
            select org_code, {column} as code, any_value({label}) as name,
                   sum(incidents) as incidents,
                   sum(incidents) filter (where harm_level in ('moderate', 'severe', 'fatal'))
                       as moderate_or_worse,
                   min(period) as first, max(period) as last
            from recent
            where period > latest - to_months({DEPARTMENT_MONTHS})
            group by org_code, {column}
            order by org_code, incidents desc, name
            """,
        )
        by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_org[row["org_code"]].append(row)
        for org, members in by_org.items():
            views[org].append(
                DepartmentView(
                    heading=heading,
                    first=month_label(min(r["first"] for r in members)),
                    last=month_label(max(r["last"] for r in members)),
                    rows=[
                        {
                            "code": r["code"],
                            "name": r["name"],
                            "incidents": int(r["incidents"]),
                            "moderate_or_worse": int(r["moderate_or_worse"] or 0),
                        }
                        for r in members
                    ],
                )
            )
    return dict(views)


def has_incident_pages(con: duckdb.DuckDBPyConnection, tier: str) -> bool:
    """Whether the site gets a completeness page (the nav links it on every page)."""
    return tier == "internal" and any(
        find_table(con, name) is not None for name in (RECONCILIATION_TABLE, DEPARTMENT_TABLE)
    )


def department_href(org_code: str) -> str:
    """Where an organisation's department page is, from the site's root."""
    return f"incidents/{org_code.lower()}.html"


def incident_pages(
    con: duckdb.DuckDBPyConnection,
    env: Environment,
    common: dict[str, Any],
    *,
    tier: str,
    names: dict[str, str],
    out_dir: Path,
    write: Callable[[Path, str], None],
    tolerance: float | None = None,
) -> list[Path]:
    """Write the completeness page and the department pages (internal tier only); the
    pages written. ``write(path, text)`` is the site's writer; ``tolerance`` (default:
    this deployment's ``incident_reconciliation_tolerance``, the one the mart was built
    with) is what the page says a flag means."""
    if tier != "internal":
        return []
    pages: list[Path] = []
    departments = read_departments(con)
    for org, views in sorted(departments.items()):
        page = out_dir / department_href(org)
        write(
            page,
            env.get_template("departments.html.j2").render(
                **common,
                root="../",
                org_code=org,
                org_name=names.get(org, org),
                views=views,
                page_title=f"Incidents by department: {names.get(org, org)}",
            ),
        )
        pages.append(page)
    if not has_incident_pages(con, tier):
        return pages
    reconciliation = read_reconciliation(con)
    rows = [
        {
            **row,
            "org_name": names.get(row["org_code"], row["org_code"]),
            "month": month_label(row["period"]),
            "measure": MEASURE_LABELS.get(row["measure_code"], row["measure_code"]),
        }
        for row in reconciliation or []
    ]
    page = out_dir / "completeness.html"
    write(
        page,
        env.get_template("completeness.html.j2").render(
            **common,
            root="",
            rows=rows,
            flagged=sum(1 for r in rows if r["is_flagged"]),
            tolerance_percent=round(
                (
                    tolerance
                    if tolerance is not None
                    else load_settings().incident_reconciliation_tolerance
                )
                * 100,
                1,
            ),
            organisations=[
                {"name": names.get(org, org), "href": department_href(org)}
                for org in sorted(departments, key=lambda o: names.get(o, o))
            ],
            page_title="Completeness: incident counts against incident records",
        ),
    )
    pages.append(page)
    return pages
