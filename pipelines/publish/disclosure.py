"""Disclosure scan of the public tier, and the CSV cell neutraliser exports use.

The public dbt models (``dbt_project/models/public``) apply disclosure control; this module
checks the result independently, from the outside, the way a reviewer would, so a bug in
the SQL, a hand edit, or an export that bypasses dbt cannot publish a small count
(DESIGN §5.4, §7). It knows nothing about how the models compute their figures, only the
rules the output must obey:

* no count (numerator, denominator, any ``*count*`` column, respondents) is in the small
  range (1-7; respondents 1-9) unless it is null;
* every published count is a whole multiple of the rounding base (5);
* suppressed cells are null and flagged (``is_suppressed``), never zero; a null count
  without the flag is a problem too, because readers would take it for missing data;
* no suppressed cell can be derived from a total: for each parent-child pair of tables
  (sector -> ICB -> region) and each parent key, a published parent never has exactly one
  suppressed child, and a suppressed parent never has all its children published;
* no column that identifies an organisation or a person (``org_code``, ``org_name``,
  ``email``, ``*name`` other than reference labels, per-organisation counts).

Exported files (Parquet and CSV) get the same checks, plus one for formula injection: a
CSV text cell that starts with ``=``, ``+``, ``-``, ``@`` (or tab / carriage return, which
spreadsheets also treat as formula starts) must have been neutralised with a leading
apostrophe by :func:`neutralise_csv_cell`.

Thresholds come from the deployment's configuration, as the models' dbt vars do (see
:func:`rules_from_settings`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipelines.settings import Settings, load_settings

PUBLIC_SCHEMA = "public"
PUBLIC_PREFIX = "pub_"

# (child table, parent table, the columns a child shares with its parent). The children
# of one parent key add up to the parent row, so they are where differencing can reveal a
# suppressed cell. Pairs whose tables are not both present are skipped.
HIERARCHY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "pub_measure_by_sector_monthly",
        "pub_measure_by_icb_monthly",
        ("icb_code", "measure_code", "period"),
    ),
    ("pub_measure_by_icb_monthly", "pub_measure_by_region_monthly", ("measure_code", "period")),
    (
        "pub_culture_survey_by_sector",
        "pub_culture_survey_by_icb",
        ("icb_code", "wave_id", "domain_code"),
    ),
)

SUPPRESSED_FLAG = "is_suppressed"
SUPPRESSION_REASON = "suppression_reason"

# Column names, matched on lower case. A count is any column with one of these words.
# The last word names the thing counted ("numerator", "respondents", "incident_count");
# "numerator_definition" is text about a count, not a count.
_COUNT_COLUMN = re.compile(
    r"(^|_)(numerator|denominator|counts?|respondents?)(_(rounded|raw|total|published))?$"
)
_RESPONDENT_COLUMN = re.compile(r"(^|_)respondents?(_|$)")
# Columns that identify an organisation or a person, or count organisations one by one.
_FORBIDDEN_COLUMN = re.compile(
    r"org_code|org_name|organisation|(^|_)e_?mail|ip_address|free_text"
    r"|(^|_)(first|last|sur|fore)?name$"
)
# Reference labels that end in "name" but describe a group, not a person or provider.
ALLOWED_NAME_COLUMNS = frozenset(
    {
        "measure_name",
        "sector_name",
        "programme_name",
        "icb_name",
        "region_name",
        "domain_name",
        "wave_name",
        "instrument_name",
    }
)
_KEY_LIKE_COLUMN = re.compile(r"(_code|_id|^period|_period|_year|_month|_quarter|sort_order)$")
_NUMERIC_TYPES = re.compile(
    r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT"
    r"|FLOAT|REAL|DOUBLE|DECIMAL.*|NUMERIC.*)$"
)

# A cell starting with one of these is run as a formula by Excel, LibreOffice or Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# ...unless it is a plain number, which the spreadsheet reads as a number.
PLAIN_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_PLAIN_NUMBER_RE = re.compile(PLAIN_NUMBER)
# The same test in DuckDB's (RE2) syntax, for scanning whole CSV columns at once.
SQL_FORMULA_START = "^[=+\\-@\\t\\r]"
_EXAMPLES = 3


@dataclass(frozen=True)
class DisclosureRules:
    """Disclosure thresholds (docs/configuration.md). Defaults are the programme's rules;
    read a deployment's values with :func:`rules_from_settings`."""

    min_count: int = 1
    max_suppressed_count: int = 7
    rounding_base: int = 5
    min_respondents: int = 10


def rules_from_settings(settings: Settings | None = None) -> DisclosureRules:
    """The thresholds of this deployment's configuration: the same values reach the dbt
    models as vars (:meth:`Settings.dbt_vars`), so the scan and the models never disagree."""
    settings = settings or load_settings()
    return DisclosureRules(
        max_suppressed_count=settings.public_max_suppressed_count,
        rounding_base=settings.public_rounding_base,
        min_respondents=settings.survey_public_min_respondents,
    )


def neutralise_csv_cell(value: str) -> str:
    """Make a CSV text cell safe to open in a spreadsheet (formula injection, DESIGN §11).

    A cell that a spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``,
    ``@``, tab or carriage return) gets a leading apostrophe, which spreadsheets show as
    text. Decision: exporters write numeric columns as numbers and call this on text cells
    only; a text cell that is itself a plain number (``-1.5``, ``+44``) is left alone
    because a spreadsheet reads it as a number, never as a formula. Idempotent, so a cell
    is safe exactly when ``neutralise_csv_cell(cell) == cell`` — the rule the scan applies.
    """
    if value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER_RE.fullmatch(value):
        return "'" + value
    return value


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class _Table:
    schema: str
    name: str
    label: str  # how problems name it: a table name or an exported file

    @property
    def sql(self) -> str:
        return f"{_quote(self.schema)}.{_quote(self.name)}"


def _columns(con: duckdb.DuckDBPyConnection, table: _Table) -> list[tuple[str, str]]:
    return con.execute(
        "select column_name, data_type from information_schema.columns"
        " where table_catalog = current_database() and table_schema = ? and table_name = ?"
        " order by ordinal_position",
        [table.schema, table.name],
    ).fetchall()


def _discover(con: duckdb.DuckDBPyConnection) -> list[_Table]:
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_catalog = current_database()"
        " and (table_schema = ? or starts_with(table_name, ?))"
        " order by table_schema, table_name",
        [PUBLIC_SCHEMA, PUBLIC_PREFIX],
    ).fetchall()
    return [_Table(schema, name, f"{schema}.{name}") for schema, name in rows]


def _resolve(names: Iterable[str]) -> list[_Table]:
    tables = []
    for name in names:
        schema, _, bare = name.rpartition(".")
        schema = schema or PUBLIC_SCHEMA
        tables.append(_Table(schema, bare, f"{schema}.{bare}"))
    return tables


def is_count_column(name: str) -> bool:
    """Whether the scan treats a column as a count (numerator, denominator, *count*,
    respondents)."""
    return bool(_COUNT_COLUMN.search(name.lower()))


def is_forbidden_column(name: str) -> bool:
    """Whether a column would identify an organisation or a person in a public table."""
    lowered = name.lower()
    if lowered in ALLOWED_NAME_COLUMNS:
        return False
    return bool(_FORBIDDEN_COLUMN.search(lowered))


def _examples(
    con: duckdb.DuckDBPyConnection, table: _Table, keys: Sequence[str], where: str
) -> str:
    if not keys:
        return ""
    select = ", ".join(_quote(k) for k in keys)
    rows = con.execute(
        f"select {select} from {table.sql} where {where} order by {select} limit {_EXAMPLES}"
    ).fetchall()
    rendered = "; ".join(
        ", ".join(f"{k}={v}" for k, v in zip(keys, row, strict=True)) for row in rows
    )
    return f" (e.g. {rendered})" if rendered else ""


def _count(con: duckdb.DuckDBPyConnection, table: _Table, where: str) -> int:
    return int(con.execute(f"select count(*) from {table.sql} where {where}").fetchone()[0])


def _scan_table(con: duckdb.DuckDBPyConnection, table: _Table, rules: DisclosureRules) -> list[str]:
    columns = _columns(con, table)
    if not columns:
        return [f"{table.label}: table not found"]
    names = [name for name, _ in columns]
    keys = [n for n in names if _KEY_LIKE_COLUMN.search(n.lower()) and not is_count_column(n)]
    problems = [
        f"{table.label}.{name}: column would identify an organisation or a person"
        for name in names
        if is_forbidden_column(name)
    ]
    counts = [name for name in names if is_count_column(name)]
    figures = counts + [
        name
        for name, data_type in columns
        if name not in counts
        and _NUMERIC_TYPES.match(data_type.upper())
        and not _KEY_LIKE_COLUMN.search(name.lower())
    ]
    flagged = SUPPRESSED_FLAG in names
    flag = f"try_cast({_quote(SUPPRESSED_FLAG)} as boolean)"
    base = rules.rounding_base

    for name in counts:
        raw = _quote(name)
        value = f"try_cast({raw} as double)"
        top = rules.max_suppressed_count
        if _RESPONDENT_COLUMN.search(name.lower()):  # survey groups: fewer than 10 people
            top = max(top, rules.min_respondents - 1)
        checks = [
            (f"{raw} is not null and {value} is null", "cell(s) that are not numbers"),
            (
                f"{value} >= {rules.min_count} and {value} <= {top}",
                f"published count(s) in {rules.min_count}..{top} (must be suppressed)",
            ),
            (
                f"{value} - {base} * floor({value} / {base}) <> 0",
                f"count(s) not a multiple of the rounding base {base}",
            ),
        ]
        if flagged:
            checks.append(
                (f"{value} is null and not coalesce({flag}, false)", "null count(s) not flagged")
            )
        else:
            checks.append(
                (f"{raw} is null", f"null count(s) with no {SUPPRESSED_FLAG} column to flag them")
            )
        for where, what in checks:
            found = _count(con, table, where)
            if found:
                problems.append(
                    f"{table.label}.{name}: {found} {what}" + _examples(con, table, keys, where)
                )

    if flagged:
        where = f"{flag} is null"
        found = _count(con, table, where)
        if found:
            problems.append(f"{table.label}.{SUPPRESSED_FLAG}: {found} null or unreadable flag(s)")
        if figures:
            carries = " or ".join(f"{_quote(n)} is not null" for n in figures)
            where = f"coalesce({flag}, false) and ({carries})"
            found = _count(con, table, where)
            if found:
                problems.append(
                    f"{table.label}: {found} suppressed cell(s) still carry a figure"
                    f" in {', '.join(figures)} (suppressed cells must be null, never zero)"
                    + _examples(con, table, keys, where)
                )
        if SUPPRESSION_REASON in names:
            reason = _quote(SUPPRESSION_REASON)
            where = (
                f"({flag} and ({reason} is null or {reason} = ''))"
                f" or (not {flag} and {reason} is not null and {reason} <> '')"
            )
            found = _count(con, table, where)
            if found:
                problems.append(
                    f"{table.label}.{SUPPRESSION_REASON}: {found} row(s) where the reason"
                    f" does not match {SUPPRESSED_FLAG}" + _examples(con, table, keys, where)
                )
    return problems


def _scan_hierarchy(
    con: duckdb.DuckDBPyConnection, child: _Table, parent: _Table, keys: Sequence[str]
) -> list[str]:
    child_columns = {n for n, _ in _columns(con, child)}
    parent_columns = {n for n, _ in _columns(con, parent)}
    needed = {*keys, SUPPRESSED_FLAG}
    missing = sorted((needed - child_columns) | (needed - parent_columns))
    if missing:
        return [f"{child.label} -> {parent.label}: cannot check derivability, missing {missing}"]
    key_list = ", ".join(_quote(k) for k in keys)
    on = " and ".join(f"p.{_quote(k)} is not distinct from c.{_quote(k)}" for k in keys)
    flag = f"try_cast({_quote(SUPPRESSED_FLAG)} as boolean)"
    rows = con.execute(
        f"""
        with c as (
            select {key_list},
                   sum(case when {flag} then 1 else 0 end) as suppressed_children,
                   count(*) as children
            from {child.sql}
            group by {key_list}
        )
        select {", ".join(f"p.{_quote(k)}" for k in keys)},
               coalesce(try_cast(p.{_quote(SUPPRESSED_FLAG)} as boolean), false),
               c.suppressed_children
        from {parent.sql} as p
        inner join c on {on}
        where (not coalesce(try_cast(p.{_quote(SUPPRESSED_FLAG)} as boolean), false)
               and c.suppressed_children = 1)
           or (coalesce(try_cast(p.{_quote(SUPPRESSED_FLAG)} as boolean), false)
               and c.suppressed_children = 0)
        order by {", ".join(f"p.{_quote(k)}" for k in keys)}
        """
    ).fetchall()
    problems = []
    one_hidden = [r for r in rows if not r[-2]]
    all_shown = [r for r in rows if r[-2]]

    def render(selected: list[tuple]) -> str:
        return "; ".join(
            ", ".join(f"{k}={v}" for k, v in zip(keys, row[: len(keys)], strict=True))
            for row in selected[:_EXAMPLES]
        )

    if one_hidden:
        problems.append(
            f"{child.label}: {len(one_hidden)} group(s) with exactly one suppressed cell under"
            f" a published {parent.label} total, so it can be derived by subtraction"
            f" (e.g. {render(one_hidden)})"
        )
    if all_shown:
        problems.append(
            f"{parent.label}: {len(all_shown)} suppressed cell(s) whose children in"
            f" {child.label} are all published, so it is their sum (e.g. {render(all_shown)})"
        )
    return problems


def _scan_tables(
    con: duckdb.DuckDBPyConnection, tables: Sequence[_Table], rules: DisclosureRules
) -> list[str]:
    problems: list[str] = []
    for table in tables:
        problems += _scan_table(con, table, rules)
    by_place = {(t.schema, t.name): t for t in tables}
    for child_name, parent_name, keys in HIERARCHY:
        for schema in sorted({t.schema for t in tables}):
            child = by_place.get((schema, child_name))
            parent = by_place.get((schema, parent_name))
            if child is not None and parent is not None:
                problems += _scan_hierarchy(con, child, parent, keys)
    return problems


def scan_public_tier(
    con: duckdb.DuckDBPyConnection,
    tables: list[str] | None = None,
    *,
    rules: DisclosureRules | None = None,
) -> list[str]:
    """Problems that would make the public tier unsafe to publish; empty means safe.

    ``tables`` are names, qualified (``public.pub_x``) or bare (then in schema ``public``);
    by default every table and view in schema ``public`` plus every ``pub_*`` table in
    other schemas (a published snapshot keeps them in ``main``). Thresholds default to the
    dbt project's vars.
    """
    rules = rules or rules_from_settings()
    selected = _discover(con) if tables is None else _resolve(tables)
    return _scan_tables(con, selected, rules)


def _csv_problems(con: duckdb.DuckDBPyConnection, path: Path, label: str) -> list[str]:
    """Formula-injection check: every cell, read as text, must equal its neutralised form."""
    literal = str(path).replace("'", "''")
    con.execute("create schema if not exists csv_text")
    con.execute(
        "create or replace table csv_text.cells as select * from"
        f" read_csv('{literal}', header = true, all_varchar = true, auto_detect = true)"
    )
    table = _Table("csv_text", "cells", label)
    problems = []
    for name, _ in _columns(con, table):
        if neutralise_csv_cell(name) != name:
            problems.append(f"{table.label}: header {name!r} is not neutralised")
        cell = _quote(name)
        where = (
            f"regexp_matches({cell}, '{SQL_FORMULA_START}')"
            f" and not regexp_full_match({cell}, '{PLAIN_NUMBER}')"
        )
        found = _count(con, table, where)
        if found:
            rows = con.execute(
                f"select {cell} from {table.sql} where {where} limit {_EXAMPLES}"
            ).fetchall()
            problems.append(
                f"{table.label}.{name}: {found} cell(s) open to formula injection"
                f" (not neutralised with a leading apostrophe), e.g. {[r[0] for r in rows]}"
            )
    return problems


def scan_csv_and_parquet(folder: Path, *, rules: DisclosureRules | None = None) -> list[str]:
    """The same checks on every exported ``*.parquet`` and ``*.csv`` under ``folder``.

    Every file there is treated as public output (keep internal exports elsewhere). Each
    file is scanned as a table named after its stem; files in the same folder and format
    are scanned together so parent-child pairs (sector -> ICB -> region) are checked across
    files too. CSV files are read as text, so a count such as ``'3`` or ``3.0`` is caught,
    and every text cell is checked for formula injection.
    """
    rules = rules or rules_from_settings()
    groups: dict[tuple[Path, str], list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        suffix = path.suffix.lower()
        if path.is_file() and suffix in (".csv", ".parquet"):
            groups.setdefault((path.parent, suffix), []).append(path)
    problems: list[str] = []
    for (_, suffix), paths in sorted(groups.items()):
        con = duckdb.connect()
        try:
            tables = []
            for path in paths:
                label = str(path.relative_to(folder))
                view = _quote(path.stem)
                literal = str(path).replace("'", "''")
                try:
                    if suffix == ".parquet":
                        con.execute(
                            f"create table {view} as select * from read_parquet('{literal}')"
                        )
                    else:
                        con.execute(
                            f"create table {view} as select * from read_csv('{literal}',"
                            " header = true, auto_detect = true)"
                        )
                    con.execute(f"select count(*) from {view}").fetchone()
                except duckdb.Error as error:
                    problems.append(f"{label}: unreadable ({error})")
                    continue
                tables.append(_Table("main", path.stem, label))
            problems += _scan_tables(con, tables, rules)
            if suffix == ".csv":
                for path in paths:
                    try:
                        problems += _csv_problems(con, path, str(path.relative_to(folder)))
                    except duckdb.Error as error:
                        problems.append(f"{path.relative_to(folder)}: unreadable ({error})")
        finally:
            con.close()
    return problems
