"""Survey waves: the ``wave.yml`` contract beside each wave's exports.

Layout of the survey landing folder::

    <landing>/<any folder>/wave.yml        id, name, instrument, open/close dates, where an
                                           export says organisation and staff group
    <landing>/<any folder>/<ORG>_<anything>.csv|.xlsx
                                           one export; <ORG> is the submitting organisation

An export belongs to the wave whose ``wave.yml`` is in its folder or the nearest folder
above it. The contract is data about a survey round, so it travels with the files; the
instrument it names is code (``pipelines/surveys/instruments``).
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from pipelines.surveys.instrument import Instrument

WAVE_FILE_NAMES = ("wave.yml", "wave.yaml")
_WAVE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$")
_MAX_CONTRACT_BYTES = 64 * 1024
TOOLS = ("qualtrics", "surveymonkey", "msforms")


class WaveContractError(ValueError):
    """A wave.yml that cannot be used; every export under it is rejected with this reason."""


@dataclass(frozen=True)
class FileMetadata:
    """What a wave contract says about exports whose names match ``pattern``."""

    pattern: str
    staff_group: str | None


@dataclass(frozen=True)
class Wave:
    wave_id: str
    name: str
    instrument: Instrument
    opens_on: date
    closes_on: date
    organisation_columns: tuple[str, ...]
    staff_group_columns: tuple[str, ...]
    files: tuple[FileMetadata, ...]
    timestamp_formats: dict[str, tuple[str, ...]]
    contract_path: str
    sha256: str

    def staff_group_for(self, file_name: str) -> str | None:
        """Staff group given for a whole export by the contract (first matching pattern)."""
        for meta in self.files:
            if fnmatch.fnmatch(file_name.lower(), meta.pattern.lower()):
                return meta.staff_group
        return None


def _as_date(value: object, field: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise WaveContractError(f"{field} '{value}' is not a date (YYYY-MM-DD)") from exc


def _strings(value: object, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise WaveContractError(f"{field} must be a text or a list of texts")


def parse_wave(data: bytes, contract_path: str, instruments: dict[str, Instrument]) -> Wave:
    """Validate one wave.yml completely; raise :class:`WaveContractError` saying what is wrong."""
    if len(data) > _MAX_CONTRACT_BYTES:
        raise WaveContractError(f"{len(data)} bytes; a wave contract is at most 64 KiB")
    try:
        spec = yaml.safe_load(data.decode("utf-8-sig"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WaveContractError(f"not readable YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(spec, dict):
        raise WaveContractError("not a YAML mapping")
    missing = [k for k in ("id", "name", "instrument", "opens_on", "closes_on") if k not in spec]
    if missing:
        raise WaveContractError(f"missing {', '.join(missing)}")
    wave_id = str(spec["id"])
    if not _WAVE_ID.match(wave_id):
        raise WaveContractError(f"id '{wave_id}' must be letters, digits, '.', '_' or '-'")
    instrument = instruments.get(str(spec["instrument"]))
    if instrument is None:
        raise WaveContractError(
            f"instrument '{spec['instrument']}' is not one of {sorted(instruments)}"
        )
    opens_on = _as_date(spec["opens_on"], "opens_on")
    closes_on = _as_date(spec["closes_on"], "closes_on")
    if closes_on < opens_on:
        raise WaveContractError(f"closes_on {closes_on} is before opens_on {opens_on}")
    files = []
    for entry in spec.get("files") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("match"), str):
            raise WaveContractError("each entry of files needs a 'match' file-name pattern")
        group = entry.get("staff_group")
        files.append(FileMetadata(entry["match"], None if group is None else str(group)))
    formats = spec.get("timestamp_formats") or {}
    if not isinstance(formats, dict) or set(formats) - set(TOOLS):
        raise WaveContractError(f"timestamp_formats must be keyed by {', '.join(TOOLS)}")
    return Wave(
        wave_id=wave_id,
        name=str(spec["name"]),
        instrument=instrument,
        opens_on=opens_on,
        closes_on=closes_on,
        organisation_columns=_strings(spec.get("organisation_column"), "organisation_column"),
        staff_group_columns=_strings(spec.get("staff_group_column"), "staff_group_column"),
        files=tuple(files),
        timestamp_formats={
            tool: _strings(f, f"timestamp_formats.{tool}") for tool, f in formats.items()
        },
        contract_path=contract_path,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def discover_waves(
    landing_dir: Path, instruments: dict[str, Instrument]
) -> dict[Path, Wave | WaveContractError]:
    """Every wave contract under ``landing_dir`` by its folder; broken ones as their error.

    A wave id defined twice is an error for every folder after the first (by path), so two
    contracts can never silently disagree about one wave's window.
    """
    found: dict[Path, Wave | WaveContractError] = {}
    first_folder: dict[str, Path] = {}
    for path in sorted(p for p in landing_dir.rglob("*") if p.name in WAVE_FILE_NAMES):
        if not path.is_file() or path.parent in found:
            continue
        relative = path.relative_to(landing_dir).as_posix()
        try:
            wave = parse_wave(path.read_bytes(), relative, instruments)
        except WaveContractError as error:
            found[path.parent] = WaveContractError(f"{relative}: {error}")
            continue
        earlier = first_folder.setdefault(wave.wave_id, path.parent)
        if earlier != path.parent:
            found[path.parent] = WaveContractError(
                f"{relative}: wave id '{wave.wave_id}' is already defined in "
                f"{earlier.relative_to(landing_dir).as_posix()}"
            )
        else:
            found[path.parent] = wave
    return found


def wave_for(
    path: Path, landing_dir: Path, waves: dict[Path, Wave | WaveContractError]
) -> Wave | WaveContractError | None:
    """The contract governing an export: its folder's, else the nearest folder above."""
    folder = path.parent
    while True:
        if folder in waves:
            return waves[folder]
        if folder == landing_dir or landing_dir not in folder.parents:
            return None
        folder = folder.parent
