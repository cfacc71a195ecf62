"""A survey instrument: its questions, the domains they measure and the answer scale.

Instruments are YAML files in ``instruments/``; a wave names the one it used. Loading
validates the file completely (unique ids, texts and labels, known domains), because a
mistake here would silently mis-score every answer of every wave that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from pipelines.ingest.contracts import header_key
from pipelines.surveys.normalise import label_key, text_key

INSTRUMENTS_DIR = Path(__file__).parent / "instruments"


class InstrumentError(ValueError):
    """An instrument file that cannot be used as written."""


@dataclass(frozen=True)
class Question:
    question_id: str
    domain: str
    text: str
    reverse: bool
    export_ids: tuple[str, ...]

    @property
    def text_key(self) -> str:
        return text_key(self.text)

    @property
    def export_keys(self) -> frozenset[str]:
        return frozenset(header_key(i) for i in self.export_ids)


@dataclass(frozen=True)
class Instrument:
    instrument_id: str
    name: str
    domains: dict[str, str]
    questions: tuple[Question, ...]
    scores: dict[str, int]  # label_key -> score 1..5, before reverse scoring
    missing: frozenset[str]  # label_keys that mean "no opinion"
    scale_min: int
    scale_max: int
    positive_from: int


def _parse(spec: dict, source: str) -> Instrument:
    try:
        scale = spec["scale"]
        points = {int(score): list(labels) for score, labels in scale["points"].items()}
        domains = {str(k): str(v) for k, v in spec["domains"].items()}
        questions = tuple(
            Question(
                question_id=str(q["id"]),
                domain=str(q["domain"]),
                text=str(q["text"]),
                reverse=bool(q.get("reverse", False)),
                export_ids=tuple(str(i) for i in q.get("export_ids", [])),
            )
            for q in spec["questions"]
        )
        instrument_id = str(spec["id"])
        name = str(spec.get("name", instrument_id))
        positive_from = int(scale["positive_from"])
        missing_labels = [str(m) for m in scale.get("missing", [])]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InstrumentError(f"{source}: malformed instrument ({exc!r})") from exc

    problems: list[str] = []
    if sorted(points) != list(range(min(points), max(points) + 1)):
        problems.append(f"scale points must be consecutive, got {sorted(points)}")
    scores: dict[str, int] = {}
    for score, labels in points.items():
        for label in labels:
            key = label_key(str(label))
            if key in scores:
                problems.append(f"label '{label}' is given twice")
            scores[key] = score
    missing = frozenset(label_key(m) for m in missing_labels)
    if missing & set(scores):
        problems.append(f"labels both scored and missing: {sorted(missing & set(scores))}")
    if not min(points) < positive_from <= max(points):
        problems.append(f"positive_from {positive_from} is outside the scale")
    owners: dict[tuple[str, str], str] = {}
    for question in questions:
        if question.domain not in domains:
            problems.append(f"{question.question_id}: unknown domain '{question.domain}'")
        for kind, key in [
            ("id", question.question_id),
            ("text", question.text_key),
            *[("export id", k) for k in question.export_keys],
        ]:
            if (kind, key) in owners:
                problems.append(
                    f"{question.question_id}: {kind} '{key}' is also {owners[kind, key]}'s"
                )
            owners[kind, key] = question.question_id
    if not questions:
        problems.append("no questions")
    if problems:
        raise InstrumentError(f"{source}: " + "; ".join(problems))
    return Instrument(
        instrument_id=instrument_id,
        name=name,
        domains=domains,
        questions=questions,
        scores=scores,
        missing=missing,
        scale_min=min(points),
        scale_max=max(points),
        positive_from=positive_from,
    )


def load_instrument_file(path: Path) -> Instrument:
    try:
        spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InstrumentError(f"{path.name}: unreadable ({exc})") from exc
    if not isinstance(spec, dict):
        raise InstrumentError(f"{path.name}: not a YAML mapping")
    return _parse(spec, path.name)


@cache
def load_instruments(directory: Path = INSTRUMENTS_DIR) -> dict[str, Instrument]:
    """Every instrument in ``directory`` by id; a broken file stops the run (it is code)."""
    instruments: dict[str, Instrument] = {}
    for path in sorted(directory.glob("*.yml")):
        instrument = load_instrument_file(path)
        if instrument.instrument_id in instruments:
            raise InstrumentError(f"{path.name}: instrument id {instrument.instrument_id} twice")
        instruments[instrument.instrument_id] = instrument
    return instruments
