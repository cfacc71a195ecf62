"""The published warehouse explains itself: every table and column of both tiers carries its
dbt description as a DuckDB comment, dbt's docs site ships in the snapshot (one offline HTML
file, linked from the internal dashboard's footer), and it can be generated from any
folder. Read from the one full run of the sample the test session shares (``sample_build``,
tests/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb

from pipelines.publish.docs import (
    DBT_DOCS_FILE,
    TableDocs,
    comment_tables,
    external_fetches,
    generate_dbt_docs,
    load_manifest_docs,
    manifest_docs,
    undescribed,
)
from pipelines.publish.snapshot import WAREHOUSE_FILE, verify_snapshot
from pipelines.settings import PROJECT_ROOT, load_settings


def tier_files(snapshot: Path) -> dict[str, Path]:
    return {"internal": snapshot / WAREHOUSE_FILE, "public": snapshot / "public" / WAREHOUSE_FILE}


def test_every_published_table_and_column_has_a_comment_in_both_tiers(sample_build):
    docs = load_manifest_docs(load_settings())
    snapshot = sample_build.published_snapshot()
    for tier, path in tier_files(snapshot).items():
        with duckdb.connect(str(path), read_only=True) as con:
            assert undescribed(con) == [], f"{tier} tier: tables or columns without a comment"
            tables = dict(
                con.execute(
                    "select table_name, comment from duckdb_tables()"
                    " where database_name = current_database()"
                ).fetchall()
            )
            [(columns,)] = con.execute(
                "select count(*) from duckdb_columns() where database_name = current_database()"
            ).fetchall()
        # Both tiers publish a dozen or more tables, hundreds of columns, and the comment
        # is the yml's description word for word.
        assert len(tables) >= 12 and columns >= 150, (tier, len(tables), columns)
        for name, comment in tables.items():
            assert comment == docs[name].description, (tier, name)
    with duckdb.connect(str(tier_files(snapshot)["public"]), read_only=True) as con:
        [(comment,)] = con.execute(
            "select comment from duckdb_columns() where table_name = 'pub_measure_by_icb_monthly'"
            " and column_name = 'numerator'"
        ).fetchall()
    assert comment == docs["pub_measure_by_icb_monthly"].columns["numerator"]
    assert "rounded" in comment


def test_dbt_writes_the_descriptions_into_the_working_file(sample_build):
    """persist_docs: every dbt-built mart and public table carries its comments in the
    working file too (DBeaver on the working file shows them)."""
    manifest = json.loads((load_settings().dbt_target_dir / "manifest.json").read_text())
    models = {
        (n["schema"], n["alias"])
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["schema"] in ("marts", "public")
    }
    assert sample_build.published_snapshot()
    with duckdb.connect(str(sample_build.working_db), read_only=True) as con:
        gaps = [
            name
            for name in undescribed(con, ("marts", "public"))
            if tuple(name.split(".")[:2]) in models
        ]
        [(described,)] = con.execute(
            "select count(*) from duckdb_columns() where schema_name in ('marts', 'public')"
            " and comment is not null"
        ).fetchall()
    assert gaps == []
    assert described >= 250


def test_comments_are_written_and_gaps_named(tmp_path):
    """Bad input beside good: a table the yml does not describe, and a column it leaves
    blank, are listed by name; quotes in a description survive."""
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create table described (a integer, b varchar)")
        con.execute("create table unknown (x integer)")
    docs = {"described": TableDocs("It's described.", {"a": "The 'a' column.", "b": ""})}
    assert comment_tables(path, docs) == 2
    with duckdb.connect(str(path), read_only=True) as con:
        assert undescribed(con) == ["main.unknown", "main.described.b", "main.unknown.x"]
        [(comment,)] = con.execute(
            "select comment from duckdb_columns() where column_name = 'a'"
        ).fetchall()
    assert comment == "The 'a' column."


def test_the_manifest_describes_every_published_column():
    """The yml itself, without a run: every column of every model of both tiers (and of
    the SPC tables) has a description, so a new column without one fails here first."""
    manifest = json.loads((load_settings().dbt_target_dir / "manifest.json").read_text())
    docs = manifest_docs(manifest)
    published = [
        n["alias"]
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["schema"] in ("marts", "public")
    ]
    gaps = [
        f"{table}.{column}"
        for table in published
        for column, text in docs[table].columns.items()
        if not text
    ] + [table for table in published if not docs[table].description]
    assert gaps == []
    assert len(published) >= 25


def test_the_dbt_docs_site_is_in_the_snapshot_offline_and_linked(sample_build):
    current = sample_build.published_snapshot()
    page = current / DBT_DOCS_FILE
    text = page.read_text()
    # One self-contained file: manifest and catalogue inside, nothing fetched, no tracker.
    assert external_fetches(text) == []
    assert '"send_anonymous_usage_stats": false' in text
    assert "The measure catalogue (dbt_project/seeds/measure_catalogue.csv)." in text
    assert not list(page.parent.glob("*.json"))
    manifest = json.loads((current / "manifest.json").read_text())
    assert DBT_DOCS_FILE in manifest["files"] and manifest["dbt_docs"] == DBT_DOCS_FILE
    assert verify_snapshot(current) == []
    # The internal dashboard's footer links to it from every depth of the site.
    site = current / "site"
    pages = [site / "index.html", *sorted(site.glob("*/*.html"))[:3]]
    assert len(pages) > 1
    for html in pages:
        [href] = re.findall(r'href="([^"]*dbt_docs/index\.html)"', html.read_text())
        assert (html.parent / href).resolve() == page, html


def test_dbt_docs_generate_from_another_folder(tmp_path, monkeypatch):
    """From a folder outside the repository, against a working file of this test's own:
    every path reaches dbt absolute, so the current folder does not matter."""
    working = tmp_path / "var" / "warehouse" / "working.duckdb"
    working.parent.mkdir(parents=True)
    duckdb.connect(str(working)).close()
    monkeypatch.setenv("SAFETY_OBS_WORKING_DB", str(working))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings()
    target = generate_dbt_docs(settings, tmp_path / "out" / "index.html")
    assert target.is_file() and external_fetches(target.read_text()) == []
    assert "fct_measure_monthly" in target.read_text()
    assert list(elsewhere.iterdir()) == []  # nothing written where dbt was started


def test_dbt_without_the_configured_working_file_stops_with_a_clear_message(tmp_path):
    """Bad input: bare dbt with no SAFETY_OBS_WORKING_DB refuses, naming the variable,
    rather than opening a file relative to wherever it was started."""
    project = PROJECT_ROOT / "dbt_project"
    env = {k: v for k, v in os.environ.items() if k != "SAFETY_OBS_WORKING_DB"}
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dbt"),
            "debug",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        cwd=tmp_path,
        env={**env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "SAFETY_OBS_WORKING_DB" in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == [] or not list(tmp_path.rglob("*.duckdb"))
