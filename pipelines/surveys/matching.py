"""Match an export's columns to what we want from it, by name, never by position.

A wanted field (an instrument question, or the organisation / staff-group column of a wave
contract) is found, best first, by:

1. an export id: a Qualtrics ImportId (``QID4_1``) or short name the instrument lists;
2. its text, normalised (case, spacing and punctuation ignored);
3. its text at the end of a longer header, on a word boundary: a matrix header
   ``"Thinking about your team... - Staff in my team support one another."`` carries the
   statement after the stem.

A better match claims its column first. A field whose best matches point at two columns
is ambiguous and the file is refused rather than guessed. Free-text columns are never
candidates, and every column nobody claims is dropped unread.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.ingest.contracts import header_key
from pipelines.surveys.instrument import Question
from pipelines.surveys.layouts import ExportColumn, ExportLayout
from pipelines.surveys.normalise import text_key

_BY_ID, _BY_TEXT, _BY_SUFFIX = 0, 1, 2


@dataclass(frozen=True)
class Wanted:
    name: str
    text_keys: tuple[str, ...]
    export_keys: frozenset[str]


@dataclass(frozen=True)
class MatchResult:
    found: dict[str, str]  # wanted name -> grid column name
    missing: list[str]
    ambiguous: list[str]  # wanted names whose best matches are two or more columns


def wanted_question(question: Question) -> Wanted:
    return Wanted(question.question_id, (question.text_key,), question.export_keys)


def wanted_context(name: str, labels: Iterable[str]) -> Wanted:
    """A context column named in a wave contract: each label is a header text or an id."""
    labels = list(labels)
    return Wanted(
        name,
        tuple(text_key(label) for label in labels if text_key(label)),
        frozenset(header_key(label) for label in labels if header_key(label)),
    )


def _candidates(wanted: Wanted, column: ExportColumn) -> tuple[int, int] | None:
    """(rank, -length of the matched text) for the best way ``column`` carries ``wanted``."""
    if wanted.export_keys & column.keys:
        return (_BY_ID, 0)
    best: tuple[int, int] | None = None
    for key in wanted.text_keys:
        for text in column.texts:
            if text == key:
                rank = (_BY_TEXT, -len(key))
            elif text.endswith(" " + key):
                rank = (_BY_SUFFIX, -len(key))
            else:
                continue
            best = rank if best is None else min(best, rank)
    return best


def match_columns(
    layout: ExportLayout, wanted: list[Wanted], exclude: Iterable[str] = ()
) -> MatchResult:
    """Assign each wanted field at most one column and each column at most one field."""
    excluded = set(exclude)
    eligible = [c for c in layout.columns if not c.free_text and c.name not in excluded]
    options: list[tuple[tuple[int, int], int, str, str]] = []
    ambiguous: list[str] = []
    for order, want in enumerate(wanted):
        ranked = [(r, c.name) for c in eligible if (r := _candidates(want, c)) is not None]
        if not ranked:
            continue
        best = min(r for r, _ in ranked)
        best_columns = [name for r, name in ranked if r == best]
        if len(best_columns) > 1:
            ambiguous.append(want.name)
            continue
        options.extend((r, order, want.name, name) for r, name in ranked)
    found: dict[str, str] = {}
    claimed: set[str] = set()
    for _, _, name, column in sorted(options):
        if name not in found and column not in claimed:
            found[name] = column
            claimed.add(column)
    missing = [w.name for w in wanted if w.name not in found and w.name not in ambiguous]
    return MatchResult(found, missing, ambiguous)
