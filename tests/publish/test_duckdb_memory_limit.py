"""Every DuckDB database publication opens is capped at ``duckdb_memory_limit`` and spills
under ``<var_dir>/tmp/duckdb`` (``pipelines.warehouse.open_duckdb``).

Left alone, DuckDB takes up to 80% of the machine's memory in every process and for every
file, and spills beside a read-only file (inside a published snapshot) or into the current
folder (in-memory): issue 14's SCALE=5 run reached 14-15 GB in the publication step. The
watcher below wraps ``duckdb.connect`` (the real connections; nothing of DuckDB is faked)
and reads each connection's settings as it is closed."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "dashboard"))

from dashboard_fixtures import make_published_warehouse, public_warehouse

from pipelines.dashboard import build_site
from pipelines.defs.check_text import failing_rows
from pipelines.defs.publish import disclosure_audit, scanned_organisations
from pipelines.publish.disclosure import scan_csv_and_parquet
from pipelines.publish.docs import TableDocs, comment_tables
from pipelines.publish.shrink import shrink_problems
from pipelines.publish.snapshot import publish
from pipelines.report import build_reports
from pipelines.settings import PROJECT_ROOT, ConfigurationError, Settings, load_settings
from pipelines.warehouse import open_duckdb

LIMIT = "123MB"
#: Where DuckDB may still be opened bare: the function that opens every other database,
#: and the benchmark (its baseline stands for plain DuckDB; its checks read counts).
BARE_ALLOWED = ("pipelines/warehouse.py", "pipelines/bench/")


class _Watched:
    """A real connection that records its memory limit and spill folder when closed."""

    def __init__(self, con: duckdb.DuckDBPyConnection, seen: list) -> None:
        self._con, self._seen, self._open = con, seen, True

    def __getattr__(self, name: str):
        return getattr(self._con, name)

    def __enter__(self) -> _Watched:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._seen.append(
                self._con.execute(
                    "select current_setting('memory_limit'), current_setting('temp_directory')"
                ).fetchone()
            )
            self._con.close()


@pytest.fixture
def capped(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("SAFETY_OBS_DUCKDB_MEMORY_LIMIT", LIMIT)
    return load_settings()


def _expected_limit() -> str:
    """How DuckDB shows ``LIMIT`` (it reports MiB)."""
    with duckdb.connect() as con:
        con.execute(f"set memory_limit = '{LIMIT}'")
        return con.execute("select current_setting('memory_limit')").fetchone()[0]


def _working(path: Path) -> Path:
    """A small working file with a mart and a public table, as publication copies them."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute("create schema public")
        con.execute(
            "create table marts.fct_measure_monthly as select 'R' || (i % 20) as org_code,"
            " 'M1' as measure_code, date '2024-01-01' + to_months((i // 20)::int) as period,"
            " i % 9 as numerator, 40 as denominator from range(240) t(i)"
        )
        con.execute(
            "create table public.pub_measure_by_icb_monthly as select 'QHM' as icb_code,"
            " measure_code, period, 10 * (sum(numerator) // 10) as numerator"
            " from marts.fct_measure_monthly group by all"
        )
    return path


def test_every_database_publication_opens_has_the_memory_limit(
    capped: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    working = _working(tmp_path / "working.duckdb")
    (tmp_path / "snapshot").mkdir()
    snapshot = make_published_warehouse(tmp_path / "snapshot" / "warehouse.duckdb").parent
    limit = _expected_limit()
    seen: list[tuple[str, str]] = []
    connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: _Watched(connect(*a, **k), seen))

    tiers = {
        "internal": {"fct_measure_monthly": "marts.fct_measure_monthly"},
        "public": {"pub_measure_by_icb_monthly": "public.pub_measure_by_icb_monthly"},
    }
    published = capped.published_dir
    first = publish(working, published, tiers, run_id="first-run", check_results=[])
    opened = {"tier files": len(seen)}
    assert comment_tables(snapshot / "warehouse.duckdb", {"fct_spc": TableDocs("SPC")}) == 1
    opened["comments"] = len(seen)
    build_reports(snapshot / "warehouse.duckdb", snapshot / "reports", pdf=False)
    build_reports(public_warehouse(snapshot / "warehouse.duckdb"), snapshot / "public" / "r",
                  "public", pdf=False)  # fmt: skip
    build_site(snapshot / "warehouse.duckdb", snapshot / "site")
    build_site(public_warehouse(snapshot / "warehouse.duckdb"), snapshot / "public" / "site",
               "public")  # fmt: skip
    opened["sites and reports"] = len(seen)
    assert scanned_organisations(snapshot)
    disclosure_audit(snapshot)
    opened["disclosure audit"] = len(seen)
    scan_csv_and_parquet(first.snapshot_dir / "public")  # in-memory databases
    opened["exports scan"] = len(seen)
    assert shrink_problems(first.snapshot_dir / "warehouse.duckdb", None, max_share=0.5) == []
    opened["shrink guard"] = len(seen)
    assert "| 1 |" in (failing_rows(working, "select 1 as x") or "")
    opened["failing rows"] = len(seen)

    counts = list(opened.values())
    assert all(b > a for a, b in zip([0, *counts], counts, strict=False)), opened
    spill = capped.var_dir / "tmp" / "duckdb"
    for memory_limit, temp_directory in seen:
        assert memory_limit == limit
        assert Path(temp_directory).parent == spill
    # DuckDB removed each spill folder it made (none is left behind, none beside a file).
    assert not list(spill.glob("*"))
    assert not list(snapshot.rglob("*.tmp")) and not list(first.snapshot_dir.rglob("*.tmp"))


def test_a_read_only_database_spills_under_the_var_dir_not_beside_the_file(
    capped: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SAFETY_OBS_DUCKDB_MEMORY_LIMIT", "40MB")
    published = tmp_path / "published" / "warehouse.duckdb"
    published.parent.mkdir()
    with duckdb.connect(str(published)) as con:
        con.execute("create table t as select i, md5(i::varchar) as h from range(3000000) t(i)")
    spill = capped.var_dir / "tmp" / "duckdb"
    con = open_duckdb(published, read_only=True)
    try:
        con.execute("set threads = 1")
        # A sort far larger than 40MB: it can only finish by spilling.
        assert con.execute("select count(*) from (select * from t order by h)").fetchone() == (
            3_000_000,
        )
        [folder] = spill.iterdir()
        assert con.execute("select current_setting('temp_directory')").fetchone()[0] == str(folder)
        # A second connection to the same database (one DuckDB instance) keeps its folder.
        with open_duckdb(published, read_only=True) as other:
            assert other.execute("select count(*) from t").fetchone() == (3_000_000,)
            setting = other.execute("select current_setting('temp_directory')").fetchone()[0]
            assert setting == str(folder)
    finally:
        con.close()
    assert not list(spill.iterdir())  # removed with the database
    assert sorted(p.name for p in published.parent.iterdir()) == ["warehouse.duckdb"]


def test_a_bad_memory_limit_is_refused_before_any_database_is_opened(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SAFETY_OBS_DUCKDB_MEMORY_LIMIT", "lots")
    with pytest.raises(ConfigurationError, match="duckdb_memory_limit"):
        open_duckdb(tmp_path / "new.duckdb")
    assert not (tmp_path / "new.duckdb").exists()


def test_no_module_opens_duckdb_bare():
    """Every ``duckdb.connect`` of the pipeline goes through ``open_duckdb``."""
    bare = []
    for path in sorted((PROJECT_ROOT / "pipelines").rglob("*.py")):
        name = path.relative_to(PROJECT_ROOT).as_posix()
        if name.startswith(BARE_ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text(), name)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "connect"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "duckdb"
            ):
                bare.append(f"{name}:{node.lineno}")
    assert bare == []
