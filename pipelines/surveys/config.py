"""Where survey exports land: from the one settings object. (How big an export or its XLSX
zip may be is a file rule shared with measure returns: ``pipelines.ingest.files``.)"""

from __future__ import annotations

from pathlib import Path

from pipelines.settings import load_settings


def survey_landing_dir() -> Path | None:
    """Folder of survey waves: one sub-folder per wave with its ``wave.yml`` and exports
    (None: this deployment takes no surveys)."""
    return load_settings().survey_landing_dir


# Environment variables behind the two settings (tests set them).
LANDING_ENV = "SAFETY_OBS_SURVEY_LANDING_DIR"
MAX_UNZIPPED_ENV = "SAFETY_OBS_MAX_XLSX_INFLATED_BYTES"
