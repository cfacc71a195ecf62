"""Readable runs: one line per step on the console, everything else in a log file.

Dagster's default console logger prints every event at DEBUG (about 1,600 lines for the
demo), which buries the one line a data engineer needs when a run fails. Runs started from
the command line (``python -m pipelines.cli demo|backfill``) configure these two loggers
instead: ``observatory_console`` prints a line per finished step (name, seconds, rows,
checks) and, for a failure, the failing step and its first real error (for a dbt test: its
name and failing row count); ``observatory_file`` writes the full DEBUG log to
``<var_dir>/logs/<run id>.log``. Runs launched from the UI keep Dagster's own logging.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
from dagster._core.log_manager import get_log_record_metadata, has_log_record_metadata

_STEP_LINE = "  {mark} {step:<28} {seconds:>6.1f} s  {detail}"


def _number(value: Any) -> float | None:
    raw = getattr(value, "value", value)
    return raw if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def first_real_error(error: Any) -> str:
    """The innermost cause of a step failure, one line, without Dagster's wrapping."""
    while getattr(error, "cause", None) is not None and not error.message.startswith(
        ("dagster._core.definitions.events.Failure", "Failure")
    ):
        error = error.cause
    message = (error.message or "").strip()
    head = message.splitlines()[0] if message else "unknown error"
    return head.split(": ", 1)[1] if head.startswith(("dagster.", "builtins.")) else head


@dataclass
class _RunTally:
    """What a run has done so far. Dagster builds a new logger for each step's log manager,
    so the tally lives per run id, not per handler."""

    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    assets: dict[str, set[str]] = field(default_factory=dict)
    checks_passed: dict[str, int] = field(default_factory=dict)
    failed_checks: dict[str, list[str]] = field(default_factory=dict)
    failed_steps: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


_TALLIES: dict[str, _RunTally] = {}


class StepSummaryHandler(logging.Handler):
    """Turns Dagster events into one console line per step and a final summary (on
    stderr: the command line sends the run's own stdout, dbt's included, to its log)."""

    def __init__(self, stream=None) -> None:
        super().__init__(level=logging.DEBUG)
        self.stream = stream or sys.stderr

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._emit(record)
        except Exception:  # a logger must never fail the run
            self.handleError(record)

    def _emit(self, record: logging.LogRecord) -> None:
        if not has_log_record_metadata(record):
            return
        meta = get_log_record_metadata(record)
        tally = _TALLIES.setdefault(meta.get("run_id") or "", _RunTally())
        event = meta.get("dagster_event")
        step = meta.get("step_key") or ""
        if event is None:
            if record.levelno >= logging.WARNING:
                self._print(f"  ! {step}: {meta.get('orig_message', record.getMessage())}")
            return
        kind = event.event_type
        data = event.event_specific_data
        if kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            tally.assets.setdefault(step, set()).add(event.asset_key.to_user_string())
            counts = tally.rows.setdefault(step, {})
            for key, value in data.materialization.metadata.items():
                number = _number(value)
                if number is not None and ("rows" in key or key == "dagster/row_count"):
                    counts[key] = max(counts.get(key, 0), number)
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            if data.passed:
                tally.checks_passed[step] = tally.checks_passed.get(step, 0) + 1
            elif data.severity == dg.AssetCheckSeverity.ERROR:
                failing = _number(data.metadata.get("dagster_dbt/failed_row_count"))
                text = f"check {data.check_name} on {data.asset_key.to_user_string()} failed"
                if failing is not None:
                    text += f" ({int(failing)} failing rows)"
                tally.failed_checks.setdefault(step, []).append(text)
                self._print(f"  ✗ {text}")
            else:
                tally.warnings.append(f"{data.check_name} on {data.asset_key.to_user_string()}")
        elif kind == dg.DagsterEventType.STEP_SUCCESS:
            self._print(
                _STEP_LINE.format(
                    mark="✓",
                    step=step,
                    seconds=data.duration_ms / 1000,
                    detail=self._detail(tally, step),
                )
            )
        elif kind == dg.DagsterEventType.STEP_FAILURE:
            checks = tally.failed_checks.get(step)
            reason = checks[0] if checks else first_real_error(data.error)
            tally.failed_steps.append(f"{step}: {reason}")
            self._print(f"  ✗ {step} failed: {reason}")
        elif kind == dg.DagsterEventType.RUN_SUCCESS:
            warned = f"; warnings: {', '.join(tally.warnings)}" if tally.warnings else ""
            self._print(f"Run {meta['run_id']} succeeded{warned}.")
            _TALLIES.pop(meta["run_id"] or "", None)
        elif kind == dg.DagsterEventType.RUN_FAILURE:
            first = tally.failed_steps[0] if tally.failed_steps else "see the log"
            self._print(f"Run {meta['run_id']} failed at {first}")
            _TALLIES.pop(meta["run_id"] or "", None)

    def _detail(self, tally: _RunTally, step: str) -> str:
        parts = [
            f"{int(v):,} {k.removeprefix('dagster/').replace('_', ' ')}"
            for k, v in tally.rows.get(step, {}).items()
        ]
        if not parts and tally.assets.get(step):
            parts.append(f"{len(tally.assets[step])} assets")
        if tally.checks_passed.get(step):
            parts.append(f"{tally.checks_passed[step]} checks passed")
        return ", ".join(parts)


@dg.logger(
    config_schema=None, description="One line per step on stdout (the command line's default)."
)
def observatory_console(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("observatory_console", level=logging.DEBUG)
    logger.addHandler(StepSummaryHandler())
    return logger


@dg.logger(
    config_schema={"log_dir": dg.Field(str)},
    description="The full DEBUG log of the run, in <log_dir>/<run id>.log.",
)
def observatory_file(init_context: dg.InitLoggerContext) -> logging.Logger:
    folder = Path(init_context.logger_config["log_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / f"{init_context.run_id}.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.Logger("observatory_file", level=logging.DEBUG)
    logger.addHandler(handler)
    return logger


LOGGERS = {"observatory_console": observatory_console, "observatory_file": observatory_file}


def cli_run_config(log_dir: Path) -> dict:
    """Run config selecting the two loggers above (what the CLI passes)."""
    return {
        "loggers": {
            "observatory_console": {},
            "observatory_file": {"config": {"log_dir": str(log_dir)}},
        }
    }
