"""Checks a person can read in the Dagster UI: what each dbt test protects and what to do
when it fails, and check metadata as plain values (ISO dates, numbers, a small markdown
table of failing rows) rather than Python reprs.

dagster-dbt (0.29) gives a dbt test's asset check the test's ``meta.description`` and
nothing else, and the project's 230-odd generic tests carry none; writing one by hand for
each would drift from the tests themselves. So :func:`describe_test` writes it from the
test's own definition (its kind, model, column and arguments): a ``description`` written on
the test in the yml, or in its ``meta``, wins. ``ObservatoryTranslator`` in
``pipelines/defs/dbt.py`` uses it for every check; :func:`with_failing_rows` adds the first
failing rows to a failed check's result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from pipelines.warehouse import open_duckdb

#: Failing rows shown in a failed check's metadata at most.
FAILING_ROWS_SHOWN = 5


def _relation(manifest: Mapping[str, Any], test: Mapping[str, Any]) -> str:
    """The model or source a test is attached to, as ``schema.name``."""
    parents = test.get("depends_on", {}).get("nodes", [])
    attached = test.get("attached_node") or next(iter(parents), "")
    node = manifest.get("nodes", {}).get(attached) or manifest.get("sources", {}).get(attached)
    if not node:
        return "the table"
    return f"{node.get('schema')}.{node.get('alias') or node.get('identifier') or node['name']}"


def describe_test(manifest: Mapping[str, Any], test: Mapping[str, Any]) -> str:
    """What the dbt ``test`` (a manifest node) protects and what to do when it fails."""
    meta = {**test.get("meta", {}), **test.get("config", {}).get("meta", {})}
    own = (test.get("description") or meta.get("description") or "").strip()
    blocking = (test.get("config", {}).get("severity") or "error").lower() == "error"
    consequence = (
        " Blocking: a failure stops this run before publication; the last good snapshot "
        "stays published."
        if blocking
        else " A warning: the run goes on."
    )
    affects = meta.get("affects")
    affected = f" Affects: {', '.join(affects)}." if affects else ""
    if own:
        return own + consequence + affected
    metadata = test.get("test_metadata") or {}
    kind = metadata.get("name")
    kwargs = metadata.get("kwargs", {})
    table = _relation(manifest, test)
    column = test.get("column_name") or kwargs.get("column_name")
    if kind == "not_null":
        text = (
            f"{table}.{column} is never null: every row carries it, so joins and charts on it "
            f"lose no row. If it fails: list the rows (select * from {table} where {column} "
            "is null), then correct the source file or the model that left it empty."
        )
    elif kind == "unique":
        text = (
            f"{table}.{column} is unique: one row per {column}, so a join on it never doubles "
            f"a figure. If it fails: find the duplicates (group by {column} having count(*) > "
            "1); usually a register or seed row entered twice, or a join that fans out."
        )
    elif kind == "accepted_values":
        values = ", ".join(str(v) for v in kwargs.get("values", []))
        text = (
            f"{table}.{column} takes only the values {values}: the dashboards, icons and "
            "filters that branch on it know no other. If it fails: a new value reached the "
            "warehouse; correct the data (catalogue, register or source), or, if the value is "
            "legitimate, add it to this test and to every reader of the column."
        )
    elif kind == "relationships":
        target = str(kwargs.get("to", "")).replace("ref('", "").replace("')", "")
        text = (
            f"Every {table}.{column} exists in {target}.{kwargs.get('field')}: a join from "
            f"{table} to {target} loses no row. If it fails: the dimension lacks a code the "
            "facts use (the register or the catalogue is behind); add it there, or correct "
            "the fact."
        )
    elif kind == "unique_combination":
        columns = ", ".join(kwargs.get("columns", []))
        text = (
            f"{table} has one row per ({columns}): its grain, which every sum over it relies "
            "on. If it fails: the failing rows name the duplicated keys; a model joined "
            "something twice, or a period was inserted twice (rebuild it: make backfill)."
        )
    elif kind in ("disclosure_cells_consistent", "disclosure_not_derivable"):
        what = (
            "every public cell is consistent with the disclosure rules (small counts "
            "suppressed, the rest rounded, rates from the rounded counts)"
            if kind == "disclosure_cells_consistent"
            else "no suppressed public cell can be worked out from a published total less "
            "its published parts"
        )
        text = (
            f"Disclosure control on {table}: {what}. If it fails: nothing is published; "
            "the public models (dbt_project/macros/disclosure.sql) and the data disagree "
            "with the rules in README 'Two tiers': fix the model, never the threshold, "
            "without the observatory's sign-off."
        )
    elif kind:
        text = (
            f"dbt test {kind} on {table}{'.' + column if column else ''}. If it fails: the "
            "failing rows show what breaks it; the test's macro says what it asserts."
        )
    else:
        text = (
            f"dbt test {test.get('original_file_path', test['name'])}: every row it returns "
            "breaks the rule stated at the top of that file. If it fails: read the failing "
            "rows and that comment; fix the data or configuration it names."
        )
    return text + consequence + affected


def plain(value: Any) -> Any:
    """A metadata value as a person reads it: dates and times as ISO text, tuples and lists
    of them element by element, numbers and text as they are."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small markdown table (nulls blank, pipes escaped) for the UI's metadata view."""

    def cell(value: Any) -> str:
        text = "" if value is None else str(plain(value))
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def failing_rows(database: Path, sql: str, limit: int = FAILING_ROWS_SHOWN) -> str | None:
    """The first ``limit`` rows the compiled test ``sql`` returns from ``database`` (opened
    read-only), as a markdown table; None when they cannot be read (the reason is then in
    dbt's own message)."""
    try:
        with open_duckdb(database, read_only=True) as con:
            cursor = con.execute(f"select * from ({sql.strip().rstrip(';')}) limit {int(limit)}")
            columns = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
    except duckdb.Error:
        return None
    return markdown_table(columns, rows)


def with_failing_rows(
    result: dg.AssetCheckResult, compiled: Mapping[str, str], database: Path
) -> dg.AssetCheckResult:
    """``result`` with a ``failing_rows`` markdown table when it failed and its test's
    compiled SQL (``compiled``: unique id -> SQL, from dbt's run_results.json) still
    returns rows from ``database``."""
    if result.passed:
        return result
    unique_id = result.metadata.get("unique_id")
    sql = compiled.get(str(unique_id.value)) if unique_id is not None else None
    table = failing_rows(database, sql) if sql else None
    if table is None:
        return result
    return dg.AssetCheckResult(
        passed=result.passed,
        asset_key=result.asset_key,
        check_name=result.check_name,
        severity=result.severity,
        description=result.description,
        metadata={**result.metadata, "failing_rows": dg.MetadataValue.md(table)},
    )
