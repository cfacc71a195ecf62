"""Where survey exports land and how big an XLSX may expand: from the one settings object."""

from __future__ import annotations

from pathlib import Path

from pipelines.settings import load_settings


def survey_landing_dir() -> Path | None:
    """Folder of survey waves: one sub-folder per wave with its ``wave.yml`` and exports
    (None: this deployment takes no surveys)."""
    return load_settings().survey_landing_dir


def max_unzipped_bytes() -> int:
    """An XLSX is a zip: refuse any whose entries would expand beyond this (zip bombs)."""
    return load_settings().max_xlsx_inflated_bytes


# Environment variables behind the two settings (tests set them).
LANDING_ENV = "SAFETY_OBS_SURVEY_LANDING_DIR"
MAX_UNZIPPED_ENV = "SAFETY_OBS_MAX_XLSX_INFLATED_BYTES"
