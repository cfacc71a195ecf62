"""The published warehouse explains itself: table and column comments, and dbt's docs site.

Descriptions live in one place, the dbt yml beside each model (and, for the tables the SPC
step writes, its source entries). dbt writes them into the working file as comments
(``persist_docs`` in ``dbt_project/dbt_project.yml``), but a published file is a copy made
with ``create table ... as select`` (``pipelines/publish/snapshot.py``), which keeps no
comment; so each published DuckDB file gets them again here, from dbt's manifest, and
``duckdb_tables().comment`` / ``duckdb_columns().comment`` (DBeaver, the R and Python
clients) show them there too. :func:`undescribed` lists what has none; a publication with
a gap is not refused (the description is documentation, not data), the test suite is
what keeps the gap at zero (tests/test_published_docs.py).

:func:`generate_dbt_docs` runs ``dbt docs generate --static`` against the working file: one
HTML file with the manifest and catalogue inside it, which opens from disk with no server
and no internet, published beside the internal tier (``dbt_docs/index.html``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines.settings import Settings
from pipelines.warehouse import open_duckdb

#: Where the dbt docs site goes in a snapshot (the internal tier's folder).
DBT_DOCS_DIR = "dbt_docs"
DBT_DOCS_FILE = f"{DBT_DOCS_DIR}/index.html"


@dataclass(frozen=True)
class TableDocs:
    """One table's description and its columns' (empty strings where the yml has none)."""

    description: str
    columns: dict[str, str] = field(default_factory=dict)


def manifest_docs(manifest: dict) -> dict[str, TableDocs]:
    """Descriptions by table name, from dbt's manifest: every model and seed (by its
    relation name) and every source table. A model wins over a source of the same name."""
    found: dict[str, TableDocs] = {}
    nodes = [
        n for n in manifest.get("nodes", {}).values() if n["resource_type"] in ("model", "seed")
    ]
    for node in [*manifest.get("sources", {}).values(), *nodes]:
        name = node.get("alias") or node.get("identifier") or node["name"]
        found[name] = TableDocs(
            description=(node.get("description") or "").strip(),
            columns={
                column: (meta.get("description") or "").strip()
                for column, meta in node.get("columns", {}).items()
            },
        )
    return found


def load_manifest_docs(settings: Settings) -> dict[str, TableDocs]:
    """:func:`manifest_docs` of the manifest ``make prepare`` wrote (the one Dagster runs)."""
    path = settings.dbt_target_dir / "manifest.json"
    return manifest_docs(json.loads(path.read_text()))


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def comment_tables(database: Path, docs: dict[str, TableDocs]) -> int:
    """Write ``docs`` as table and column comments into every table of ``database``'s
    ``main`` schema that ``docs`` describes. Returns the comments written."""
    written = 0
    with open_duckdb(database) as con:
        # One transaction: one catalogue write instead of one per comment.
        con.execute("begin transaction")
        tables = con.execute(
            "select table_name from duckdb_tables() where database_name = current_database()"
            " and schema_name = 'main' order by table_name"
        ).fetchall()
        for (table,) in tables:
            found = docs.get(table)
            if found is None:
                continue
            statements = []
            if found.description:
                statements.append(
                    f"comment on table main.{_quoted(table)} is {_literal(found.description)}"
                )
            columns = con.execute(
                "select column_name from duckdb_columns() where database_name ="
                " current_database() and schema_name = 'main' and table_name = ?",
                [table],
            ).fetchall()
            for (column,) in columns:
                text = found.columns.get(column)
                if text:
                    statements.append(
                        f"comment on column main.{_quoted(table)}.{_quoted(column)}"
                        f" is {_literal(text)}"
                    )
            for statement in statements:
                con.execute(statement)
            written += len(statements)
        con.execute("commit")
        con.execute("checkpoint")
    return written


def undescribed(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...] = ("main",)) -> list[str]:
    """Every table (``schema.table``) and column (``schema.table.column``) in ``schemas``
    of the connection's current database with no comment."""
    where = "database_name = current_database() and schema_name in ({})".format(
        ", ".join("?" * len(schemas))
    )
    tables = con.execute(
        f"select schema_name || '.' || table_name from duckdb_tables() where {where}"
        " and coalesce(trim(comment), '') = '' order by 1",
        list(schemas),
    ).fetchall()
    columns = con.execute(
        f"select schema_name || '.' || table_name || '.' || column_name from duckdb_columns()"
        f" where {where} and coalesce(trim(comment), '') = '' order by 1",
        list(schemas),
    ).fetchall()
    return [name for (name,) in [*tables, *columns]]


def generate_dbt_docs(settings: Settings, target: Path, *, timeout_s: float = 600.0) -> Path:
    """``dbt docs generate --static`` against the configured working file, its one HTML
    file copied to ``target`` (a file path). Works from any current folder: every path
    is absolute (project, profile, the working file through ``Settings.dbt_env``).

    dbt writes into a folder of its own (not ``dbt_target_dir``, whose manifest Dagster
    loads), seeded with the prepared parse so that dbt only re-parses what changed. The
    working file must not be open in another process (DuckDB allows one); publication
    calls this while it holds the run's lock and no connection.
    """
    dbt = Path(sys.executable).parent / "dbt"
    with tempfile.TemporaryDirectory(prefix="dbt-docs-") as scratch:
        work = Path(scratch)
        parse = settings.dbt_target_dir / "partial_parse.msgpack"
        if parse.exists():
            shutil.copyfile(parse, work / "partial_parse.msgpack")
        cmd = [
            str(dbt),
            "docs",
            "generate",
            "--static",
            "--quiet",
            "--project-dir",
            str(settings.dbt_project_dir),
            "--profiles-dir",
            str(settings.dbt_project_dir),
            "--target-path",
            str(work),
            "--log-path",
            str(work / "logs"),
            "--vars",
            json.dumps(settings.dbt_vars()),
        ]
        done = subprocess.run(
            cmd,
            # No usage statistics: the page would otherwise load dbt Labs' tracker
            # (snowplow) whenever it is opened with a network.
            env={**os.environ, **settings.dbt_env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
            cwd=work,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        page = work / "static_index.html"
        if done.returncode != 0 or not page.is_file():
            tail = (done.stdout + done.stderr).strip()[-2000:]
            raise RuntimeError(f"dbt docs generate --static failed ({done.returncode}): {tail}")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(page, target)
    return target


#: A script, style sheet or font fetched from another site (a page that needs the
#: internet); plain links (``<a href>``) are fine.
_FETCHED = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I
)


def external_fetches(page: str) -> list[str]:
    """Tags in ``page`` that load something from another site (empty: works offline)."""
    return [m.group(0) for m in _FETCHED.finditer(page)]
