"""Every path and threshold the pipeline uses, from environment variables with defaults.

One object so that tests, the demo, the benchmark and production differ only by
environment, never by code. Defaults are relative to the project root so a fresh
clone works with no configuration at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _path(env: str, default: Path) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser().resolve() if value else default


def _month(env: str, default: str) -> date:
    value = os.environ.get(env, default)
    year, month = value.split("-")[:2]
    return date(int(year), int(month), 1)


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build with :func:`load_settings`; override in tests with
    :meth:`with_root` or :func:`dataclasses.replace`."""

    var_dir: Path
    working_db: Path
    published_dir: Path
    landing_dir: Path
    survey_landing_dir: Path
    ods_dir: Path
    local_register: Path
    dbt_project_dir: Path
    dbt_target_dir: Path
    catalogue_start: date
    region_icb: str
    max_file_bytes: int
    max_xlsx_inflated_bytes: int
    snapshots_to_keep: int
    archive_dir: Path
    archive_processed: bool
    return_due_days: int
    nightly_cron: str
    refresh_months: int
    timezone: str

    @property
    def published_current(self) -> Path:
        """Stable path analysts open: a symlink swapped atomically at each publication."""
        return self.published_dir / "current"

    def with_root(self, root: Path) -> Settings:
        """The same settings with every writable location moved under ``root``."""
        var = root / "var"
        return replace(
            self,
            var_dir=var,
            working_db=var / "warehouse" / "working.duckdb",
            published_dir=var / "published",
        )


def load_settings() -> Settings:
    """Read settings from ``SAFETY_OBS_*`` environment variables."""
    var = _path("SAFETY_OBS_VAR_DIR", PROJECT_ROOT / "var")
    landing = _path("SAFETY_OBS_LANDING_DIR", PROJECT_ROOT / "data_samples" / "landing")
    return Settings(
        var_dir=var,
        working_db=_path("SAFETY_OBS_WORKING_DB", var / "warehouse" / "working.duckdb"),
        published_dir=_path("SAFETY_OBS_PUBLISHED_DIR", var / "published"),
        landing_dir=landing,
        survey_landing_dir=_path(
            "SAFETY_OBS_SURVEY_LANDING_DIR", PROJECT_ROOT / "data_samples" / "surveys" / "landing"
        ),
        ods_dir=_path("SAFETY_OBS_ODS_DIR", PROJECT_ROOT / "data_samples" / "ods"),
        local_register=_path(
            "SAFETY_OBS_LOCAL_REGISTER", PROJECT_ROOT / "data_samples" / "local_register.csv"
        ),
        dbt_project_dir=PROJECT_ROOT / "dbt_project",
        dbt_target_dir=_path("SAFETY_OBS_DBT_TARGET_DIR", PROJECT_ROOT / "dbt_project" / "target"),
        catalogue_start=_month("SAFETY_OBS_CATALOGUE_START", "2019-04"),
        region_icb=os.environ.get("SAFETY_OBS_REGION_ICB", "QHM"),
        max_file_bytes=int(os.environ.get("SAFETY_OBS_MAX_FILE_BYTES", str(200 * 1024 * 1024))),
        max_xlsx_inflated_bytes=int(
            os.environ.get("SAFETY_OBS_MAX_XLSX_INFLATED_BYTES", str(500 * 1024 * 1024))
        ),
        snapshots_to_keep=int(os.environ.get("SAFETY_OBS_SNAPSHOTS_TO_KEEP", "3")),
        archive_dir=_path("SAFETY_OBS_ARCHIVE_DIR", var / "archive"),
        archive_processed=_archive_processed(landing),
        return_due_days=int(os.environ.get("SAFETY_OBS_RETURN_DUE_DAYS", "20")),
        nightly_cron=os.environ.get("SAFETY_OBS_NIGHTLY_CRON", "30 2 * * *"),
        refresh_months=int(os.environ.get("SAFETY_OBS_REFRESH_MONTHS", "3")),
        timezone=os.environ.get("SAFETY_OBS_TIMEZONE", "Europe/London"),
    )


def _archive_processed(landing: Path) -> bool:
    """Move processed files out of landing, except from the committed sample folder (the
    demo reads it in place; moving would edit the checkout)."""
    value = os.environ.get("SAFETY_OBS_ARCHIVE_PROCESSED")
    if value is not None:
        return value.strip().lower() in ("1", "true", "yes")
    return not landing.resolve().is_relative_to(PROJECT_ROOT / "data_samples")
