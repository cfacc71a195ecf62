"""Each register file recognised and judged before it can replace the register in place.

The register is the yardstick for every return: which organisations exist, when they
opened and closed, which ICB (so which region) they are in. A wrong register file does not
fail loudly, it quietly changes the figures: a 2020 trust file undoes later mergers, a
practice file from before ICBs files every practice outside the region (and every GP row
is quarantined), a practice *list* named ``epraccur_*.csv`` becomes thousands of junk
organisations. So each file is recognised (layout: 24 or 27 fields; vintage: the latest
date it records; era: ICB codes in field 4, or a CCG-era practice file whose ICB comes
from its CCG code) and refused whole, naming the file and the rule, when it is not what
its name claims. :func:`pipelines.ingest.organisations.load_register` then judges the
register as a whole (region, vintage, how much it changes) before replacing anything.

File rules (``RegisterVerdict.rule``), in the order they are tried:

``empty_file``, ``binary_content``
    nothing to read, or not text.
``wrong_field_count``
    ODS trust files have 24 or 27 fields a line, practice files 27 (a 24-field practice
    file would have no prescribing setting, field 26, so practices could not be told from
    other prescribing cost centres). A practice list or any other CSV lands here, with its
    header named.
``ragged_rows``
    lines whose field count differs from the file's: a truncated download or an edit.
``header_row``
    ODS files have no header; one means the file was re-exported by another tool.
``wrong_record_type``
    trust codes in a practice file or practice codes in a trust file.
``invalid_codes``
    codes that are not ODS codes of the file's kind (3-character trust codes, or
    5-character ones issued since April 2020; 6-character practice codes).
``invalid_dates``
    open dates (mandatory) or close dates not ``YYYYMMDD``.
``duplicate_codes``
    a code twice: two extracts joined together.
``pre_icb_trust_file``
    most open English trusts carry an NHS England area code (``Q45``, ``Q74``: before
    April 2020) in field 4, not an ICB (or STP) code: the trusts cannot be placed.
``unplaceable_practices``
    a CCG-era practice file whose CCG codes (field 15) the sub-ICB mapping does not know
    for most active practices.

Rules of the register as a whole (:func:`pipelines.ingest.organisations.load_register`):
``ods_missing`` (no ``etr*.csv`` or ``epraccur*.csv``), ``nothing_in_region`` (a file with
none of the region's organisations), ``older_than_register`` and
``register_change_too_large`` (against the register in place; ``--confirm-register``
accepts them), and ``register_not_replaced`` for a file that passed but goes down with
the others, since the register is replaced whole or not at all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.ingest.sub_icb_mapping import sub_icb_to_icb
from pipelines.settings import ENGLAND_ICBS

TRUST, PRACTICE, LOCAL = "trust", "gp_practice", "local_register"
# The national files, by the name ODS publishes them under (any suffix: etr_2024-06.csv).
FILE_STEMS = {"etr": TRUST, "epraccur": PRACTICE}
_STEM = {record_type: stem for stem, record_type in FILE_STEMS.items()}
_KIND = {TRUST: "NHS trust", PRACTICE: "GP practice"}
ALLOWED_WIDTHS = {TRUST: (24, 27), PRACTICE: (27,)}

# 1-based positions from the ODS field specifications (etr.pdf, epraccur.pdf).
ODS_FIELDS = {
    "org_code": 1,
    "org_name": 2,
    "national_grouping": 3,
    "icb_code": 4,
    "postcode": 10,
    "open_date": 11,
    "close_date": 12,
}
PRACTICE_FIELDS = {"status_code": 13, "sub_icb_code": 15, "prescribing_setting": 26}
_JOIN_LEFT = (16, 17)  # practices: joined / left their commissioner (dates)

CODE_PATTERNS = {
    # R0A, RTD (issued before April 2020); A1B2C (the 5-character form issued since).
    TRUST: re.compile(r"[A-Z][A-Z0-9]{2}|[A-Z][0-9][A-Z][0-9][A-Z]"),
    # A81001, Y00001, ALD001 (six characters; seven allowed for synthetic national data).
    PRACTICE: re.compile(r"[A-Z][A-Z0-9]{5,6}"),
}
_YYYYMMDD = re.compile(r"\d{8}")
# NHS England's own geography in field 4 before April 2020: strategic health authorities,
# area teams (Q44-Q59), local offices (Q70-Q79). Q99 is "not England" in every era.
_PRE_ICB_AREA = re.compile(r"Q\d\d")
NOT_ENGLAND = "Q99"
MAJORITY = 0.5


@dataclass
class RegisterVerdict:
    """One register file's verdict, as ``raw.register_log`` records it."""

    file_name: str
    source_path: str
    record_type: str
    sha256: str = ""
    size_bytes: int = 0
    layout: str | None = None
    vintage: date | None = None
    rows_read: int = 0
    rows_in_region: int = 0
    status: str = "loaded"  # loaded | refused
    rule: str | None = None
    detail: str | None = None
    notes: list[str] = field(default_factory=list)
    confirmed: bool = False

    @property
    def refused(self) -> bool:
        return self.status == "refused"

    @property
    def reason(self) -> str | None:
        return f"{self.rule}: {self.detail}" if self.rule else None

    def refuse(self, rule: str, detail: str) -> None:
        """Refuse the file; the first rule it breaks is the one recorded."""
        if not self.refused:
            self.status, self.rule, self.detail = "refused", rule, detail


def _examples(items: list[str], limit: int = 3) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _parse_date(text: str) -> date | None:
    """``YYYYMMDD`` -> date; blank -> None; anything else raises ValueError."""
    text = text.strip()
    if not text:
        return None
    if not _YYYYMMDD.fullmatch(text):
        raise ValueError(text)
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def _looks_like_header(row: list[str]) -> bool:
    """A first line of column names: its first cell is no ODS code and nothing in it is a
    date, where every ODS record has a mandatory open date."""
    first = row[0].strip().upper()
    coded = any(p.fullmatch(first) for p in CODE_PATTERNS.values())
    dated = any(_YYYYMMDD.fullmatch(cell.strip()) for cell in row)
    return not coded and not dated


def _file_verdict(path: Path, source_path: str, record_type: str, data: bytes) -> RegisterVerdict:
    return RegisterVerdict(
        file_name=path.name,
        source_path=source_path,
        record_type=record_type,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
    )


def judge_ods_file(
    path: Path, record_type: str, *, today: date, source_path: str | None = None
) -> tuple[pl.DataFrame | None, RegisterVerdict]:
    """Read one ODS extract (``etr*.csv`` trusts or ``epraccur*.csv`` practices) and judge
    it alone. Returns its rows (None when refused) and its verdict.

    The rules run in order, each a step below, and the first one broken refuses the file:
    readable text, one width ODS publishes with no header, codes of the right kind, dates
    ODS writes, no code twice; then the file is placed in ICBs."""
    data = path.read_bytes()
    verdict = _file_verdict(path, source_path or str(path), record_type, data)
    read = _read_rows(data, verdict)
    if read is None:
        return None, verdict
    rows, lines = read
    width = _judge_width(rows, lines, record_type, verdict)
    if width is None:
        return None, verdict
    codes = _judge_codes(rows, lines, record_type, verdict)
    if codes is None:
        return None, verdict
    dates = _judge_dates(rows, lines, verdict)
    if dates is None:
        return None, verdict
    open_dates, close_dates = dates
    if not _judge_unique_codes(codes, lines, verdict):
        return None, verdict

    verdict.vintage = _vintage(rows, open_dates, close_dates, record_type, today)
    frame = _frame(rows, record_type, width)
    frame, era = _place_in_icbs(frame, open_dates, close_dates, record_type, today, verdict)
    if verdict.refused:
        return None, verdict
    verdict.layout = f"register_{_STEM[record_type]}_{width}" + ("_ccg" if era == "ccg" else "")
    return frame.with_columns(
        pl.Series("open_date", open_dates, dtype=pl.Date),
        pl.Series("close_date", close_dates, dtype=pl.Date),
        pl.lit(record_type).alias("record_type"),
        pl.lit(path.name).alias("source_file"),
        pl.Series("source_line", lines, dtype=pl.Int64),
        pl.lit(verdict.sha256).alias("sha256"),
    ), verdict


def _read_rows(data: bytes, verdict: RegisterVerdict) -> tuple[list[list[str]], list[int]] | None:
    """The file's non-blank CSV rows and their line numbers (for messages naming the line),
    or None with the file refused: an empty or binary file is named as such rather than
    reported as a CSV with the wrong width."""
    if not data.strip():
        verdict.refuse("empty_file", "the file is empty")
        return None
    if b"\x00" in data[:65536]:
        verdict.refuse("binary_content", "the file holds binary data, not CSV text")
        return None
    rows: list[list[str]] = []
    lines: list[int] = []
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append(row)
                lines.append(reader.line_num)
    except csv.Error as error:
        verdict.refuse("binary_content", f"not readable as CSV ({error})")
        return None
    verdict.rows_read = len(rows)
    if not rows:
        verdict.refuse("empty_file", "the file holds only blank lines")
        return None
    return rows, lines


def _judge_width(
    rows: list[list[str]], lines: list[int], record_type: str, verdict: RegisterVerdict
) -> int | None:
    """The file's width (fields a line), or None with the file refused. ODS publishes each
    kind of file in known widths, every line alike and without a header: anything else is
    another file under an ODS name, a truncated download or a re-export, and the field
    positions the register reads would be wrong."""
    stem = _STEM[record_type]
    widths = Counter(len(row) for row in rows)
    width = widths.most_common(1)[0][0]
    allowed = ALLOWED_WIDTHS[record_type]
    header = _looks_like_header(rows[0])
    if width not in allowed:
        expected = " or ".join(str(w) for w in allowed)
        detail = f"{width} fields a line, where an ODS {_KIND[record_type]} file has {expected}"
        if record_type == PRACTICE and width == 24:
            detail += (
                " (a 24-field practice file has no prescribing setting, field 26, so GP "
                "practices could not be told from other prescribing cost centres)"
            )
        if header:
            detail += (
                f"; its first line is a header ({_examples([c.strip() for c in rows[0]], 6)}):"
                f" this is another kind of file under the name of ODS's {stem}.csv"
            )
        verdict.refuse("wrong_field_count", detail)
        return None
    ragged = [
        f"line {ln}: {len(r)} fields" for r, ln in zip(rows, lines, strict=True) if len(r) != width
    ]
    if ragged:
        verdict.refuse(
            "ragged_rows",
            f"{len(ragged)} line(s) do not have the file's {width} fields "
            f"({_examples(ragged)}): a truncated download or an edited file",
        )
        return None
    if header:
        verdict.refuse(
            "header_row",
            f"line 1 is a header ({_examples([c.strip() for c in rows[0]], 4)}): ODS publishes "
            f"{stem}.csv without one, so this file was re-exported by another tool; use the "
            "file as published",
        )
        return None
    return width


def _judge_codes(
    rows: list[list[str]], lines: list[int], record_type: str, verdict: RegisterVerdict
) -> list[str] | None:
    """Every line's ODS code, upper-cased, or None with the file refused. A file whose codes
    are mostly of the other kind is named as the other ODS file (trusts and practices
    swapped), since that is the likely mistake and the fix differs from bad codes."""
    codes = [row[0].strip().upper() for row in rows]
    own = CODE_PATTERNS[record_type]
    bad = [i for i, code in enumerate(codes) if not own.fullmatch(code)]
    if not bad:
        return codes
    other = PRACTICE if record_type == TRUST else TRUST
    if sum(bool(CODE_PATTERNS[other].fullmatch(c)) for c in codes) >= 0.9 * len(codes):
        verdict.refuse(
            "wrong_record_type",
            f"its codes are {_KIND[other]} codes ({_examples(codes)}), not "
            f"{_KIND[record_type]} codes: this is ODS's {_STEM[other]}.csv under the name "
            f"of {_STEM[record_type]}.csv",
        )
    else:
        verdict.refuse(
            "invalid_codes",
            f"{len(bad)} of {len(codes)} lines have a code that is not an ODS "
            f"{_KIND[record_type]} code ("
            + _examples([f"line {lines[i]}: {rows[i][0]!r}" for i in bad])
            + ")",
        )
    return None


def _judge_dates(
    rows: list[list[str]], lines: list[int], verdict: RegisterVerdict
) -> tuple[list[date | None], list[date | None]] | None:
    """Every line's open and close date (fields 11 and 12), or None with the file refused:
    the dates place an organisation in time and date the file, so one unreadable or
    missing open date refuses it rather than guessing."""
    open_dates: list[date | None] = []
    close_dates: list[date | None] = []
    bad_dates: list[str] = []
    for row, line in zip(rows, lines, strict=True):
        try:
            opened = _parse_date(row[10])
            closed = _parse_date(row[11])
        except ValueError as error:
            bad_dates.append(f"line {line}: {str(error)!r}")
            continue
        if opened is None:
            bad_dates.append(f"line {line}: no open date")
        open_dates.append(opened)
        close_dates.append(closed)
    if bad_dates:
        verdict.refuse(
            "invalid_dates",
            f"{len(bad_dates)} line(s) have an open or close date that is not YYYYMMDD "
            f"({_examples(bad_dates)}); ODS dates are YYYYMMDD and every record has an open "
            "date",
        )
        return None
    return open_dates, close_dates


def _judge_unique_codes(codes: list[str], lines: list[int], verdict: RegisterVerdict) -> bool:
    """Whether every code appears once (else the file is refused): ODS lists each
    organisation once, so a repeat means extracts joined together and the register would
    count an organisation twice."""
    seen: dict[str, int] = {}
    repeated: list[str] = []
    for code, line in zip(codes, lines, strict=True):
        if code in seen:
            repeated.append(f"{code} on lines {seen[code]} and {line}")
        else:
            seen[code] = line
    if repeated:
        verdict.refuse(
            "duplicate_codes",
            f"{len(repeated)} code(s) appear more than once ({_examples(repeated)}): two "
            "extracts joined together, or one appended to another",
        )
        return False
    return True


def _vintage(
    rows: list[list[str]],
    open_dates: list[date | None],
    close_dates: list[date | None],
    record_type: str,
    today: date,
) -> date | None:
    """The latest date the file records, up to today: a lower bound of when it was
    published, enough to tell a 2020 extract from a 2023 one."""
    dates = [d for d in (*open_dates, *close_dates) if d is not None and d <= today]
    if record_type == PRACTICE:
        for row in rows:
            for position in _JOIN_LEFT:
                try:
                    value = _parse_date(row[position - 1])
                except ValueError:
                    continue
                if value is not None and value <= today:
                    dates.append(value)
    return max(dates, default=None)


def _frame(rows: list[list[str]], record_type: str, width: int) -> pl.DataFrame:
    fields = dict(ODS_FIELDS)
    if record_type == PRACTICE:
        fields |= PRACTICE_FIELDS
    columns = {
        name: [row[position - 1].strip() if position <= width else None for row in rows]
        for name, position in fields.items()
        if name not in ("open_date", "close_date")
    }
    for name in PRACTICE_FIELDS:
        columns.setdefault(name, [None] * len(rows))
    frame = pl.DataFrame(columns, schema=dict.fromkeys(columns, pl.String))
    return frame.with_columns(pl.col("org_code").str.to_uppercase())


def _place_in_icbs(
    frame: pl.DataFrame,
    open_dates: list[date | None],
    close_dates: list[date | None],
    record_type: str,
    today: date,
    verdict: RegisterVerdict,
) -> tuple[pl.DataFrame, str]:
    """Recognise the file's era from field 4 and give every row its ICB.

    ICB era: field 4 holds ICB codes (or, from April 2020 to June 2022, the STP codes the
    ICBs kept). Before that, field 4 held NHS England's area teams and local offices
    (``Q45``, ``Q74``), which no region is made of: a trust file of that era is refused;
    a practice file's ICB comes from its CCG code (field 15), through
    :func:`pipelines.ingest.sub_icb_mapping.sub_icb_to_icb`.
    """
    geography = frame["icb_code"].fill_null("").to_list()
    groupings = frame["national_grouping"].fill_null("").to_list()
    if record_type == PRACTICE:
        current = [s == "A" for s in frame["status_code"].fill_null("").to_list()]
    else:
        current = [c is None or c > today for c in close_dates]
    english = [
        i
        for i, code in enumerate(geography)
        if current[i] and code != NOT_ENGLAND and not groupings[i].startswith("W")
    ]
    old = [
        geography[i] for i in english if _PRE_ICB_AREA.fullmatch(geography[i]) or not geography[i]
    ]
    if not english or len(old) <= MAJORITY * len(english):
        return frame, "icb"
    areas = _examples([code or "(blank)" for code, _ in Counter(old).most_common()])
    if record_type == TRUST:
        verdict.refuse(
            "pre_icb_trust_file",
            f"field 4 of {len(old)} of its {len(english)} open English trusts holds an NHS "
            f"England area code ({areas}), not an ICB code: a trust file from before April "
            "2020, whose trusts cannot be placed in ICBs; use an etr.csv published since",
        )
        return frame, "ccg"
    mapping = sub_icb_to_icb()
    ccgs = frame["sub_icb_code"].fill_null("").to_list()
    placed = [mapping.get(code) for code in ccgs]
    active_unplaced = [ccgs[i] or "(blank)" for i in english if placed[i] is None]
    if len(active_unplaced) > MAJORITY * len(english):
        unknown = _examples([c for c, _ in Counter(active_unplaced).most_common()], 5)
        verdict.refuse(
            "unplaceable_practices",
            f"a practice file from before ICBs (field 4 holds NHS England area codes: "
            f"{areas}) whose CCG code (field 15) the sub-ICB mapping does not know for "
            f"{len(active_unplaced)} of its {len(english)} active practices ({unknown}): "
            "they cannot be placed in ICBs; add the CCGs to pipelines/ingest/reference/"
            "sub_icb_to_icb.csv with their ICB, or use a practice file published since July "
            "2022",
        )
        return frame, "ccg"
    unplaced = [ccgs[i] or "(blank)" for i, icb in enumerate(placed) if icb is None]
    note = (
        f"a CCG-era practice file (field 4 holds NHS England area codes: {areas}): the ICB of "
        f"{len(placed) - len(unplaced)} of its {len(placed)} practices comes from their CCG "
        "code (field 15)"
    )
    if unplaced:
        codes = _examples([c for c, _ in Counter(unplaced).most_common()], 5)
        note += (
            f"; {len(unplaced)} under codes the sub-ICB mapping does not cover ({codes}) "
            "are placed in no ICB"
        )
    verdict.notes.append(note)
    derived = [
        icb or (code if code in ENGLAND_ICBS else None)
        for icb, code in zip(placed, geography, strict=True)
    ]
    return frame.with_columns(pl.Series("icb_code", derived, dtype=pl.String)), "ccg"


def judge_local_register(
    path: Path, *, source_path: str | None = None
) -> tuple[pl.DataFrame | None, RegisterVerdict]:
    """The observatory's own register (care homes, independent providers, ICBs, sector
    overrides, successors): refused whole when empty or missing its columns."""
    from pipelines.ingest.organisations import read_local_register

    data = path.read_bytes()
    verdict = _file_verdict(path, source_path or str(path), LOCAL, data)
    verdict.layout = "register_local"
    if not data.strip():
        verdict.refuse("empty_file", "the file is empty")
        return None, verdict
    try:
        frame = read_local_register(path)
    except FileRejected as rejected:
        verdict.refuse(rejected.rule, rejected.detail)
        return None, verdict
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as error:
        verdict.refuse("binary_content", f"not readable as CSV ({type(error).__name__})")
        return None, verdict
    verdict.rows_read = frame.height
    return frame.with_columns(pl.lit(verdict.sha256).alias("sha256")), verdict
