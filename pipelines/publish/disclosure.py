"""Disclosure scan of the public tier, and the CSV cell neutraliser exports use.

The public dbt models (``dbt_project/models/public``) apply disclosure control; this module
checks the result independently, from the outside, the way a reviewer would, so a bug in
the SQL, a hand edit, or an export that bypasses dbt cannot publish a small count
(docs/design.md §5.4, §7). It knows nothing about how the models compute their figures, only the
rules the output must obey:

* no count (numerator, denominator, any ``*count*`` column, respondents) is in the small
  range (1-7; respondents 1-9) unless it is null;
* every published count is a whole multiple of the rounding base (5);
* suppressed cells are null and flagged (``is_suppressed``), never zero; a null count
  without the flag is a problem too, because readers would take it for missing data;
* no suppressed cell can be derived from a total: for each parent-child pair of tables
  (sector -> ICB -> region) and each parent key, a published parent never has exactly one
  suppressed child, and a suppressed parent never has all its children published;
* no published cell is built from fewer than ``min_contributors`` (3) organisations, and
  the suppressed children of a parent hold at least that many between them (the parent
  less its published children is their sum); the organisations are counted from the
  organisation-level facts (:class:`OrganisationFacts`), never taken from the models;
* ``pub_spc`` (the public SPC series) charts exactly the published cells;
* event estimates (any column named for ``events``, e.g. ``pub_programme_impact``'s expected,
  observed and excess events, docs/programme-impact.md section 4) are whole multiples of
  the rounding base and never, in either sign, a count in the small range; they may be
  null (not a count chart, or withheld), so no flag is asked of them;
* no column that identifies an organisation or a person (``org_code``, ``org_name``,
  ``email``, ``*name`` other than reference labels, per-organisation counts).

Exported files (Parquet and CSV) get the same checks, plus one for formula injection: a
CSV text cell that starts with ``=``, ``+``, ``-``, ``@`` (or tab / carriage return, which
spreadsheets also treat as formula starts) must have been neutralised with a leading
apostrophe by :func:`neutralise_csv_cell`. The public dashboard site gets its own scan
(:func:`scan_site`): the counts in its pages and data files obey the same rules, and no
organisation's code or name appears anywhere in it.

Thresholds come from the deployment's configuration, as the models' dbt vars do (see
:func:`rules_from_settings`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
from lxml import etree

from pipelines.settings import PUBLIC_MIN_COUNT, Settings, load_settings
from pipelines.warehouse import open_duckdb

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


@dataclass(frozen=True)
class ContributorSource:
    """How to count the organisations behind each cell of one public table: the
    organisation-level fact, the cell's key columns (shared by the table and the fact), and
    when an organisation's row puts figures into the cell."""

    fact: str
    keys: tuple[str, ...]
    contributes: str


# An all-zero measure return adds nothing to a sum, so it protects no one (with A, B and
# an all-zero C, A still reads B's figures): it is not a contributor. A survey row exists
# only for an organisation with respondents.
_MEASURE_CONTRIBUTES = "numerator <> 0 or denominator <> 0"
CONTRIBUTOR_SOURCES: dict[str, ContributorSource] = {
    "pub_measure_by_region_monthly": ContributorSource(
        "fct_measure_monthly", ("measure_code", "period"), _MEASURE_CONTRIBUTES
    ),
    "pub_measure_by_icb_monthly": ContributorSource(
        "fct_measure_monthly", ("icb_code", "measure_code", "period"), _MEASURE_CONTRIBUTES
    ),
    "pub_measure_by_sector_monthly": ContributorSource(
        "fct_measure_monthly",
        ("icb_code", "sector_code", "measure_code", "period"),
        _MEASURE_CONTRIBUTES,
    ),
    "pub_culture_survey_by_icb": ContributorSource(
        "fct_culture_survey", ("icb_code", "wave_id", "domain_code"), "respondents > 0"
    ),
    "pub_culture_survey_by_sector": ContributorSource(
        "fct_culture_survey",
        ("icb_code", "sector_code", "wave_id", "domain_code"),
        "respondents > 0",
    ),
}

# The public SPC series: each level's rows chart one public table's cells, joined on keys.
SPC_TABLE = "pub_spc"
SPC_LEVELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "region": ("pub_measure_by_region_monthly", ("measure_code", "period")),
    "icb": ("pub_measure_by_icb_monthly", ("icb_code", "measure_code", "period")),
    "sector": (
        "pub_measure_by_sector_monthly",
        ("icb_code", "sector_code", "measure_code", "period"),
    ),
}

SUPPRESSED_FLAG = "is_suppressed"
SUPPRESSION_REASON = "suppression_reason"

# Column names, matched on lower case. A count is any column with one of these words.
# The last word names the thing counted ("numerator", "respondents", "incident_count");
# "numerator_definition" is text about a count, not a count.
_COUNT_COLUMN = re.compile(
    r"(^|_)(numerator|denominator|counts?|respondents?)(_(rounded|raw|total|published))?$"
)
_RESPONDENT_COLUMN = re.compile(r"(^|_)respondents?(_|$)")
# Estimated events (expected, observed, excess: docs/programme-impact.md section 4): counts
# of people's events, possibly negative (a difference), null where they do not apply.
_EVENT_COLUMN = re.compile(r"(^|_)events(_|$)")
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


def _setting_default(name: str) -> int:
    return int(Settings.model_fields[name].default)


@dataclass(frozen=True)
class DisclosureRules:
    """Disclosure thresholds (docs/configuration.md). Defaults are the programme's rules,
    taken from :class:`Settings`' defaults (their one home, which also feeds dbt's vars);
    read a deployment's values with :func:`rules_from_settings`."""

    min_count: int = PUBLIC_MIN_COUNT
    max_suppressed_count: int = _setting_default("public_max_suppressed_count")
    rounding_base: int = _setting_default("public_rounding_base")
    min_respondents: int = _setting_default("survey_public_min_respondents")
    min_contributors: int = _setting_default("public_min_contributors")


def rules_from_settings(settings: Settings | None = None) -> DisclosureRules:
    """The thresholds of this deployment's configuration: the same values reach the dbt
    models as vars (:meth:`Settings.dbt_vars`), so the scan and the models never disagree."""
    settings = settings or load_settings()
    return DisclosureRules(
        max_suppressed_count=settings.public_max_suppressed_count,
        rounding_base=settings.public_rounding_base,
        min_respondents=settings.survey_public_min_respondents,
        min_contributors=settings.public_min_contributors,
    )


@dataclass(frozen=True)
class OrganisationFacts:
    """Where the scan finds the organisation-level facts (``fct_measure_monthly``,
    ``fct_culture_survey``) it counts each public cell's contributing organisations from:
    a DuckDB file attached read-only (``database``), or the scanned connection itself
    (``database`` None), in ``schema``. In the working file that is ``marts``; in a
    published snapshot, the internal tier's ``warehouse.duckdb``, schema ``main``.

    Decision: the scan is given the organisation-level facts rather than reading a count
    of contributors from the public tables. A count in the public tables would be the
    models' own figure, so a model that miscounted (rows instead of organisations, an
    all-zero return counted, the wrong join) would pass a scan that trusted it; and the
    public tier would then publish a count of organisations per cell, which it does not
    (every figure it adds is one more to keep from being differenced). Recounting from the
    audited facts keeps the scan independent of the models, at the price of the scan
    needing the internal tier, which the publication builds beside the public one anyway.
    """

    database: Path | None = None
    schema: str = "main"


def neutralise_csv_cell(value: str) -> str:
    """Make a CSV text cell safe to open in a spreadsheet (formula injection, docs/design.md §11).

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


def is_event_column(name: str) -> bool:
    """Whether the scan treats a column as an event estimate (``expected_events``,
    ``events_better``)."""
    return bool(_EVENT_COLUMN.search(name.lower()))


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

    for name in names:
        if not is_event_column(name) or is_count_column(name):
            continue
        value = f"try_cast({_quote(name)} as double)"
        for where, what in (
            (f"{_quote(name)} is not null and {value} is null", "cell(s) that are not numbers"),
            (
                f"abs({value}) between {rules.min_count} and {rules.max_suppressed_count}",
                f"published event estimate(s) in {rules.min_count}.."
                f"{rules.max_suppressed_count} either way (must be withheld)",
            ),
            (
                f"{value} - {base} * floor({value} / {base}) <> 0",
                f"event estimate(s) not a multiple of the rounding base {base}",
            ),
        ):
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


def _null_safe_join(left: str, right: str, keys: Sequence[str]) -> str:
    return " and ".join(
        f"{left}.{_quote(k)} is not distinct from {right}.{_quote(k)}" for k in keys
    )


_FACTS_ALIAS = "disclosure_org_facts"


def _contributor_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[_Table],
    facts: OrganisationFacts | None,
) -> tuple[dict[tuple[str, str], str], list[str]]:
    """For each table with a :data:`CONTRIBUTOR_SOURCES` entry, a temporary table of its
    cells with their suppression flag, whether they carry a non-zero count, and the number
    of organisations in the facts whose figures are in them. Returns ({(schema, table):
    temporary table}, problems)."""
    wanted = [t for t in tables if t.name in CONTRIBUTOR_SOURCES]
    if not wanted:
        return {}, []
    if facts is None:
        return {}, [
            f"{t.label}: cannot check contributing organisations, no organisation-level"
            " facts were given to the scan"
            for t in wanted
        ]
    schema = f"{_FACTS_ALIAS}.{_quote(facts.schema)}" if facts.database else _quote(facts.schema)
    made: dict[tuple[str, str], str] = {}
    problems: list[str] = []
    for table in wanted:
        source = CONTRIBUTOR_SOURCES[table.name]
        columns = {n for n, _ in _columns(con, table)}
        missing = sorted({*source.keys, SUPPRESSED_FLAG} - columns)
        if missing:
            problems.append(
                f"{table.label}: cannot count contributing organisations, missing {missing}"
            )
            continue
        keys = ", ".join(_quote(k) for k in source.keys)
        counts = [n for n in sorted(columns) if is_count_column(n)]
        carries = (
            " or ".join(f"coalesce(try_cast(t.{_quote(n)} as double), 0) <> 0" for n in counts)
            or "false"
        )
        temporary = f"disclosure_contributors_{len(made)}"
        try:
            con.execute(
                f"""
                create or replace temp table {_quote(temporary)} as
                select {", ".join(f"t.{_quote(k)}" for k in source.keys)},
                       coalesce(try_cast(t.{_quote(SUPPRESSED_FLAG)} as boolean), false)
                           as suppressed,
                       ({carries}) as carries_counts,
                       coalesce(f.contributors, 0) as contributors
                from {table.sql} as t
                left join (
                    select {keys},
                           count(distinct case when {source.contributes} then org_code end)
                               as contributors
                    from {schema}.{_quote(source.fact)}
                    group by {keys}
                ) as f on {_null_safe_join("t", "f", source.keys)}
                """
            )
        except duckdb.Error as error:
            problems.append(
                f"{table.label}: cannot count contributing organisations from"
                f" {facts.schema}.{source.fact} ({str(error).splitlines()[0]})"
            )
            continue
        made[(table.schema, table.name)] = temporary
    return made, problems


def _scan_contributors(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[_Table],
    contributors: dict[tuple[str, str], str],
    rules: DisclosureRules,
) -> list[str]:
    """Published cells from too few organisations, cells the facts do not explain, and
    suppressed siblings that hold too few organisations between them."""
    low, high = 1, rules.min_contributors - 1
    problems: list[str] = []
    for table in tables:
        temporary = contributors.get((table.schema, table.name))
        if temporary is None:
            continue
        keys: Sequence[str] = list(CONTRIBUTOR_SOURCES[table.name].keys)
        cells = _Table("temp", temporary, table.label)
        checks = [
            (
                f"not suppressed and contributors between {low} and {high}",
                f"published cell(s) built from fewer than {rules.min_contributors}"
                " organisations (with one, the cell is its figures; with two, either"
                " reads the other's by taking away its own)",
            ),
            (
                "not suppressed and carries_counts and contributors = 0",
                "published cell(s) with counts but no organisation behind them in the"
                " organisation-level facts (are the facts the ones these tables came from?)",
            ),
        ]
        for where, what in checks if high >= low else checks[1:]:
            found = _count(con, cells, where)
            if found:
                problems.append(
                    f"{table.label}: {found} {what}" + _examples(con, cells, keys, where)
                )
    by_place = {(t.schema, t.name): t for t in tables}
    for child_name, parent_name, keys in HIERARCHY:
        for schema in sorted({t.schema for t in tables}):
            child = contributors.get((schema, child_name))
            parent = contributors.get((schema, parent_name))
            if child is None or parent is None or high < low:
                continue
            key_list = ", ".join(_quote(k) for k in keys)
            # The parent less its published children is the sum of the suppressed ones:
            # they must hold enough organisations that none can read another's figures.
            # A suppressed parent is still reached through its own parent's total, so
            # the same holds, unless every child is suppressed (nothing to subtract).
            rows = con.execute(
                f"""
                with c as (
                    select {key_list},
                           sum(case when suppressed then contributors else 0 end) as hidden,
                           count(*) filter (where suppressed) as suppressed_children,
                           count(*) as children
                    from {_quote(child)}
                    group by {key_list}
                )
                select {", ".join(f"p.{_quote(k)}" for k in keys)}, c.hidden
                from {_quote(parent)} as p
                inner join c on {_null_safe_join("p", "c", keys)}
                where c.hidden between {low} and {high}
                  and (not p.suppressed or c.suppressed_children < c.children)
                order by {", ".join(f"p.{_quote(k)}" for k in keys)}
                """
            ).fetchall()
            if rows:
                examples = "; ".join(
                    ", ".join(f"{k}={v}" for k, v in zip(keys, row, strict=False))
                    + f": {row[-1]} organisation(s)"
                    for row in rows[:_EXAMPLES]
                )
                problems.append(
                    f"{by_place[(schema, child_name)].label}: {len(rows)} group(s) whose"
                    f" suppressed cells hold fewer than {rules.min_contributors}"
                    f" organisations between them, so {by_place[(schema, parent_name)].label}"
                    " less the published cells gives their figures together and one can"
                    f" read another's (e.g. {examples})"
                )
    return problems


def _scan_spc(con: duckdb.DuckDBPyConnection, spc: _Table, tables: Sequence[_Table]) -> list[str]:
    """``pub_spc`` must chart exactly the published cells: each row's counts, value and
    suppression are those of the public table of its level. Its limits are then functions
    of published figures only, and a series computed from unrounded (internal) counts is
    caught here even where its counts happen to look rounded."""
    columns = {n for n, _ in _columns(con, spc)}
    needed = {"level", "numerator", "denominator", "value", SUPPRESSED_FLAG}
    needed |= {k for _, keys in SPC_LEVELS.values() for k in keys}
    missing = sorted(needed - columns)
    if missing:
        return [f"{spc.label}: cannot check against the published cells, missing {missing}"]
    problems = []
    known = ", ".join(f"'{level}'" for level in SPC_LEVELS)
    found = _count(con, spc, f"level is null or level not in ({known})")
    if found:
        problems.append(f"{spc.label}: {found} row(s) at a level other than {list(SPC_LEVELS)}")
    by_name = {t.name: t for t in tables if t.schema == spc.schema}
    flag = f"coalesce(try_cast({{}}.{_quote(SUPPRESSED_FLAG)} as boolean), false)"
    for level, (table_name, keys) in SPC_LEVELS.items():
        table = by_name.get(table_name)
        if table is None:
            if _count(con, spc, f"level = '{level}'"):
                problems.append(
                    f"{spc.label}: {level} rows, but {table_name} is not published beside it"
                )
            continue
        same = _null_safe_join("s", "t", keys)
        # try_cast: a CSV export whose values are all suppressed (null) is read as text.
        where = f"""level = '{level}' and not exists (
            select 1 from {table.sql} as t
            where {same}
              and s.numerator is not distinct from t.numerator
              and s.denominator is not distinct from t.denominator
              and {flag.format("s")} = {flag.format("t")}
              and (s.value is not distinct from t.value
                   or abs(try_cast(s.value as double) - try_cast(t.value as double))
                      <= 1e-9 * (1 + abs(try_cast(t.value as double)))))"""
        aliased = _Table(spc.schema, spc.name, spc.label)
        found = int(
            con.execute(f"select count(*) from {aliased.sql} as s where {where}").fetchone()[0]
        )
        if found:
            problems.append(
                f"{spc.label}: {found} {level} row(s) that are not a published cell of"
                f" {table.label} (counts, value or suppression differ)"
            )
    return problems


def _scan_tables(
    con: duckdb.DuckDBPyConnection,
    tables: Sequence[_Table],
    rules: DisclosureRules,
    facts: OrganisationFacts | None = None,
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
    for table in tables:
        if table.name == SPC_TABLE:
            problems += _scan_spc(con, table, tables)
    attached = False
    if (
        facts is not None
        and facts.database is not None
        and any(t.name in CONTRIBUTOR_SOURCES for t in tables)
    ):
        literal = str(facts.database).replace("'", "''")
        con.execute(f"attach '{literal}' as {_FACTS_ALIAS} (read_only)")
        attached = True
    try:
        contributors, found = _contributor_tables(con, tables, facts)
        problems += found
        problems += _scan_contributors(con, tables, contributors, rules)
        for temporary in contributors.values():
            con.execute(f"drop table if exists temp.{_quote(temporary)}")
    finally:
        if attached:
            con.execute(f"detach {_FACTS_ALIAS}")
    return problems


def scan_public_tier(
    con: duckdb.DuckDBPyConnection,
    tables: list[str] | None = None,
    *,
    rules: DisclosureRules | None = None,
    facts: OrganisationFacts | None = None,
) -> list[str]:
    """Problems that would make the public tier unsafe to publish; empty means safe.

    ``tables`` are names, qualified (``public.pub_x``) or bare (then in schema ``public``);
    by default every table and view in schema ``public`` plus every ``pub_*`` table in
    other schemas (a published snapshot keeps them in ``main``). Thresholds default to the
    deployment's configuration. ``facts`` says where the organisation-level facts are, to
    count each cell's contributing organisations; without them, every table the
    contributors rule applies to is reported as unchecked (a problem, never a pass).
    """
    rules = rules or rules_from_settings()
    selected = _discover(con) if tables is None else _resolve(tables)
    return _scan_tables(con, selected, rules, facts)


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


def scan_csv_and_parquet(
    folder: Path,
    *,
    rules: DisclosureRules | None = None,
    facts: OrganisationFacts | None = None,
) -> list[str]:
    """The same checks on every exported ``*.parquet`` and ``*.csv`` under ``folder``.

    Every file there is treated as public output (keep internal exports elsewhere). Each
    file is scanned as a table named after its stem; files in the same folder and format
    are scanned together so parent-child pairs (sector -> ICB -> region) are checked across
    files too. CSV files are read as text, so a count such as ``'3`` or ``3.0`` is caught,
    and every text cell is checked for formula injection. ``facts`` (with a ``database``:
    the files are read into a connection of their own) as for :func:`scan_public_tier`.
    """
    rules = rules or rules_from_settings()
    groups: dict[tuple[Path, str], list[Path]] = {}
    for path in sorted(folder.rglob("*")):
        suffix = path.suffix.lower()
        if path.is_file() and suffix in (".csv", ".parquet"):
            groups.setdefault((path.parent, suffix), []).append(path)
    problems: list[str] = []
    for (_, suffix), paths in sorted(groups.items()):
        con = open_duckdb()
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
            problems += _scan_tables(con, tables, rules, facts)
            if suffix == ".csv":
                for path in paths:
                    try:
                        problems += _csv_problems(con, path, str(path.relative_to(folder)))
                    except duckdb.Error as error:
                        problems.append(f"{path.relative_to(folder)}: unreadable ({error})")
        finally:
            con.close()
    return problems


# ---------------------------------------------------------------------------------------------
# The public dashboard site.

#: What the site scan reads, by file suffix. Anything else in a public site is a problem:
#: a file the scan cannot read is a file it cannot vouch for.
SITE_TEXT_SUFFIXES = frozenset({".html", ".htm", ".svg", ".css", ".js", ".txt", ""})
SITE_DATA_SUFFIXES = frozenset({".json", ".csv", ".parquet"})
#: Attributes that carry figures in the site's HTML (pipelines/dashboard/charts.py writes
#: each chart point's month figures as data-n, data-d, data-o), with the column each one
#: is, so the table rules apply: numerator and denominator are counts; a count of
#: reporting organisations is not published at all. Other ``data-*`` attributes are
#: classified by their own name (``data-respondents`` is a count too).
SITE_ATTRIBUTES: dict[str, str] = {
    "data-n": "numerator",
    "data-d": "denominator",
    "data-o": "organisations_reporting",
}
#: How a site writes a withheld figure instead of a number.
SITE_SUPPRESSED_TEXT = frozenset({"", "suppressed", "–", "-", "no value"})
# A sentence such as "3 organisations reported for Mar 2025": a count of organisations.
_ORGANISATION_COUNT_TEXT = re.compile(r"\b\d[\d,]*\s+organisations?\s+report", re.I)
_CODE_TOKEN = re.compile(r"(?<![#A-Za-z0-9])[A-Za-z0-9]+")
_WORD = re.compile(r"[a-z0-9]+")


def _column_name(label: str) -> str:
    """A header or attribute as the table rules name columns: ``Numerator`` -> numerator."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


class _Identifiers:
    """Finds organisation codes and names in text.

    Codes match as whole tokens, case-sensitively (ODS codes are upper case; ``#A81001``
    is a colour, not a practice). Names match as whole-word sequences ignoring case and
    punctuation, in the register's capitals or the dashboard's title case alike. A
    one-word name (``FOUNDATIONS``, ``ICAR``) cannot be told from an ordinary word, so only
    its code is looked for.

    Names are held by first word, then by length, as sets of word tuples: at each word of
    the text that starts some name, one set lookup per name length. Comparing the text
    with every name that starts with that word instead cost a national register's
    thousands of names beginning "care" or "the" at every such word (SCALE=1: 80 s of the
    public site's scan)."""

    def __init__(self, organisations: Iterable[tuple[str, str | None]]) -> None:
        self.codes: set[str] = set()
        self.names: dict[str, dict[int, set[tuple[str, ...]]]] = {}
        for code, name in organisations:
            if code:
                self.codes.add(code)
            words = tuple(_WORD.findall((name or "").lower()))
            if len(words) >= 2:
                self.names.setdefault(words[0], {}).setdefault(len(words), set()).add(words)

    def find(self, text: str) -> set[str]:
        found = {t for t in _CODE_TOKEN.findall(text) if t in self.codes}
        if self.names:
            words = _WORD.findall(text.lower())
            for i, word in enumerate(words):
                for length, names in self.names.get(word, {}).items():
                    candidate = tuple(words[i : i + length])
                    if candidate in names:
                        found.add(" ".join(candidate))
        return found


@dataclass
class _SiteFigures:
    """Every figure one site file publishes, by column: (column, cell text) pairs."""

    figures: list[tuple[str, str]]
    texts: list[str]
    headers: set[str]


class _SitePage:
    """Collects a page's figures (chart point attributes, data-table cells under their
    column headers) and all its text, attribute values and comments (for identifiers).

    An lxml parser target: libxml2's HTML parser tokenises in C and calls these methods
    per tag and text run. Python's ``html.parser`` tokenises with regular expressions in
    Python: 333 of the 398 s (under cProfile) the SCALE=5 publication spent scanning its
    public measure pages (12-34 MB each); on that site's 25 pages, 88.1 s of CPU against
    22.6 s for this one, with identical results (docs/benchmark.md, "The disclosure scan's
    parser"). libxml2 also closes what a page leaves open (a ``<td>`` without ``</td>``
    still ends as a cell) as a browser would, and hands over comments, which a browser
    does not show but the page's source does."""

    def __init__(self) -> None:
        self.result = _SiteFigures([], [], set())
        self._in_head = False
        self._cell: list[str] | None = None
        self._header: list[str] = []
        self._row: list[str] = []
        self._text: list[str] = []
        # (position, column) of the header's count-like or forbidden columns
        self._figure_columns: list[tuple[int, str]] = []

    def _flush(self) -> None:
        """One text run as one string: libxml2 hands ``caf&eacute;`` over in pieces, and
        the identifier search must see the words whole."""
        if self._text:
            self.result.texts.append("".join(self._text))
            self._text = []

    def start(self, tag: str, attrs: Mapping[str, str]) -> None:
        self._flush()
        for name, value in attrs.items():
            value = value or ""
            self.result.texts.append(value)
            column = _attribute_column(name)
            if column is not None:
                self.result.figures.append((column, value))
        if tag == "table":
            self._header = []
            self._figure_columns = []
        elif tag == "thead":
            self._in_head = True
        elif tag == "tr":
            self._row = []
        elif tag in ("th", "td"):
            self._cell = []

    def end(self, tag: str) -> None:
        self._flush()
        if tag in ("th", "td") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            (self._header if self._in_head else self._row).append(text)
            self._cell = None
        elif tag == "thead":
            self._in_head = False
            columns = [_column_name(h) for h in self._header]
            self.result.headers |= set(columns)
            self._figure_columns = [
                (i, column)
                for i, column in enumerate(columns)
                if is_count_column(column) or is_forbidden_column(column)
            ]
        elif tag == "tr" and not self._in_head:
            row = self._row
            self.result.figures += [(c, row[i]) for i, c in self._figure_columns if i < len(row)]

    def data(self, data: str) -> None:
        self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def comment(self, text: str) -> None:
        self._flush()
        self.result.texts.append(text)

    def close(self) -> _SiteFigures:
        self._flush()
        return self.result


@functools.cache
def _attribute_column(name: str) -> str | None:
    """The table column an attribute's value is a figure of (``data-n`` -> numerator, a
    count-like or forbidden ``data-*`` name), or None. Cached: a national page repeats a
    handful of attribute names millions of times."""
    column = SITE_ATTRIBUTES.get(name)
    if column is None and name.startswith("data-"):
        candidate = _column_name(name[5:])
        if is_count_column(candidate) or is_forbidden_column(candidate):
            column = candidate
    return column


def _page_figures(content: bytes) -> _SiteFigures:
    """The figures and texts of an HTML or SVG file's bytes (UTF-8), by :class:`_SitePage`.
    ``huge_tree``: a national measure page's text runs and depth pass libxml2's default
    safety limits."""
    page = _SitePage()
    if not content.strip():
        return page.result
    parser = etree.HTMLParser(target=page, encoding="utf-8", huge_tree=True)
    parser.feed(content)
    figures: _SiteFigures = parser.close()
    return figures


def _json_figures(value: object, column: str | None, out: _SiteFigures) -> None:
    """Figures in JSON: a value under a count-like (or forbidden) key, in records or in
    columns of lists; every string, for identifiers."""
    if isinstance(value, dict):
        for key, item in value.items():
            out.texts.append(str(key))
            name = _column_name(str(key))
            if is_forbidden_column(name):
                out.headers.add(name)
            _json_figures(item, name if is_count_column(name) else column, out)
    elif isinstance(value, list):
        for item in value:
            _json_figures(item, column, out)
    else:
        if isinstance(value, str):
            out.texts.append(value)
        if column is not None:
            out.figures.append((column, "" if value is None else str(value)))


def _figure_problems(label: str, figures: _SiteFigures, rules: DisclosureRules) -> list[str]:
    """The table rules on a site file's figures: forbidden columns, small and unrounded
    counts, cells that are neither numbers nor a suppression marker."""
    problems = [
        f"{label}: {name} would identify an organisation or count organisations"
        for name in sorted(figures.headers)
        if is_forbidden_column(name)
    ]
    by_column: dict[str, list[str]] = {}
    for column, text in figures.figures:
        by_column.setdefault(column, []).append(text)
    for column, cells in sorted(by_column.items()):
        if is_forbidden_column(column):
            shown = [c for c in cells if c.strip().lower() not in SITE_SUPPRESSED_TEXT]
            if shown:
                problems.append(
                    f"{label}: {len(shown)} {column} figure(s) published (would identify an"
                    f" organisation or count organisations), e.g. {shown[:_EXAMPLES]}"
                )
            continue
        top = rules.max_suppressed_count
        if _RESPONDENT_COLUMN.search(column):
            top = max(top, rules.min_respondents - 1)
        small, unrounded, unreadable = [], [], []
        for text in cells:
            bare = text.strip()
            if bare.lower() in SITE_SUPPRESSED_TEXT:
                continue
            try:
                number = float(bare.replace(",", "").replace("\u202f", "").replace(" ", ""))
            except ValueError:
                unreadable.append(text)
                continue
            if rules.min_count <= number <= top:
                small.append(text)
            if number % rules.rounding_base:
                unrounded.append(text)
        for found, what in (
            (small, f"published count(s) in {rules.min_count}..{top} (must be suppressed)"),
            (unrounded, f"count(s) not a multiple of the rounding base {rules.rounding_base}"),
            (unreadable, "cell(s) that are neither a number nor a suppression marker"),
        ):
            if found:
                problems.append(f"{label}: {column}: {len(found)} {what}, e.g. {found[:_EXAMPLES]}")
    return problems


def _identifier_problems(label: str, text: str, identifiers: _Identifiers) -> list[str]:
    """Counts of organisations and organisations' codes or names in a file's text."""
    problems = []
    counts = sorted(set(_ORGANISATION_COUNT_TEXT.findall(text)))
    if counts:
        problems.append(f"{label}: counts of organisations in the text, e.g. {counts[:3]}")
    found = sorted(identifiers.find(text))
    if found:
        problems.append(
            f"{label}: {len(found)} organisation code(s) or name(s), e.g. {found[:_EXAMPLES]}"
        )
    return problems


def _pdf_text(path: Path) -> str:
    """The text of every page of a PDF (pypdf: pure Python, no system tools needed)."""
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def scan_pdfs(
    files: Mapping[str, Path], organisations: Iterable[tuple[str, str | None]]
) -> dict[str, list[str]]:
    """Problems of each board report PDF in ``files`` ({label: path}), as :func:`scan_site`
    judges a PDF: the publication scans each public PDF with this before it becomes
    visible (``pipelines/publish/pdfs.py``)."""
    identifiers = _Identifiers(organisations)
    return {label: _pdf_problems(path, label, identifiers) for label, path in files.items()}


def _pdf_problems(path: Path, label: str, identifiers: _Identifiers) -> list[str]:
    """A board report's PDF (``pipelines/report``) is rendered from the HTML page beside
    it, whose figures get the table rules, so its text is searched for organisations'
    codes and names and counts of organisations. An unreadable PDF is a problem."""
    try:
        text = _pdf_text(path)
    except Exception as error:  # any unreadable PDF is a problem
        return [f"{label}: a PDF the site scan cannot read ({error})"]
    return _identifier_problems(label, text, identifiers)


def scan_context(rules: DisclosureRules, organisations: Iterable[tuple[str, str | None]]) -> str:
    """What a file's disclosure verdict depends on besides its bytes: the thresholds and
    the organisations searched for. A verdict recorded under another context (a changed
    setting, a provider added to the register) is not reused."""
    digest = hashlib.sha256(repr(rules).encode())
    for code, name in sorted((str(c), str(n or "")) for c, n in organisations):
        digest.update(f"\n{code}\t{name}".encode())
    return digest.hexdigest()


def scan_site(
    site: Path,
    *,
    rules: DisclosureRules | None = None,
    organisations: Iterable[tuple[str, str | None]] = (),
    facts: OrganisationFacts | None = None,
    passed_before: Mapping[str, str] | None = None,
    passed: dict[str, str] | None = None,
) -> list[str]:
    """Problems that would make the public dashboard site under ``site`` unsafe to publish.

    The site is output like any other, so it is scanned from the outside the same way:

    * every figure the pages show (chart point attributes ``data-n``/``data-d``, data
      table cells under a Numerator/Denominator header) and every count in a JSON data
      file obeys the table rules: no count in the small range, every count a multiple of
      the rounding base, anything else a suppression marker ("suppressed", blank);
    * no count of organisations (a ``data-o`` attribute, an "Organisations" column, a
      sentence such as "3 organisations reported") and no organisation's code or name
      (``organisations``: (code, name) of every organisation whose figures feed the
      public tier; ICBs are reported by and named, so leave them out) anywhere in any
      file, text or attribute;
    * exported tables (``*.csv``, ``*.parquet``) get :func:`scan_csv_and_parquet` (with
      ``facts``); a PDF (the board reports, ``pipelines/report``) has its text searched
      for identifiers and counts of organisations (its figures are those of the HTML page
      it is rendered from, which gets the table rules); any other kind of file (an image,
      a database) is reported, as the scan cannot read it.

    The public board reports (``public/reports``) are scanned by the same function.

    Carried verdicts: ``passed_before`` maps a file's label (its path from ``site``'s
    parent, ``reports/region.pdf``) to the SHA-256 it had when it passed this scan under
    the same :func:`scan_context`; a file with that very checksum now is not read again
    (a carried PDF costs seconds of text extraction, its checksum milliseconds), and one
    whose bytes differ (changed, or tampered with) is scanned. ``passed``, if given,
    receives the label and checksum of every file that passed (exports aside: they are
    scanned as a set).
    """
    rules = rules or rules_from_settings()
    identifiers = _Identifiers(organisations)
    problems: list[str] = []
    if not site.is_dir():
        return [f"{site}: no site to scan"]
    exports = False
    for path in sorted(site.rglob("*")):
        if not path.is_file():
            continue
        label = str(path.relative_to(site.parent))
        suffix = path.suffix.lower()
        if suffix in (".csv", ".parquet"):
            exports = True
            continue
        checksum = file_sha256(path) if passed is not None or passed_before else None
        if passed_before and checksum is not None and passed_before.get(label) == checksum:
            if passed is not None:
                passed[label] = checksum
            continue
        found = _file_problems(path, label, suffix, rules, identifiers)
        if not found and passed is not None and checksum is not None:
            passed[label] = checksum
        problems += found
    if exports:
        problems += [
            f"{site.name}/{p}" for p in scan_csv_and_parquet(site, rules=rules, facts=facts)
        ]
    return problems


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks (the manifest's checksum)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_problems(
    path: Path, label: str, suffix: str, rules: DisclosureRules, identifiers: _Identifiers
) -> list[str]:
    """One site or report file's problems (see :func:`scan_site`)."""
    if suffix == ".pdf":
        return _pdf_problems(path, label, identifiers)
    if suffix not in SITE_TEXT_SUFFIXES and suffix != ".json":
        return [f"{label}: a {suffix or 'binary'} file the site scan cannot read"]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return [f"{label}: not UTF-8 text, so the site scan cannot read it"]
    if suffix == ".json":
        figures = _SiteFigures([], [], set())
        try:
            _json_figures(json.loads(text), None, figures)
        except json.JSONDecodeError as error:
            return [f"{label}: unreadable JSON ({error})"]
    elif suffix in (".html", ".htm", ".svg"):
        figures = _page_figures(text.encode("utf-8"))
    else:  # scripts and styles: no figures, but no identifiers either
        figures = _SiteFigures([], [text], set())
    return _figure_problems(label, figures, rules) + _identifier_problems(
        label, "\n".join(figures.texts), identifiers
    )
