"""The shrink guard: refuse a publication whose facts vanish or fall sharply.

Quality checks judge a build on its own; none of them notices that a whole provider's
rows, or half the warehouse, went missing since the last publication (a landing folder
pointed at the wrong place, a register that lost a region, a botched clean-up of raw).
This guard compares the snapshot about to be published with the current one and names
what shrank. A run that means it (a region redefined, an organisation removed on purpose)
is started with ``--allow-shrink``; the publication log then records what was allowed.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.warehouse import open_duckdb

# The organisation-grained fact: an organisation that disappears from it is named.
ORGANISATION_FACT = "fct_measure_monthly"
# Tables whose emptiness or shrinkage is judged (dimensions may legitimately shrink).
GUARDED_PREFIXES = ("fct_", "pub_", "mart_")


def _counts(warehouse: Path) -> dict[str, int]:
    with open_duckdb(warehouse, read_only=True) as con:
        tables = [
            name
            for (name,) in con.execute(
                "select table_name from duckdb_tables() where schema_name = 'main'"
            ).fetchall()
            if name.startswith(GUARDED_PREFIXES)
        ]
        return {t: con.execute(f'select count(*) from "{t}"').fetchone()[0] for t in tables}


def _organisations(warehouse: Path) -> set[str]:
    with open_duckdb(warehouse, read_only=True) as con:
        exists = con.execute(
            "select count(*) from duckdb_tables() where table_name = ?", [ORGANISATION_FACT]
        ).fetchone()[0]
        if not exists:
            return set()
        rows = con.execute(f"select distinct org_code from {ORGANISATION_FACT}").fetchall()
        return {code for (code,) in rows}


def shrink_problems(
    new: Path, current: Path | None, *, max_share: float, organisation_level: bool = True
) -> list[str]:
    """What the warehouse file ``new`` lost against ``current`` (None: no publication yet,
    so only emptiness is judged). ``organisation_level``: the file holds the
    organisation-grained fact, which must not be empty. Empty list: nothing suspicious."""
    fresh = _counts(new)
    problems = []
    if organisation_level and fresh.get(ORGANISATION_FACT, 0) == 0:
        problems.append(f"{ORGANISATION_FACT} is empty: nothing to publish")
    if current is None or not current.exists():
        return problems
    before = _counts(current)
    for table, old in sorted(before.items()):
        now = fresh.get(table, 0)
        if old and now == 0 and table != ORGANISATION_FACT:
            problems.append(f"{table} is empty (the current publication has {old:,} rows)")
        elif old and now < old * (1 - max_share):
            problems.append(f"{table} fell from {old:,} to {now:,} rows, more than {max_share:.0%}")
    lost = sorted(_organisations(current) - _organisations(new))
    if lost:
        shown = ", ".join(lost[:20]) + (f" and {len(lost) - 20} more" if len(lost) > 20 else "")
        problems.append(
            f"{len(lost)} organisation(s) in the current publication have no rows in "
            f"{ORGANISATION_FACT}: {shown}"
        )
    return problems
