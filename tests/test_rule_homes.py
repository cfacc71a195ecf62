"""Rules with one home in Python and a copy dbt needs in SQL or YAML: these tests fail as soon
as the copies drift apart (docs/architecture.md, "Where each rule lives")."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml

from pipelines.dashboard.build import load_site
from pipelines.dashboard.model import CHART_LABELS, DIRECTION_LABELS
from pipelines.incidents.read import read_extract
from pipelines.ingest.errors import FileRejected
from pipelines.ingest.files import check_xlsx_container
from pipelines.ingest.reading import read_xlsx_tables
from pipelines.rate import rate, rate_expr
from pipelines.settings import load_settings
from pipelines.spc.constants import (
    CHARTS,
    COUNT_CHARTS,
    DIRECTION_FROM_CATALOGUE,
    DIRECTION_SIGN,
    catalogue_direction,
    check_chart,
)
from pipelines.surveys.grid import read_grid
from tests.bad_inputs import zip_bomb, zip_of_many_entries, zip_that_lies_about_sizes
from tests.dashboard.dashboard_fixtures import make_published_warehouse
from tests.dbt_macros import macro

MODELS = Path(__file__).resolve().parents[1] / "dbt_project" / "models"


def _accepted_values(column_names: set[str]) -> dict[tuple[str, str], list[str]]:
    """(model, column) -> the values of its accepted_values test, over every dbt yml file."""
    found = {}
    for path in sorted(MODELS.rglob("*.yml")):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            for column in model.get("columns", []):
                if column["name"] not in column_names:
                    continue
                for test in column.get("data_tests", []):
                    if isinstance(test, dict) and "accepted_values" in test:
                        spec = test["accepted_values"]
                        values = spec.get("arguments", spec)["values"]
                        found[(model["name"], column["name"])] = values
    return found


def test_every_dbt_chart_column_accepts_exactly_the_python_charts():
    found = _accepted_values({"spc_chart", "chart"})
    assert ("dim_measure", "spc_chart") in found and ("fct_spc", "chart") in found
    assert {key: tuple(values) for key, values in found.items()} == {key: CHARTS for key in found}
    assert set(CHART_LABELS) == set(CHARTS)


def test_dbt_counts_events_on_the_same_charts_as_python():
    is_count_chart = macro("impact.sql", "is_count_chart")
    rows = duckdb.sql(
        f"select chart, {is_count_chart('chart')} from unnest(?::varchar[]) t(chart)",
        params=[list(CHARTS)],
    ).fetchall()
    assert {chart for chart, counted in rows if counted} == COUNT_CHARTS
    assert {"p", "u", "p_prime", "u_prime"} == COUNT_CHARTS


def test_dbt_directions_are_the_python_directions():
    found = _accepted_values({"improvement_direction"})
    catalogue = found.pop(("dim_measure", "improvement_direction"))
    assert tuple(catalogue) == tuple(DIRECTION_FROM_CATALOGUE)
    assert found and all(tuple(v) == tuple(DIRECTION_SIGN) for v in found.values()), found
    assert set(DIRECTION_LABELS) == set(DIRECTION_SIGN)
    direction_sign = macro("impact.sql", "direction_sign")
    rows = duckdb.sql(
        f"select d, {direction_sign('d')} from unnest(?::varchar[]) t(d)",
        params=[list(DIRECTION_SIGN)],
    ).fetchall()
    assert dict(rows) == DIRECTION_SIGN


@pytest.mark.parametrize(
    ("value", "expected"),
    [("higher", "increase"), ("lower", "decrease"), ("neutral", "neutral")],
)
def test_a_catalogue_direction_maps_to_the_spc_wording(value, expected):
    assert catalogue_direction(value, "FALLS") == expected


@pytest.mark.parametrize("value", ["Higher", "up", "increase", "", None])
def test_an_unknown_direction_names_the_measure_and_value(value):
    with pytest.raises(ValueError, match=f"measure FALLS: improvement_direction {value!r}"):
        catalogue_direction(value, "FALLS")


@pytest.mark.parametrize("value", ["XmR", "c", None])
def test_an_unknown_chart_names_the_measure_and_value(value):
    with pytest.raises(ValueError, match=f"measure FALLS: spc_chart {value!r} is not one of"):
        check_chart(value, "FALLS")
    assert [check_chart(chart, "FALLS") for chart in CHARTS] == list(CHARTS)


def test_the_dashboard_refuses_a_measure_with_an_unknown_direction(tmp_path):
    """It used to draw such a measure as neutral: every signal grey, nothing said."""
    path = make_published_warehouse(tmp_path / "warehouse.duckdb", with_changes=False)
    with duckdb.connect(str(path)) as con:
        assert load_site(con, "internal").measures  # the good warehouse loads
        [(code,)] = con.execute("select min(measure_code) from dim_measure").fetchall()
        con.execute(
            "update dim_measure set improvement_direction = 'upwards' where measure_code = ?",
            [code],
        )
        with pytest.raises(ValueError, match=f"measure {code}: improvement_direction 'upwards'"):
            load_site(con, "internal")


RATE_ROWS = [
    # numerator, denominator, multiplier
    (3, 7, 1000),
    (1, 3, 100),
    (0, 12, 1000),
    (5, 0, 1000),
    (0, 0, 100),
    (4, -2, 100),
    (None, 10, 1000),
    (10, None, 1000),
    (123_456_789, 987_654_321, 100_000),
    (2, 3, 1),
    (7, 9, 0.5),
]


def test_dbt_and_python_compute_the_same_rates_on_the_same_rows():
    """The rate rule's two homes, dbt's rate() macro and pipelines.rate, give the same value,
    to the bit, on every row: a zero, negative or missing denominator gives none."""
    sql_rate = macro("rate.sql", "rate")
    con = duckdb.connect()
    con.execute("create table counts (numerator bigint, denominator bigint, multiplier double)")
    con.executemany("insert into counts values (?, ?, ?)", RATE_ROWS)
    from_dbt = [
        value
        for (value,) in con.execute(
            f"select {sql_rate('numerator', 'denominator', 'multiplier')} from counts"
            " order by rowid"
        ).fetchall()
    ]
    frame = pl.DataFrame(RATE_ROWS, schema=["numerator", "denominator", "multiplier"], orient="row")
    from_numpy = rate(
        frame["numerator"].to_numpy(), frame["denominator"].to_numpy(), frame["multiplier"]
    )
    from_polars = frame.select(
        rate_expr(pl.col("numerator"), pl.col("denominator"), pl.col("multiplier"))
    ).to_series()
    assert from_dbt[0] == 3 * 1000 / 7 and from_dbt[3] is None and from_dbt[5] is None
    assert [None if np.isnan(v) else float(v) for v in from_numpy] == from_dbt
    assert from_polars.to_list() == from_dbt


XLSX_READERS = {
    "returns": lambda data, name, limit: read_xlsx_tables(data, name, limit),
    "surveys": lambda data, name, limit: read_grid(data, name, max_unzipped_bytes=limit),
    "incidents": lambda data, name, limit: read_extract(data, name, max_unzipped_bytes=limit),
}


@pytest.mark.parametrize("reader", sorted(XLSX_READERS))
@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (zip_bomb, "xlsx_inflates_too_far"),
        (zip_of_many_entries, "xlsx_inflates_too_far"),
        (zip_that_lies_about_sizes, "unreadable_xlsx"),
    ],
)
def test_every_xlsx_reader_refuses_a_zip_bomb_by_the_one_container_rule(reader, make, rule):
    """check_xlsx_container (pipelines/ingest/files.py) is the only zip-bomb rule: every
    source's XLSX reader refuses the same files with the same rule and detail as it does."""
    data, name, limit = make(), "R0A_bomb.xlsx", 1_000_000
    with pytest.raises(FileRejected) as shared:
        check_xlsx_container(data, name, limit)
    assert shared.value.rule == rule
    with pytest.raises(FileRejected) as raised:
        XLSX_READERS[reader](data, name, limit)
    assert (raised.value.rule, raised.value.detail) == (rule, shared.value.detail)


def test_every_period_model_takes_its_config_from_the_one_anchor():
    """The period models' config (incremental append, delete the run's months first, the
    period_partitioned tag) lives once, the ``&period_model`` anchor in dbt_project.yml:
    every model Dagster builds by the tag has exactly it, and none sets its own."""
    manifest = json.loads((load_settings().dbt_target_dir / "manifest.json").read_text())
    period_models = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and "period_partitioned" in node["tags"]
    }
    assert len(period_models) == 8, sorted(period_models)
    for name, node in period_models.items():
        config = node["config"]
        assert (config["materialized"], config["incremental_strategy"]) == (
            "incremental",
            "append",
        ), name
        assert [hook["sql"] for hook in config["pre-hook"]] == ["{{ delete_run_months() }}"], name
        assert "config(" not in Path(MODELS.parent, node["original_file_path"]).read_text(), name
