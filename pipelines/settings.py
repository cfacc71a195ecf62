"""One typed configuration per deployment: the file ``config/observatory.toml`` (or the file
``SAFETY_OBS_CONFIG`` names), each key overridable by ``SAFETY_OBS_<KEY>``.

One object so that Python, dbt (:meth:`Settings.dbt_vars`) and the disclosure scan read
the same values, and so that tests, the demo, the benchmark and a production deployment
differ only by configuration, never by code. Every setting is documented in
``docs/configuration.md``; a test keeps that page and this model in step.

Loading checks types; :meth:`Settings.problems` checks the world (folders exist, the
region's ICB codes are real, the catalogue does not start in the future). Entry points
call :func:`validated_settings` before anything runs, so a wrong path stops the run with
one line naming the setting instead of publishing an empty warehouse.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pipelines.months import parse_month

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config" / "observatory.toml"
ENV_PREFIX = "SAFETY_OBS_"
CONFIG_ENV = "SAFETY_OBS_CONFIG"
# The 42 Integrated Care Boards of England (ODS codes, July 2022 onwards, as in the
# national trust file etr.csv of 2022). A region names some of them; a code outside
# this list is a typo, refused at start.
ENGLAND_ICBS = frozenset(
    [
        "QE1",
        "QF7",
        "QGH",
        "QH8",
        "QHG",
        "QHL",
        "QHM",
        "QJ2",
        "QJG",
        "QJK",
        "QJM",
        "QK1",
        "QKK",
        "QKS",
        "QM7",
        "QMF",
        "QMJ",
        "QMM",
        "QNC",
        "QNQ",
        "QNX",
        "QOC",
        "QOP",
        "QOQ",
        "QOX",
        "QPM",
        "QR1",
        "QRL",
        "QRV",
        "QSL",
        "QT1",
        "QT6",
        "QU9",
        "QUA",
        "QUE",
        "QUY",
        "QVV",
        "QWE",
        "QWO",
        "QWU",
        "QXU",
        "QYG",
    ]
)
ALL_ENGLAND = "ENGLAND"
#: What dbt reads when no change register is configured (header only).
#: The smallest public count that is suppressed: zero is a true zero, never small. A rule of the
#: method, not of a deployment, so not a setting; it reaches dbt as the ``public_min_count``
#: var (:meth:`Settings.dbt_vars`) and the scan through ``DisclosureRules.min_count``.
PUBLIC_MIN_COUNT = 1
EMPTY_CHANGE_REGISTER = PROJECT_ROOT / "pipelines" / "impact" / "empty_change_register.csv"


def _codes(value: Any) -> tuple[str, ...]:
    """``"QHM"``, ``"QHM,QE1"`` or a list: upper-case ICB codes, or ``("ENGLAND",)``."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(item).strip().upper() for item in items if str(item).strip())


Month = Annotated[date, BeforeValidator(parse_month)]
Codes = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_codes)]


class Settings(BaseSettings):
    """Resolved configuration. Build with :func:`load_settings`; tests point the writable
    folders elsewhere with :meth:`with_root` or ``SAFETY_OBS_*`` variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    # -- the deployment -----------------------------------------------------------------
    profile: str = Field("north-east-sample", description="Name of this deployment.")
    region_name: str = Field(
        "North East and North Cumbria", description="Shown on dashboards and reports."
    )
    region_icbs: Codes = Field(
        ("QHM",),
        description="ICB codes the region covers (comma-separated), or ENGLAND for all. "
        "Only organisations in these ICBs are loaded from the ODS files.",
    )
    # -- inputs ---------------------------------------------------------------------------
    landing_dir: Path = Field(
        Path("data_samples/landing"), description="Where measure returns land."
    )
    survey_landing_dir: Path | None = Field(
        Path("data_samples/surveys/landing"),
        description="Where survey waves land (one folder per wave); empty for none.",
    )
    incident_landing_dir: Path | None = Field(
        Path("data_samples/incidents/landing"),
        description="Where incident extracts land (LFPSE-style or local risk-management "
        "exports, CSV or XLSX; docs/incidents.md); empty for none.",
    )
    kh03_landing_dir: Path | None = Field(
        Path("data_samples/incidents/kh03"),
        description="Where NHS England's quarterly KH03 bed occupancy files (XLSX) land: the "
        "occupied bed days of the incident rates whose catalogue row names kh03 as "
        "denominator_source (docs/incidents.md); empty for none.",
    )
    ods_dir: Path = Field(
        Path("data_samples/ods"), description="Folder of ODS files (etr.csv, epraccur.csv)."
    )
    local_register: Path | None = Field(
        Path("data_samples/local_register.csv"),
        description="Local register CSV (care homes, independent providers, overrides); "
        "empty for none.",
    )
    change_register: Path | None = Field(
        Path("config/change_register.csv"),
        description="The change register CSV: recorded changes, their scope and whether "
        "they rebase SPC limits (docs/programme-impact.md); empty for none.",
    )
    # -- outputs --------------------------------------------------------------------------
    # working_db, published_dir, archive_dir, dagster_home are typed Path because _resolve
    # always fills them in (under var_dir); their None default is therefore not validated.
    var_dir: Path = Field(
        Path("var"), description="Everything the pipeline writes, unless set below."
    )
    working_db: Path = Field(  # type: ignore[assignment]  # set by _resolve
        None,
        validate_default=False,
        description="Working DuckDB file (default <var_dir>/warehouse/working.duckdb).",
    )
    published_dir: Path = Field(  # type: ignore[assignment]  # set by _resolve
        None,
        validate_default=False,
        description="Published snapshots (default <var_dir>/published).",
    )
    archive_dir: Path = Field(  # type: ignore[assignment]  # set by _resolve
        None,
        validate_default=False,
        description="Processed files are moved here (default <var_dir>/archive).",
    )
    dagster_home: Path = Field(  # type: ignore[assignment]  # set by _resolve
        None,
        validate_default=False,
        description="Dagster run history and sensor state (default <var_dir>/dagster_home).",
    )
    archive_processed: bool | None = Field(
        None,
        description="Move processed files out of landing. Default: yes, except from the "
        "committed data_samples folder, which the demo reads in place.",
    )
    dbt_target_dir: Path = Field(
        Path("dbt_project/target"), description="dbt's target folder (manifest)."
    )
    snapshots_to_keep: int = Field(3, ge=1, description="Published snapshots kept on disk.")
    internal_csv: bool = Field(
        False,
        description="Also export the internal tier's tables as CSV (csv/ beside parquet/). "
        "The public tier always has CSV; Parquet is always written.",
    )
    board_report_pdf: bool = Field(
        True,
        description="Render each board report as PDF (WeasyPrint) beside its HTML. Off: "
        "HTML only, printable from a browser.",
    )
    report_workers: int = Field(
        2,
        ge=1,
        le=64,
        description="Processes rendering board-report PDFs at once in a publication "
        "(only reports whose inputs changed are rendered).",
    )
    # -- the catalogue and completeness ----------------------------------------------------
    catalogue_start: Month = Field(
        date(2019, 4, 1), description="First reporting month (YYYY-MM); earlier rows are refused."
    )
    return_due_days: int = Field(
        20, ge=0, le=365, description="A return is due this many days after its month ends."
    )
    # -- disclosure control (public tier) --------------------------------------------------
    public_max_suppressed_count: int = Field(
        7, ge=0, description="Counts from 1 up to this are suppressed in the public tier."
    )
    public_rounding_base: int = Field(
        5, ge=1, description="Other public counts are rounded to a multiple of this."
    )
    public_min_contributors: int = Field(
        3, ge=1, description="A public cell built from fewer organisations is suppressed."
    )
    survey_public_min_respondents: int = Field(
        10, ge=1, description="Public survey groups with fewer respondents are suppressed."
    )
    survey_internal_min_respondents: int = Field(
        3, ge=1, description="Internal survey groups with fewer respondents are nulled."
    )
    # -- programme impact (docs/programme-impact.md section 4) -----------------------------
    attribution_window_months: int = Field(
        6,
        ge=0,
        le=60,
        description="A sustained shift is attributed to the latest recorded change that "
        "applies to its series and took effect at most this many months before the shift's "
        "first month (and not after it); a shift with none is listed as unexplained.",
    )
    # -- incident records (docs/incidents.md) ------------------------------------------------
    incident_reconciliation_tolerance: float = Field(
        0.1,
        ge=0,
        le=10,
        description="mart_incident_reconciliation flags a provider's reported incident "
        "count that differs from the count derived from its records by more than this "
        "share of the reported count (and by more than 2).",
    )
    # -- publication ------------------------------------------------------------------------
    max_shrink_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Refuse a publication whose facts fall by more than this share against "
        "the current one (or lose an organisation) unless the run allows it.",
    )
    max_register_change_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Refuse a new organisation register that drops, or moves to another "
        "ICB, more than this share of the region's organisations in place, unless the run "
        "confirms it (--confirm-register).",
    )
    # -- resources ------------------------------------------------------------------------
    duckdb_memory_limit: str = Field(
        "4GB",
        pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory DuckDB may use in the pipeline and in dbt before it spills to "
        "disk (DuckDB's own default is 80% of the machine's memory).",
    )
    # -- ingest limits --------------------------------------------------------------------
    max_file_bytes: int = Field(200 * 1024 * 1024, ge=1, description="Larger files are refused.")
    max_xlsx_inflated_bytes: int = Field(
        500 * 1024 * 1024, ge=1, description="An XLSX that unzips beyond this is refused."
    )
    settle_seconds: float = Field(
        30,
        ge=0,
        description="A landed file is taken only once it has not been written for this many "
        "seconds (a file still being written is left for a later run).",
    )
    # -- schedule -------------------------------------------------------------------------
    nightly_cron: str = Field("30 2 * * *", description="When the nightly refresh runs.")
    timezone: str = Field("Europe/London", description="Time zone of the schedule.")
    refresh_months: int = Field(
        3, ge=0, description="The nightly run rebuilds the current month and this many before."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: arguments, then ``SAFETY_OBS_*`` variables, then the config file."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, config_file()))

    @field_validator(
        "survey_landing_dir",
        "incident_landing_dir",
        "kh03_landing_dir",
        "local_register",
        "change_register",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _resolve(self) -> Settings:
        """Relative paths are relative to the project root; unset outputs go under var_dir."""

        def absolute(path: Path) -> Path:
            path = path.expanduser()
            return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()

        def optional(path: Path | None) -> Path | None:
            # The four output folders are typed Path (what callers see once resolved) but
            # are None here when unset: their defaults are not validated.
            return None if path is None else absolute(path)

        var = absolute(self.var_dir)
        landing = absolute(self.landing_dir)
        resolved = {
            "var_dir": var,
            "landing_dir": landing,
            "survey_landing_dir": optional(self.survey_landing_dir),
            "incident_landing_dir": optional(self.incident_landing_dir),
            "kh03_landing_dir": optional(self.kh03_landing_dir),
            "ods_dir": absolute(self.ods_dir),
            "local_register": optional(self.local_register),
            "change_register": optional(self.change_register),
            "dbt_target_dir": absolute(self.dbt_target_dir),
            "working_db": optional(self.working_db) or var / "warehouse" / "working.duckdb",
            "published_dir": optional(self.published_dir) or var / "published",
            "archive_dir": optional(self.archive_dir) or var / "archive",
            "dagster_home": optional(self.dagster_home) or var / "dagster_home",
            "archive_processed": (
                self.archive_processed
                if self.archive_processed is not None
                else not landing.is_relative_to(PROJECT_ROOT / "data_samples")
            ),
        }
        for name, value in resolved.items():
            object.__setattr__(self, name, value)
        return self

    # -- derived ------------------------------------------------------------------------------
    @property
    def dbt_project_dir(self) -> Path:
        return PROJECT_ROOT / "dbt_project"

    @property
    def published_current(self) -> Path:
        """Stable path analysts open: a symlink swapped atomically at each publication."""
        return self.published_dir / "current"

    @property
    def log_dir(self) -> Path:
        """Full (DEBUG) run logs, one file per run."""
        return self.var_dir / "logs"

    @property
    def all_england(self) -> bool:
        return self.region_icbs == (ALL_ENGLAND,)

    def in_region(self, icb_code: str | None) -> bool:
        """Whether an organisation filed under ``icb_code`` belongs to this region."""
        return self.all_england or (icb_code or "").upper() in self.region_icbs

    def dbt_vars(self) -> dict[str, Any]:
        """The settings dbt reads (``var(...)``): passed on every dbt invocation, so the
        models, their tests and the Python checks can never disagree."""
        return {
            "catalogue_start": self.catalogue_start.isoformat(),
            "return_due_days": self.return_due_days,
            "public_min_count": PUBLIC_MIN_COUNT,
            "public_max_suppressed_count": self.public_max_suppressed_count,
            "public_rounding_base": self.public_rounding_base,
            "public_min_contributors": self.public_min_contributors,
            "survey_public_min_respondents": self.survey_public_min_respondents,
            "survey_internal_min_respondents": self.survey_internal_min_respondents,
            "region_icbs": list(self.region_icbs),
            # No register: a header-only file, so the staging model reads the same columns
            # either way and dim_change is simply empty.
            "change_register": str(self.change_register or EMPTY_CHANGE_REGISTER),
            "attribution_window_months": self.attribution_window_months,
            "incident_reconciliation_tolerance": self.incident_reconciliation_tolerance,
        }

    def dbt_env(self) -> dict[str, str]:
        """The environment dbt needs beside its vars: profiles.yml reads the working file's
        path and DuckDB's memory limit from it. ``make prepare`` parses with the same
        values, so runs keep dbt's parse (it re-parses everything when the profile
        changes)."""
        return {
            "SAFETY_OBS_WORKING_DB": str(self.working_db),
            "SAFETY_OBS_DUCKDB_MEMORY_LIMIT": self.duckdb_memory_limit,
        }

    def with_root(self, root: Path) -> Settings:
        """The same settings with every writable location moved under ``root``."""
        var = root / "var"
        return self.model_copy(
            update={
                "var_dir": var,
                "working_db": var / "warehouse" / "working.duckdb",
                "published_dir": var / "published",
                "archive_dir": var / "archive",
                "dagster_home": var / "dagster_home",
            }
        )

    def problems(self, today: date | None = None) -> list[str]:
        """What stops a run, one line per setting (empty: good to go)."""
        today = today or date.today()
        found = []

        def where(name: str) -> str:
            env = ENV_PREFIX + name.upper()
            return f"{env}" if env in os.environ else f"{name} in {config_file()}"

        folders = {"landing_dir": self.landing_dir, "ods_dir": self.ods_dir}
        if self.survey_landing_dir is not None:
            folders["survey_landing_dir"] = self.survey_landing_dir
        for name, path in folders.items():
            if not path.is_dir():
                found.append(f"{name}: folder {path} does not exist (set by {where(name)})")
        if self.local_register is not None and not self.local_register.is_file():
            found.append(
                f"local_register: file {self.local_register} does not exist "
                f"(set by {where('local_register')}; leave it empty for none)"
            )
        if self.change_register is not None and not self.change_register.is_file():
            found.append(
                f"change_register: file {self.change_register} does not exist "
                f"(set by {where('change_register')}; leave it empty for none)"
            )
        if ALL_ENGLAND in self.region_icbs and len(self.region_icbs) > 1:
            found.append(
                f"region_icbs: ENGLAND cannot be combined with ICB codes "
                f"(set by {where('region_icbs')})"
            )
        elif not self.all_england:
            unknown = [code for code in self.region_icbs if code not in ENGLAND_ICBS]
            if unknown or not self.region_icbs:
                found.append(
                    f"region_icbs: unknown ICB code {', '.join(unknown) or '(none given)'} "
                    f"(set by {where('region_icbs')}; use ICB codes such as QHM, or ENGLAND)"
                )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            found.append(
                f"timezone: unknown time zone {self.timezone!r} (set by {where('timezone')})"
            )
        if self.catalogue_start > today.replace(day=1):
            found.append(
                f"catalogue_start: {self.catalogue_start:%Y-%m} is after this month "
                f"(set by {where('catalogue_start')})"
            )
        return found


class ConfigurationError(Exception):
    """The configuration cannot run: every problem, one line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def config_file() -> Path:
    """The deployment's configuration file: ``SAFETY_OBS_CONFIG`` or the default."""
    value = os.environ.get(CONFIG_ENV)
    if not value:
        return DEFAULT_CONFIG
    path = Path(value).expanduser()
    return (path if path.is_absolute() else PROJECT_ROOT / path).resolve()


def load_settings() -> Settings:
    """The configuration file with ``SAFETY_OBS_*`` overrides, type-checked."""
    path = config_file()
    if not path.is_file():
        raise ConfigurationError([f"{CONFIG_ENV}: configuration file {path} does not exist"])
    try:
        return Settings()
    except ValueError as error:  # pydantic's ValidationError: say which setting, briefly
        errors: list[dict[str, Any]] = getattr(error, "errors", lambda: [])()
        lines = [
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']} "
            f"(got {e.get('input')!r}; from {path} or {ENV_PREFIX}*)"
            for e in errors
        ]
        raise ConfigurationError(lines or [str(error)]) from None


def validated_settings(today: date | None = None) -> Settings:
    """:func:`load_settings`, refused whole if anything would stop a run: the settings'
    problems, then the change register's (one line per bad row and rule,
    docs/programme-impact.md section 1), so a bad register stops a run before anything is
    written, exactly as a wrong setting does."""
    settings = load_settings()
    problems = settings.problems(today)
    if not problems:
        # Imported here: the catalogue and the register read these settings.
        from pipelines.catalogue import CatalogueError, load_catalogue

        try:
            load_catalogue()
        except CatalogueError as error:
            problems = error.problems
    if not problems and settings.change_register is not None:
        from pipelines.impact.register import register_problems

        problems = register_problems(settings.change_register, settings)
    if problems:
        raise ConfigurationError(problems)
    return settings
