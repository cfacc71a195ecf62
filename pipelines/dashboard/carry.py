"""Carry an unchanged organisation page from the previous snapshot instead of rendering it.

An internal site has one organisation page per measure and ICB (with its chart data file
and CSV): the bulk of the site and of its build time. Each page gets a fingerprint of
everything it is drawn from, taken *before* rendering (docs/dashboard.md, "Carried
pages"):

- the render digest (:func:`render_digest`): the bytes of the code, templates and static
  files that write a page, and the versions of the libraries that shape its text;
- the site-wide context the page sees (the ``common`` dict of ``render_site``, the
  sector names and order, the measure's wording, format and months, the ICB's name);
- a data digest computed in DuckDB over exactly the rows the page is read from
  (:func:`organisation_page_digests`): the ICB's organisation SPC rows of the measure with
  each organisation's register name, and their recorded changes.

A page whose fingerprint is the one the previous snapshot's manifest recorded for it
(``rendered_from``) is hard-linked from that snapshot with its checksum and never
rendered; anything else (no previous snapshot, no fingerprint there, another fingerprint,
a file missing or touched) is rendered as before.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb

from pipelines.dashboard.sources import series_changes_relation
from pipelines.warehouse import ROWS_DIGEST

HERE = Path(__file__).parent
#: Modules outside the dashboard package whose code shapes a page's text.
RENDER_MODULES = (HERE.parent / "months.py",)
#: Libraries whose version can change a rendered page's bytes.
RENDER_LIBRARIES = ("jinja2", "markupsafe")
#: The manifest key of the pages' fingerprints, by snapshot name of the page.
RENDERED_FROM_KEY = "rendered_from"


def files_digest(paths: Iterable[Path]) -> str:
    """SHA-256 over the names, sizes and bytes of ``paths``, in the order given."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{path.name}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


#: The dashboard package's Python files and :data:`RENDER_MODULES` as this process loaded
#: them (taken at import: a file edited while a process runs is not the code it runs).
CODE_DIGEST = files_digest([*sorted(HERE.glob("*.py")), *RENDER_MODULES])


def render_digest(
    *roots: Path, code: str = CODE_DIGEST, libraries: Iterable[str] = RENDER_LIBRARIES
) -> str:
    """SHA-256 over the ``code`` (default :data:`CODE_DIGEST`), the files under ``roots``
    (the templates and static files) as they are now (Jinja reads templates when it first
    renders them), the versions of ``libraries`` and Python's: any change to how a page is
    written changes every fingerprint, so nothing rendered by other code is carried. The
    board reports use it with their own code and folders (``pipelines/report/carry.py``)."""
    files = [p for root in roots for p in sorted(Path(root).rglob("*")) if p.is_file()]
    digest = hashlib.sha256(f"{code}\0{files_digest(files)}\0".encode())
    for library in libraries:
        digest.update(f"{library} {metadata.version(library)}\0".encode())
    digest.update(f"python {sys.version_info[:3]}".encode())
    return digest.hexdigest()


def context_digest(*parts: Any) -> str:
    """SHA-256 of the ``repr`` of ``parts``: plain values, dicts (sorted) and dataclasses."""
    return hashlib.sha256(repr([_plain(p) for p in parts]).encode()).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return sorted((repr(k), _plain(v)) for k, v in value.items())
    return value


def measure_digest(measure: Any) -> str:
    """The digest of a :class:`~pipelines.dashboard.build.SiteMeasure` as its pages see
    it: every field but the loaded charts (which the data digest covers)."""
    return context_digest(
        [(f.name, getattr(measure, f.name)) for f in fields(measure) if f.name != "series"]
    )


def organisation_page_digests(
    con: duckdb.DuckDBPyConnection,
    source: str,
    columns: str,
    names: str,
    tier: str,
    extra: dict[str, str] | None = None,
) -> dict[tuple[str, str | None], str]:
    """The data digest of every organisation page, by (measure code, ICB code; None: no
    ICB), in grouped queries: the rows of ``source`` (the site's SPC rows) at the
    organisation level with ``columns`` (the select-list the charts are read with), each
    with its organisation's name from ``names`` (a relation of code and name), grouped by
    the chart's ICB (its first month's, as the pages group them); the recorded changes of
    those charts (:func:`series_changes_relation`); and the rows of each relation of
    ``extra`` (by label; with ``measure_code``, ``level`` and ``series_key`` columns) that
    belong to those charts (the board reports add their impact and change rows)."""
    owners = f"""owners as (
        select measure_code, series_key, arg_min_null(icb_code, period) as owner
        from {source} where level = 'organisation' group by all)"""
    found: dict[tuple[str, str | None], list[Any]] = {}
    rows = con.execute(
        f"""
        with {owners},
        r as (
            select owners.owner as page_icb, {columns}, names.name as page_org_name
            from {source} as spc
            join owners on owners.measure_code = spc.measure_code
                       and owners.series_key = spc.series_key
            left join {names} as names on names.code = spc.org_code
            where spc.level = 'organisation')
        select measure_code, page_icb, {ROWS_DIGEST} from r group by all
        """
    ).fetchall()
    for code, icb, *digest in rows:
        found[(code, icb)] = ["rows", *digest]
    related = {"changes": series_changes_relation(con, tier), **(extra or {})}
    for label, relation in related.items():
        if relation is None:
            continue
        rows = con.execute(
            f"""
            with {owners},
            r as (
                select owners.owner as page_icb, c.*
                from {relation} as c
                join owners on owners.measure_code = c.measure_code
                           and owners.series_key = c.series_key
                where c.level = 'organisation')
            select measure_code, page_icb, {ROWS_DIGEST} from r group by all
            """
        ).fetchall()
        for code, icb, *digest in rows:
            if (code, icb) in found:
                found[(code, icb)] += [label, *digest]
    return {key: context_digest(value) for key, value in found.items()}


@dataclass
class PageCarry:
    """The previous snapshot's organisation pages of one site, and what this build records.

    ``previous``: its manifest's ``rendered_from`` entries, by page name relative to the
    site; ``carry(name, target)``: hard-link the previous site's file ``name`` to
    ``target`` with its checksum, returning whether it could
    (:meth:`pipelines.publish.snapshot.PreviousSnapshot.carry`). ``recorded``: this build's
    entries, filled while rendering (every organisation page, carried or rendered);
    ``carried``: the pages carried."""

    previous: dict[str, dict] = field(default_factory=dict)
    carry: Callable[[str, Path], bool] | None = None
    recorded: dict[str, dict] = field(default_factory=dict)
    carried: list[str] = field(default_factory=list)

    def take(self, page: str, files: Iterable[str], fingerprint: str, out_dir: Path) -> dict | None:
        """Link ``page`` and its other ``files`` (names relative to the site) from the
        previous snapshot into ``out_dir`` if it recorded the same ``fingerprint`` for
        ``page``; the measure page's entry for it, or None (then render it: any file
        already linked is removed first, so rendering never writes a shared file)."""
        before = self.previous.get(page)
        if (
            self.carry is None
            or not isinstance(before, dict)
            or before.get("fingerprint") != fingerprint
            or not isinstance(before.get("entry"), dict)
        ):
            return None
        linked: list[Path] = []
        for name in [page, *files]:
            target = out_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not self.carry(name, target):
                for path in linked:
                    path.unlink(missing_ok=True)
                return None
            linked.append(target)
        self.carried.append(page)
        return before["entry"]

    def record(self, page: str, fingerprint: str, entry: dict) -> None:
        self.recorded[page] = {"fingerprint": fingerprint, "entry": entry}
