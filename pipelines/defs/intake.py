"""One factory for the ingest multi-asset of every landed source (measure returns, survey
exports, incident extracts): docs/architecture.md section 1, step 2.

Each source's defs module says only what is its own (a :class:`IntakeSource`: its raw
keys, the key its ``rows_reconcile`` check sits on, how to ingest and to reconcile, what its
metadata names its rows); everything they share is here, once: the asset's specs (group
``ingest``, kinds, downstream of the organisation register, the DuckDB writer pool), the
working-file connection, one warning per refused file, the metadata (files seen, a count
per status, rows loaded and quarantined) on every key, and the blocking check.

Every source's files are logged in ``raw.submission_log`` (layout ``survey_*``,
``incidents_*``, ...); that table's asset belongs to measure-return ingest, so the other
sources write it but do not declare it. dbt's ``raw`` sources name each source's keys,
which links its models to its asset.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import dagster as dg
import duckdb

from pipelines.defs import DUCKDB_WRITER_POOL
from pipelines.defs.resources import WorkingFileRun
from pipelines.settings import Settings, load_settings
from pipelines.warehouse import working_connection


class Outcome(Protocol):
    """What the asset reads of each file's outcome (every source's outcome class has it)."""

    @property
    def file_name(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def rows_loaded(self) -> int: ...
    @property
    def rows_quarantined(self) -> int: ...
    @property
    def reason(self) -> str | None: ...


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


@dataclass(frozen=True)
class IntakeSource(Generic[OutcomeT]):
    """One landed source as its ingest asset needs it.

    ``ingest(con, settings, run_id)`` takes in every pending file and returns the outcomes;
    ``reconcile(con)`` the files out of balance (empty: the check passes). ``head``
    gives the metadata put first (the landing folders). ``rows`` is what the
    metadata calls the source's rows (``rows``, ``responses``). ``after(outcomes,
    settings, log)`` runs once the connection is closed (the returns' archiving) and
    returns metadata added last.
    """

    name: str
    keys: Sequence[dg.AssetKey]
    check_key: dg.AssetKey
    check_description: str
    description: str
    deps: Sequence[dg.AssetKey]
    ingest: Callable[[duckdb.DuckDBPyConnection, Settings, str], Sequence[OutcomeT]]
    reconcile: Callable[[duckdb.DuckDBPyConnection], list[str]]
    head: Callable[[Settings], dict[str, Any]] | None = None
    rows: str = "rows"
    after: Callable[[Sequence[OutcomeT], Settings, Any], dict[str, Any]] | None = None


def intake_asset(source: IntakeSource[Any]) -> dg.AssetsDefinition:
    """The multi-asset that ingests ``source``: every key materialised with the same
    metadata, then the blocking ``rows_reconcile`` check on ``source.check_key``."""

    @dg.multi_asset(
        name=source.name,
        specs=[
            dg.AssetSpec(key, group_name="ingest", kinds={"duckdb", "polars"}, deps=source.deps)
            for key in source.keys
        ],
        check_specs=[
            dg.AssetCheckSpec(
                "rows_reconcile",
                asset=source.check_key,
                blocking=True,
                description=source.check_description,
            )
        ],
        pool=DUCKDB_WRITER_POOL,
        description=source.description,
    )
    def _ingest(
        context: dg.AssetExecutionContext, working_file_run: WorkingFileRun
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        settings = load_settings()
        with working_connection(settings.working_db) as con:
            outcomes = source.ingest(con, settings, context.run.run_id)
            problems = source.reconcile(con)
        extra = source.after(outcomes, settings, context.log) if source.after else {}
        metadata = {**_file_metadata(source, settings, outcomes, context.log), **extra}
        for key in source.keys:
            yield dg.MaterializeResult(asset_key=key, metadata=metadata)
        yield dg.AssetCheckResult(
            check_name="rows_reconcile",
            asset_key=source.check_key,
            passed=not problems,
            metadata={"files_out_of_balance": len(problems), "examples": problems[:20]},
        )

    return _ingest


def _file_metadata(
    source: IntakeSource[Any], settings: Settings, outcomes: Sequence[Outcome], log: Any
) -> dict[str, Any]:
    """The landing folder, files seen, a count per status and the rows loaded and
    quarantined; a warning in the run log for each file refused (and for each warning a
    loaded file carries)."""
    by_status: dict[str, int] = {}
    for outcome in outcomes:
        by_status[outcome.status] = by_status.get(outcome.status, 0) + 1
        if outcome.status == "rejected":
            log.warning(f"rejected {outcome.file_name}: {outcome.reason}")
        for warning in getattr(outcome, "warnings", ()):
            log.warning(f"loaded {outcome.file_name} with a warning: {warning}")
    head = source.head(settings) if source.head else {}
    return {
        **head,
        "files_seen": len(outcomes),
        **{f"files_{status}": n for status, n in sorted(by_status.items())},
        f"{source.rows}_loaded": sum(o.rows_loaded for o in outcomes),
        f"{source.rows}_quarantined": sum(o.rows_quarantined for o in outcomes),
    }
