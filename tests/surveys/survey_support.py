"""Helpers for the survey tests: a working file with the sample register, wave folders,
exports written by the same writers as the committed sample, and a dbt build of the
survey models only (so these tests do not depend on how the Dagster job is wired)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
from support.warehouse import dbt_build as build_models

from pipelines.ingest.organisations import load_register
from pipelines.settings import PROJECT_ROOT
from pipelines.surveys.instrument import Instrument, load_instruments
from pipelines.warehouse import connect

SAMPLES = PROJECT_ROOT / "data_samples"
SURVEY_SAMPLES = SAMPLES / "surveys"
sys.path.insert(0, str(SURVEY_SAMPLES))

import survey_exports  # noqa: E402  (the sample's own export writers)

WAVE_ID = "2024-test"
ORG_QUESTION = "Which organisation do you work for?"
STAFF_QUESTION = "Which staff group do you belong to?"


def instrument() -> Instrument:
    return load_instruments()["nhs_safety_culture_v1"]


def question_ids() -> list[str]:
    return [q.question_id for q in instrument().questions]


def working_file(path: Path) -> duckdb.DuckDBPyConnection:
    """A new working file with the raw layer and the sample organisation register."""
    con = connect(path)
    load_register(con, SAMPLES / "ods", SAMPLES / "local_register.csv")
    return con


def write_wave(
    folder: Path,
    *,
    wave_id: str = WAVE_ID,
    opens_on: str = "2024-03-01",
    closes_on: str = "2024-03-31",
    extra: str = "",
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wave.yml").write_text(
        f"id: {wave_id}\n"
        f"name: Test wave {wave_id}\n"
        "instrument: nhs_safety_culture_v1\n"
        f"opens_on: {opens_on}\n"
        f"closes_on: {closes_on}\n"
        f'organisation_column: "{ORG_QUESTION}"\n'
        f'staff_group_column: "{STAFF_QUESTION}"\n' + extra,
        encoding="utf-8",
    )
    return folder


def spec(
    order: list[str] | None = None, *, organisation: bool = False, staff_group: bool = True
) -> survey_exports.ExportSpec:
    return survey_exports.ExportSpec(
        order=order or question_ids(),
        organisation_question=ORG_QUESTION if organisation else None,
        staff_group_question=STAFF_QUESTION if staff_group else None,
    )


def dbt_build(working_db: Path, scratch: Path) -> subprocess.CompletedProcess:
    """``dbt build`` of the survey marts, the public tier and everything they need."""
    return build_models(
        working_db,
        scratch,
        ["+path:models/marts/surveys", "+path:models/public/surveys"],
        timeout=600,
    )


def every_cell(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(table, cell text) for every cell of every table and view in every schema."""
    tables = con.execute(
        "select table_schema, table_name from information_schema.tables"
        " where table_catalog = current_database()"
        " and table_schema not in ('information_schema', 'pg_catalog')"
    ).fetchall()
    cells = []
    for schema, table in tables:
        name = f'"{schema}"."{table}"'
        for row in con.execute(f"select * from {name}").fetchall():
            cells.extend((name, str(value)) for value in row if value is not None)
    return cells
