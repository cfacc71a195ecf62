"""Great Expectations audit of the published marts, run before every publication.

Why it is built this way:

* GX 1.x cannot validate DuckDB through SQL (with duckdb-engine every expectation errors
  with an IndexError), so each mart is read from the working file into a pandas DataFrame
  and validated as a whole-dataframe batch. An incremental run passes ``periods`` and only
  those months are read and validated.
* The suites are committed JSON in a GX file context (``expectations/gx``) so that a rule
  change is a reviewed diff. The audit copies that context to a temporary directory and
  works there, so validation results, data sources and Data Docs never land in the repo.
* Suites stay declarative. What depends on the data of the day reaches them as GX suite
  parameters (``{"$PARAMETER": ...}``), computed here in SQL: the count of current raw rows
  the fact must equal, the months that must be present, the fact totals the roll-ups must
  add up to, the sector codes in ``dim_sector``.
* Ranges depend on the measure's unit, so every fact batch carries ``is_proportion`` and
  ``multiplier`` joined from ``dim_measure``; the expectations pick proportion or rate rows
  with a GX row condition on ``is_proportion``. A measure missing from ``dim_measure``
  leaves ``is_proportion`` null, which its own expectation reports.
* Only the columns the suites name are read, which keeps a million-row fact to seconds.

The results are plain JSON-ready dicts for the publication manifest, one per expectation.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipelines.months import months_between
from pipelines.settings import PROJECT_ROOT
from pipelines.warehouse import working_connection

if TYPE_CHECKING:
    from collections.abc import Iterable

    import duckdb
    import pandas as pd
    from great_expectations.core import ExpectationSuite, ExpectationValidationResult
    from great_expectations.data_context import AbstractDataContext

GX_DIR = PROJECT_ROOT / "expectations" / "gx"
DATA_DOCS_SITE = "local_site"
DATA_SOURCE = "working_duckdb"
BATCH_DEFINITION = "audited_months"
# SUMMARY gives unexpected counts and a few offending values: enough to find the bad rows
# without copying a large share of a broken table into the manifest.
RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 5}
# Keyword arguments that say where an expectation looks, not what it expects.
_DOMAIN_KWARGS = {
    "batch_id",
    "column",
    "column_list",
    "column_A",
    "column_B",
    "row_condition",
    "condition_parser",
    "result_format",
    "catch_exceptions",
    "meta",
}


@dataclass(frozen=True)
class MartBatch:
    """How the batch for one suite is read. Suites are named after the mart they audit.

    ``sql`` selects the mart as ``t`` with any audit-only columns; ``by_period`` marts are
    filtered to the requested months; ``keys`` is a roll-up's grain, used to count the
    groups the fact should produce.
    """

    sql: str
    by_period: bool
    keys: tuple[str, ...] = ()


def _with_measure(table: str, extra: str = "") -> str:
    # A left join, so an unknown measure_code shows as a null is_proportion, not a lost row.
    return (
        f"select t.*, m.is_proportion, m.multiplier{extra} from marts.{table} as t"
        " left join marts.dim_measure as m on t.measure_code = m.measure_code"
    )


BATCHES: dict[str, MartBatch] = {
    "fct_measure_monthly": MartBatch(
        _with_measure("fct_measure_monthly", ", strftime(t.period, '%Y-%m') as period_month"),
        by_period=True,
    ),
    "fct_measure_by_sector_monthly": MartBatch(
        _with_measure("fct_measure_by_sector_monthly"),
        by_period=True,
        keys=("icb_code", "sector_code", "measure_code", "period"),
    ),
    "fct_measure_by_icb_monthly": MartBatch(
        _with_measure("fct_measure_by_icb_monthly"),
        by_period=True,
        keys=("icb_code", "measure_code", "period"),
    ),
    "fct_measure_by_programme_monthly": MartBatch(
        _with_measure("fct_measure_by_programme_monthly"),
        by_period=True,
        keys=("programme_code", "measure_code", "period"),
    ),
    "dim_organisation": MartBatch("select * from marts.dim_organisation as t", by_period=False),
}


class AuditConfigurationError(RuntimeError):
    """The committed suites and the batches this module reads do not match."""


@dataclass(frozen=True)
class AuditResult:
    """Outcome of one audit.

    ``passed`` is False when any expectation of severity ``critical`` (every one committed
    so far) failed or errored. ``results`` holds one JSON-ready dict per expectation for
    the publication manifest: suite, table, expectation_type, column, row_condition,
    expected, severity, success, observed_value, unexpected_count,
    partial_unexpected_list, missing_values, exception, notes.
    """

    passed: bool
    results: list[dict[str, Any]]
    data_docs_index: Path | None
    periods: tuple[date, date] | None
    rows_validated: dict[str, int] = field(default_factory=dict)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The failed expectations, whatever their severity."""
        return [r for r in self.results if not r["success"]]


#: Fact rows validated at once at most (whole months; a larger month alone). GX validates
#: pandas frames of Python objects, several times the rows' size: all 20 million fact rows
#: of SCALE=5 at once took the step to 8.2 GB (docs/benchmark.md). Every suite's
#: expectations are per row, per key that includes the month, or sums and sets over
#: months, so validating month ranges one after another and adding their results up
#: (:func:`_merge_results`) gives the verdicts of validating them together.
CHUNK_ROWS = 2_000_000


def run_expectations(
    working_db: Path,
    data_docs_dir: Path | None = None,
    periods: tuple[date, date] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> AuditResult:
    """Run every committed suite on the marts in ``working_db``; build Data Docs if asked.

    ``periods`` is an inclusive (first month, last month) range: only those months of the
    period-grained marts are read and checked, and the cross-table parameters are computed
    over the same months. ``dim_organisation`` is always checked whole. The working file is
    opened read-only, under the project's writer lock so that a concurrent run makes the
    audit wait rather than fail, and is closed before validation starts. ``data_docs_dir``
    receives a static HTML site (``index.html``); files already there with the same names
    are overwritten, so give each run its own folder. The months are validated in ranges
    of at most ``chunk_rows`` fact rows (:data:`CHUNK_ROWS`), each one GX run of every
    period-grained suite (Data Docs shows one validation per range), and the results
    merged into one per expectation.
    """
    window = _month_window(periods)
    if not working_db.exists():
        msg = f"working file {working_db} does not exist"
        raise FileNotFoundError(msg)
    # Imported here: GX takes seconds to import, and Dagster imports this module's callers
    # on every code-location load, not only when an audit runs.
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    run_name = "all-months" if window is None else f"{window[0]:%Y-%m}..{window[1]:%Y-%m}"
    by_suite: dict[str, list[list[dict[str, Any]]]] = {name: [] for name in BATCHES}
    rows_validated = dict.fromkeys(BATCHES, 0)
    with tempfile.TemporaryDirectory(prefix="gx-audit-") as tmp:
        context = _open_context(Path(tmp), data_docs_dir)
        suites = {suite.name: suite for suite in context.suites.all()}
        if set(suites) != set(BATCHES):
            msg = (
                f"suites in {GX_DIR / 'expectations'} {sorted(suites)} do not match the "
                f"marts gx_audit reads {sorted(BATCHES)}"
            )
            raise AuditConfigurationError(msg)
        source = context.data_sources.add_pandas(DATA_SOURCE)
        validations = {}
        for name in BATCHES:
            definition = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(
                BATCH_DEFINITION
            )
            validations[name] = context.validation_definitions.add(
                gx.ValidationDefinition(name=name, data=definition, suite=suites[name])
            )
        with working_connection(working_db, read_only=True) as con:
            chunks = _chunk_windows(con, window, chunk_rows)
        parameters_of = _parameter_keys(suites.values())
        for number, chunk in enumerate(chunks):
            # Suites not by period (the register) are validated once, with the first range.
            names = [n for n, b in BATCHES.items() if b.by_period or number == 0]
            with working_connection(working_db, read_only=True) as con:
                frames = {
                    name: _read_batch(con, BATCHES[name], _referenced_columns(suites[name]), chunk)
                    for name in names
                }
                parameters = _suite_parameters(con, chunk)
            part = run_name if len(chunks) == 1 else f"{run_name} part {number + 1}"
            run_id = RunIdentifier(run_name=part)
            for name in names:
                outcome = validations[name].run(
                    batch_parameters={"dataframe": frames[name]},
                    expectation_parameters=parameters.get(name, {}),
                    result_format=RESULT_FORMAT,
                    run_id=run_id,
                )
                by_suite[name].append([_summarise(name, r) for r in outcome.results])
                if len(chunks) > 1:
                    for summary, r in zip(by_suite[name][-1], outcome.results, strict=True):
                        config = r.expectation_config
                        summary["_parameters"] = sorted(
                            parameters_of.get(config.id, ()) if config is not None else ()
                        )
                rows_validated[name] += len(frames[name])
            del frames
        if data_docs_dir is not None:
            context.build_data_docs(site_names=[DATA_DOCS_SITE])
    results = [
        _merge_results(list(parts))
        for name in BATCHES
        for parts in zip(*by_suite[name], strict=True)
    ]
    return AuditResult(
        passed=all(r["success"] for r in results if r["severity"] == "critical"),
        results=results,
        data_docs_index=data_docs_dir / "index.html" if data_docs_dir is not None else None,
        periods=window,
        rows_validated=rows_validated,
    )


def _chunk_windows(
    con: duckdb.DuckDBPyConnection, window: tuple[date, date] | None, rows: int
) -> list[tuple[date, date] | None]:
    """``window`` (None: every month) as consecutive month ranges of at most ``rows`` fact
    rows each (a larger month alone); the first and last ranges keep ``window``'s own
    bounds (open ones for None), so together they cover exactly what ``window`` does."""
    conditions, params = _where("f", window)
    months = con.execute(
        "select period, count(*) from marts.fct_measure_monthly as f"
        f"{_sql_where(conditions)} group by period order by period",
        params,
    ).fetchall()
    if sum(n for _, n in months) <= rows:
        return [window]
    starts: list[date] = []
    filled = 0
    for period, n in months:
        if not starts or filled + n > rows:
            starts.append(period)
            filled = 0
        filled += n
    low, high = window if window is not None else (date.min, date.max)
    ends = [start - timedelta(days=1) for start in starts[1:]] + [high]
    return [
        (low if i == 0 else start, end)
        for i, (start, end) in enumerate(zip(starts, ends, strict=True))
    ]


def _parameter_keys(suites: Iterable[ExpectationSuite]) -> dict[str | None, set[str]]:
    """Per expectation id, the arguments the run fills in (``$PARAMETER``): a range's
    expected row count or months, which add up over ranges where literal bounds do not."""
    return {
        expectation.id: {
            key
            for key, value in expectation.configuration.kwargs.items()
            if isinstance(value, dict) and "$PARAMETER" in value
        }
        for suite in suites
        for expectation in suite.expectations
    }


def _add_up(values: list[Any], otherwise: Any = None, numbers: tuple[type, ...] = (int,)) -> Any:
    """``numbers`` summed, lists united in order; anything else: ``otherwise`` (None: the
    first value). Observed values add up as counts (ints); filled-in parameters as any
    number (GX hands a sum's bounds back as floats)."""
    if all(isinstance(v, numbers) and not isinstance(v, bool) for v in values):
        return sum(values)
    if all(isinstance(v, list) for v in values):
        return list(dict.fromkeys(item for value in values for item in value))
    return values[0] if otherwise is None else otherwise


def _merge_results(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One expectation's results over consecutive month ranges, as one result: it failed if
    it failed in any range; counts and observed values add up (:func:`_add_up`), and so do
    the expected values the run filled in; the first failing range gives the rest."""
    if len(parts) == 1:
        return {key: value for key, value in parts[0].items() if key != "_parameters"}
    failing = [p for p in parts if not p["success"]]
    merged = dict(failing[0] if failing else parts[0])
    parameters = merged.pop("_parameters", [])
    merged["expected"] = {
        key: _add_up([p["expected"][key] for p in parts], numbers=(int, float))
        if key in parameters
        else value
        for key, value in merged["expected"].items()
    }
    merged["success"] = not failing
    counts = [p["unexpected_count"] for p in parts if p["unexpected_count"] is not None]
    merged["unexpected_count"] = sum(counts) if counts else None
    for key in ("partial_unexpected_list", "missing_values"):
        lists = [p[key] for p in parts if p[key] is not None]
        merged[key] = (
            [v for values in lists for v in values][: RESULT_FORMAT["partial_unexpected_count"]]
            if lists
            else None
        )
    merged["observed_value"] = _add_up(
        [p["observed_value"] for p in parts], otherwise=merged["observed_value"]
    )
    exceptions = dict.fromkeys(p["exception"] for p in parts if p["exception"])
    merged["exception"] = "; ".join(exceptions) or None
    return merged


def _month_window(periods: tuple[date, date] | None) -> tuple[date, date] | None:
    if periods is None:
        return None
    first, last = (p.replace(day=1) for p in periods)
    if first > last:
        msg = f"periods must be (first, last) with first <= last, got {periods}"
        raise ValueError(msg)
    return first, last


def _open_context(root: Path, data_docs_dir: Path | None) -> AbstractDataContext:
    """A file context on a temporary copy of the committed one, so no run leaves state in
    the repo; its Data Docs site, if wanted, builds straight into ``data_docs_dir``."""
    import great_expectations as gx

    shutil.copytree(GX_DIR, root / "gx", ignore=shutil.ignore_patterns("uncommitted"))
    if data_docs_dir is not None:
        config_path = root / "gx" / "great_expectations.yml"
        config = yaml.safe_load(config_path.read_text())
        site = config["data_docs_sites"][DATA_DOCS_SITE]
        site["store_backend"]["base_directory"] = str(data_docs_dir.resolve())
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return gx.get_context(mode="file", project_root_dir=root)


def _referenced_columns(suite: ExpectationSuite) -> list[str] | None:
    """Columns the suite's expectations and row conditions name, or None for all of them.

    Reading only these keeps the audit fast on a large fact: DuckDB skips the other
    columns, and GX's row conditions filter narrower frames. None when a row condition is
    a raw pandas query string, whose columns cannot be known.
    """
    from great_expectations.expectations.row_conditions import (
        AndCondition,
        ComparisonCondition,
        NullityCondition,
        OrCondition,
        deserialize_row_condition,
    )

    names: dict[str, None] = {}  # ordered set

    def walk(condition: object) -> bool:
        if isinstance(condition, ComparisonCondition | NullityCondition):
            names[condition.column.name] = None
            return True
        if isinstance(condition, AndCondition | OrCondition):
            return all(walk(c) for c in condition.conditions)
        return False

    for expectation in suite.expectations:
        kwargs = expectation.configuration.kwargs
        for column in [kwargs.get(k) for k in ("column", "column_A", "column_B")]:
            if column:
                names[column] = None
        for column in kwargs.get("column_list") or []:
            names[column] = None
        condition = kwargs.get("row_condition")
        if condition and not walk(deserialize_row_condition(condition)):
            return None
    return list(names)


def _where(alias: str, window: tuple[date, date] | None) -> tuple[list[str], list[date]]:
    if window is None:
        return [], []
    return [f"{alias}.period between ? and ?"], list(window)


def _sql_where(conditions: list[str]) -> str:
    return f" where {' and '.join(conditions)}" if conditions else ""


def _read_batch(
    con: duckdb.DuckDBPyConnection,
    batch: MartBatch,
    columns: list[str] | None,
    window: tuple[date, date] | None,
) -> pd.DataFrame:
    """The batch as a DataFrame: the wanted columns that exist, for the requested months.

    A column the suite names but the table lacks is left out rather than failing the read:
    GX then fails the expectations on it with a message naming the column.
    """
    conditions, params = _where("t", window) if batch.by_period else ([], [])
    available = [d[0] for d in con.execute(f"select * from ({batch.sql}) limit 0").description]
    selected = available if columns is None else [c for c in columns if c in available]
    projection = ", ".join(f'"{c}"' for c in selected or available[:1])
    sql = f"select {projection} from ({batch.sql}{_sql_where(conditions)}) as b"
    return con.execute(sql, params).df()


def _suite_parameters(
    con: duckdb.DuckDBPyConnection, window: tuple[date, date] | None
) -> dict[str, dict[str, Any]]:
    """Per-suite values for the ``$PARAMETER`` placeholders in the committed suites."""
    conditions, params = _where("v", window)
    [(raw_current_rows,)] = con.execute(
        "select count(*) from raw.measure_values as v"
        + _sql_where(
            [
                *conditions,
                "v.superseded_by is null",
                "v.org_code in (select org_code from marts.dim_organisation)",
                "v.measure_code in (select measure_code from marts.dim_measure)",
            ]
        ),
        params,
    ).fetchall()
    # Measures derived from incident records reach the fact beside the returns
    # (int_measure_values__current; docs/incidents.md).
    derived_view = "intermediate.int_incident__measure_values"
    has_derived = con.execute(
        "select count(*) from information_schema.tables"
        " where table_schema = 'intermediate' and table_name = 'int_incident__measure_values'"
    ).fetchone()[0]
    if has_derived:
        [(derived_rows,)] = con.execute(
            f"select count(*) from {derived_view} as v"
            + _sql_where(
                [
                    *conditions,
                    "v.org_code in (select org_code from marts.dim_organisation)",
                    "v.measure_code in (select measure_code from marts.dim_measure)",
                ]
            ),
            params,
        ).fetchall()
        raw_current_rows += derived_rows

    [(first, last)] = con.execute(
        "select min(period), max(period) from marts.fct_measure_monthly"
    ).fetchall()
    if window is not None and first is not None:
        first, last = max(first, window[0]), min(last, window[1])

    conditions, params = _where("f", window)
    fact = f"marts.fct_measure_monthly as f{_sql_where(conditions)}"
    [(rows, numerators, denominators)] = con.execute(
        f"select count(*), coalesce(sum(numerator), 0), coalesce(sum(denominator), 0) from {fact}",
        params,
    ).fetchall()
    sectors = con.execute(
        "select sector_code from marts.dim_sector where sector_code is not null order by 1"
    ).fetchall()

    parameters: dict[str, dict[str, Any]] = {
        "fct_measure_monthly": {
            "raw_current_rows": int(raw_current_rows),
            "expected_months": _months(first, last),
        },
        "dim_organisation": {"sector_codes": [code for (code,) in sectors]},
    }
    for name, batch in BATCHES.items():
        if not batch.keys:
            continue
        keys = ", ".join(f"f.{k}" for k in batch.keys)
        [(groups,)] = con.execute(
            f"select count(*) from (select distinct {keys} from {fact})", params
        ).fetchall()
        parameters[name] = {
            "fact_groups": int(groups),
            "fact_rows": int(rows),
            "fact_numerator_sum": int(numerators),
            "fact_denominator_sum": int(denominators),
        }
    return parameters


def _months(first: date | None, last: date | None) -> list[str]:
    """Every 'YYYY-MM' from ``first`` to ``last`` inclusive (none when either is None)."""
    if first is None or last is None:
        return []
    return [month.strftime("%Y-%m") for month in months_between(first, last)]


def _summarise(table: str, outcome: ExpectationValidationResult) -> dict[str, Any]:
    """One manifest entry: which rule, on which table and column, and what was seen."""
    from great_expectations.expectations.row_conditions import deserialize_row_condition
    from great_expectations.util import convert_to_json_serializable

    config = outcome.expectation_config
    if config is None:  # GX always attaches the configuration it validated
        msg = f"GX returned a result without its expectation for {table}"
        raise AuditConfigurationError(msg)
    kwargs = dict(config.kwargs)
    condition = kwargs.get("row_condition")
    result = outcome.result or {}
    summary = {
        "suite": table,
        "table": table,
        "expectation_type": config.type,
        "column": _columns(kwargs),
        "row_condition": repr(deserialize_row_condition(condition)) if condition else None,
        "expected": {k: v for k, v in kwargs.items() if k not in _DOMAIN_KWARGS},
        "severity": str(getattr(config.severity, "value", config.severity)),
        "success": bool(outcome.success),
        "observed_value": result.get("observed_value"),
        "unexpected_count": result.get("unexpected_count"),
        "partial_unexpected_list": result.get("partial_unexpected_list"),
        # expect_column_distinct_values_to_contain_set reports what is absent instead.
        "missing_values": result.get("partial_missing_list"),
        "exception": _exception_message(outcome.exception_info),
        "notes": config.notes,
    }
    return convert_to_json_serializable(summary)


def _exception_message(info: dict[str, Any] | None) -> str | None:
    """GX's error for an expectation that could not run (a missing column, say).

    ``exception_info`` is either one {raised_exception, exception_message, ...} dict or,
    when several metrics failed, such dicts keyed by metric.
    """
    if not info:
        return None
    entries = [info] if "raised_exception" in info else list(info.values())
    messages = {str(e.get("exception_message")): None for e in entries if e.get("raised_exception")}
    return "; ".join(messages) or None


def _columns(kwargs: dict[str, Any]) -> str | None:
    names = (
        kwargs.get("column_list")
        or [kwargs[k] for k in ("column_A", "column_B") if k in kwargs]
        or ([kwargs["column"]] if "column" in kwargs else [])
    )
    return ", ".join(names) or None
