"""The shrink guard on small real DuckDB files: what it refuses and what it lets through."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from pipelines.publish.shrink import shrink_problems


def warehouse(path: Path, organisations: dict[str, int], *, extra: int = 0) -> Path:
    """A published-shaped file: ``organisations`` maps org_code to its fact rows."""
    with duckdb.connect(str(path)) as con:
        con.execute("create table fct_measure_monthly (org_code varchar, value double)")
        for code, rows in organisations.items():
            con.execute(
                "insert into fct_measure_monthly select ?, range from range(?)", [code, rows]
            )
        con.execute(
            "create table mart_submission_completeness as select range from range(?)", [100 + extra]
        )
        con.execute("create table dim_period as select range from range(12)")
    return path


@pytest.fixture
def current(tmp_path: Path) -> Path:
    return warehouse(tmp_path / "current.duckdb", {"RTD": 100, "RX3": 20, "RR7": 100})


def test_an_unchanged_or_growing_build_passes(tmp_path, current):
    same = warehouse(tmp_path / "same.duckdb", {"RTD": 100, "RX3": 20, "RR7": 100})
    grown = warehouse(tmp_path / "grown.duckdb", {"RTD": 130, "RX3": 20, "RR7": 100, "RNN": 5})
    assert shrink_problems(same, current, max_share=0.2) == []
    assert shrink_problems(grown, current, max_share=0.2) == []


def test_a_lost_organisation_is_named_even_when_totals_barely_move(tmp_path, current):
    new = warehouse(tmp_path / "new.duckdb", {"RTD": 110, "RR7": 110})
    assert shrink_problems(new, current, max_share=0.2) == [
        "1 organisation(s) in the current publication have no rows in fct_measure_monthly: RX3"
    ]


def test_a_fall_beyond_the_share_is_refused_and_within_it_is_not(tmp_path, current):
    fallen = warehouse(tmp_path / "fallen.duckdb", {"RTD": 40, "RX3": 20, "RR7": 100}, extra=-30)
    problems = shrink_problems(fallen, current, max_share=0.2)
    assert problems == [
        "fct_measure_monthly fell from 220 to 160 rows, more than 20%",
        "mart_submission_completeness fell from 100 to 70 rows, more than 20%",
    ]
    assert shrink_problems(fallen, current, max_share=0.5) == []


def test_an_empty_fact_is_refused_even_without_a_publication(tmp_path):
    empty = warehouse(tmp_path / "empty.duckdb", {})
    assert shrink_problems(empty, None, max_share=0.2) == [
        "fct_measure_monthly is empty: nothing to publish"
    ]
    # The public tier's file holds no organisation-level fact: not judged for emptiness.
    assert shrink_problems(empty, None, max_share=0.2, organisation_level=False) == []
