"""Checking dbt models built incrementally by unit (dbt_project/macros/incremental_units.sql):
which units a build rebuilt, and that the incremental tables equal a full refresh.

A build that deletes and inserts a unit's rows again leaves values identical to the ones it
replaced, so a rebuild is seen by marking first: :func:`mark` sets one column of every row
to null (a column never null in a built row), the build runs, :func:`rebuilt_units` reads
the units whose rows have it again and puts the saved values back, in the model and in the
tables that copied the column during the build, so the tables can then be compared with a
full refresh (:func:`assert_same_rows`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import polars as pl


def mark(db: Path, table: str, column: str, keys: Sequence[str]) -> pl.DataFrame:
    """Null ``column`` in every row of ``table``; returns the values it had, by ``keys``."""
    with duckdb.connect(str(db)) as con:
        saved = con.execute(f"select {', '.join(keys)}, {column} from {table}").pl()
        assert saved[column].null_count() == 0, f"{table}.{column} has nulls before marking"
        con.execute(f"update {table} set {column} = null")
    return saved


def rebuilt_units(
    db: Path,
    table: str,
    column: str,
    keys: Sequence[str],
    saved: pl.DataFrame,
    copies: Sequence[str] = (),
) -> set[tuple]:
    """The units (``keys``) of ``table`` that the build since :func:`mark` rebuilt; the
    marked values are put back in ``table`` and in ``copies`` (tables holding the same
    ``keys`` and ``column``, built from ``table`` whole)."""
    with duckdb.connect(str(db)) as con:
        rebuilt = set(
            con.execute(
                f"select distinct {', '.join(keys)} from {table} where {column} is not null"
            ).fetchall()
        )
        con.register("saved_values", saved.to_arrow())
        try:
            for target in (table, *copies):
                match = " and ".join(f"{target}.{k} = saved_values.{k}" for k in keys)
                con.execute(
                    f"update {target} set {column} = saved_values.{column} from saved_values"
                    f" where {match} and {target}.{column} is null"
                )
                left = con.execute(f"select count(*) from {target} where {column} is null")
                assert left.fetchone()[0] == 0, f"{target}: marked rows left"
        finally:
            con.unregister("saved_values")
    return rebuilt


def assert_same_rows(db: Path, full: Path, relations: Sequence[str]) -> None:
    """Every relation holds the same rows in ``db`` and in ``full`` (a copy of it built
    with ``--full-refresh``): EXCEPT ALL both ways, so duplicates count too."""
    with (
        duckdb.connect(str(db), read_only=True) as con,
        duckdb.connect(str(full), read_only=True) as rebuilt,
    ):
        for rel in relations:
            con.register("full_refresh", rebuilt.execute(f"select * from {rel}").arrow())
            try:
                for a, b in ((rel, "full_refresh"), ("full_refresh", rel)):
                    extra = con.execute(
                        f"select count(*) from (select * from {a} except all select * from {b})"
                    ).fetchone()[0]
                    assert extra == 0, f"{rel}: {extra} rows of {a} not in {b}"
            finally:
                con.unregister("full_refresh")
