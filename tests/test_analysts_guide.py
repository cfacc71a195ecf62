"""docs/analysts.md works as written: every SQL and Python example in it runs against a
published snapshot of the sample and returns rows (the Python ones assert their own
results). The examples are read out of the markdown, so the guide and this test cannot
drift apart; the only change made to them is the published folder's path."""

from __future__ import annotations

import re

import duckdb
import pytest

from pipelines.settings import PROJECT_ROOT

GUIDE = PROJECT_ROOT / "docs" / "analysts.md"
#: The path the examples use, as an analyst in the repository would type it.
PUBLISHED = "var/published/current"
#: A SQL example whose first line is this runs against the public tier's file.
PUBLIC_MARKER = "-- tier: public"
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.S | re.M)


def examples(language: str, text: str | None = None) -> list[str]:
    """The fenced blocks of ``language`` in the guide (or ``text``), in order."""
    text = GUIDE.read_text() if text is None else text
    return [body for lang, body in FENCE.findall(text) if lang == language]


def test_the_guide_has_examples_in_every_language_and_a_diagram():
    assert len(examples("sql")) >= 6
    assert len(examples("python")) >= 2
    assert len(examples("r")) >= 1
    [diagram] = examples("mermaid")
    assert diagram.startswith("erDiagram")
    # The R example reaches the published series through DBI and NHSRplotthedots.
    [r] = examples("r")
    assert "dbConnect(duckdb::duckdb()" in r and "ptd_spc(" in r


def test_the_extraction_reads_fences_and_sees_a_broken_example():
    """Bad input beside good: the reader finds each block whole, and a broken block
    fails when run (so a broken example in the guide fails this suite)."""
    text = "x\n```sql\nselect 1;\n```\n```python\nraise ValueError('no')\n```\n"
    assert examples("sql", text) == ["select 1;\n"]
    [python] = examples("python", text)
    with pytest.raises(ValueError, match="no"):
        exec(compile(python, "guide", "exec"), {})
    with duckdb.connect() as con, pytest.raises(duckdb.CatalogException):
        con.execute("select * from no_such_table")


@pytest.mark.parametrize("number", range(len(examples("sql"))))
def test_each_sql_example_runs_on_the_published_snapshot(sample_build, number):
    sql = examples("sql")[number]
    current = sample_build.published_snapshot()
    tier = "public" if sql.lstrip().startswith(PUBLIC_MARKER) else "internal"
    database = current / ("public/warehouse.duckdb" if tier == "public" else "warehouse.duckdb")
    with duckdb.connect(str(database), read_only=True) as con:
        rows = con.execute(sql).fetchall()
    assert rows, f"SQL example {number + 1} ({tier} tier) returned no rows:\n{sql}"


@pytest.mark.parametrize("number", range(len(examples("python"))))
def test_each_python_example_runs_on_the_published_snapshot(sample_build, number, capsys):
    code = examples("python")[number]
    assert PUBLISHED in code
    in_place = code.replace(PUBLISHED, str(sample_build.published_snapshot()))
    exec(compile(in_place, "guide", "exec"), {})
    assert capsys.readouterr().out.strip(), "the example prints its result"


def test_the_wrong_way_differs_and_the_right_way_matches(sample_build):
    """The guide's claim, checked: the average of organisations' rates is not the ICB's
    published rate; summed counts divided are."""
    [_, _, comparison, *_] = examples("sql")
    with duckdb.connect(
        str(sample_build.published_snapshot() / "warehouse.duckdb"), read_only=True
    ) as con:
        rows = con.execute(comparison).fetchall()
    assert rows
    assert all(published == recomputed for _, published, _, recomputed in rows)
    assert any(published != wrong for _, published, wrong, _ in rows)
