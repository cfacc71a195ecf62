"""The file rules every landed file passes before it is read, whatever it claims to be.

Measure returns (:mod:`pipelines.ingest.measure_returns`) and survey exports
(:mod:`pipelines.surveys.ingest`) both call these, so a file is judged the same way, with the
same rule names and reason text in ``raw.submission_log``, whichever landing folder it was
dropped in. Two kinds of rule live here:

- rules judged before a byte is read (:func:`screen`): a name that could be read as a path,
  a link that leads out of the landing folder, something that is not a regular file, a file
  over ``max_file_bytes``. Such files are never opened, not even to hash them;
- the XLSX container rule (:func:`check_xlsx_container`): an XLSX is a zip, and a zip bomb
  must be refused before a spreadsheet reader inflates it.

:func:`landed_files` and :func:`content_digest` are how ingest and the landing sensor list a
landing folder and key its files, so they agree on what is new.
"""

from __future__ import annotations

import hashlib
import io
import stat
import time
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines.ingest.errors import FileRejected

# Besides letters and digits (any script: "Hôpital_2024-03.csv" is a fine name), only these.
_NAME_PUNCTUATION = frozenset(" _.,()&'+-")
# Names of files that are not (yet) files to ingest: a transfer in progress that is renamed
# when complete (``.part``, ``.tmp``, ``.crdownload``), and the lock file Excel keeps beside an
# open workbook (``~$name.xlsx``).
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload")
IN_PROGRESS_PREFIXES = ("~$",)
# More entries than any real workbook has: a directory of millions of empty entries costs
# memory and time without ever declaring many bytes.
MAX_ZIP_ENTRIES = 10_000
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class Screening:
    """What a file's directory entry says: its size, or why it is refused unread.

    ``size`` is 0 when the name, the link or the file type was refused: such a file is
    never stat'ed through a link, so nothing outside landing is even measured.
    """

    size: int
    rejection: FileRejected | None = None


def file_name_problem(path: Path, landing_dir: Path) -> FileRejected | None:
    """Names that could be read as paths, and links that lead out of the landing folder."""
    name = unicodedata.normalize("NFC", path.name)
    if not _safe_name(name):
        return FileRejected(
            repr(name)[1:-1],
            "unsafe_file_name",
            "file names may hold letters (accented letters too), digits, spaces and "
            "_ . , ( ) & ' + - only, start with a letter or digit, and hold no '..' "
            "(no path parts)",
        )
    if path.is_symlink():
        target = path.resolve()
        if not target.is_relative_to(landing_dir.resolve()):
            return FileRejected(name, "outside_landing_folder", "a link to a file outside landing")
    return None


def _safe_name(name: str) -> bool:
    """Letters and digits of any script are safe; control and invisible formatting
    characters (which can hide an extension, e.g. a right-to-left override), path
    separators and '..' are not."""
    return (
        bool(name)
        and name[0].isalnum()
        and ".." not in name
        and all(c.isalnum() or c in _NAME_PUNCTUATION for c in name)
    )


def screen(path: Path, landing_dir: Path, max_file_bytes: int) -> Screening:
    """The rules judged from the directory entry alone, before the file is opened.

    A link to nothing, to a folder or to a device (a FIFO would block a read forever) is
    refused as ``not_a_regular_file``; a file over ``max_file_bytes`` as ``oversized_file``,
    never read into memory, not even to hash it.
    """
    problem = file_name_problem(path, landing_dir)
    if problem is not None:
        return Screening(0, problem)
    try:
        status = path.stat()
    except OSError as error:
        detail = f"cannot be opened ({error.strerror or type(error).__name__})"
        return Screening(0, FileRejected(path.name, "not_a_regular_file", detail))
    if not stat.S_ISREG(status.st_mode):
        return Screening(
            0, FileRejected(path.name, "not_a_regular_file", "a folder, device or pipe, not a file")
        )
    if status.st_size > max_file_bytes:
        return Screening(
            status.st_size,
            FileRejected(
                path.name,
                "oversized_file",
                f"{status.st_size} bytes exceeds the limit of {max_file_bytes}",
            ),
        )
    return Screening(status.st_size)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_digest(path: Path, landing_dir: Path, max_file_bytes: int) -> str:
    """The SHA-256 the submission log holds for this file: empty for files refused unread
    (:func:`screen`), which are never opened. Streamed, so a large file is not held whole."""
    if screen(path, landing_dir, max_file_bytes).rejection is not None:
        return ""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def in_progress_name(name: str) -> bool:
    """A name that says the file is not finished: hidden (``.DS_Store``, an rsync or SFTP
    temporary), a ``.part``/``.tmp`` transfer or an Excel lock file ``~$...``."""
    lowered = name.lower()
    return (
        name.startswith(".")
        or lowered.endswith(IN_PROGRESS_SUFFIXES)
        or name.startswith(IN_PROGRESS_PREFIXES)
    )


def settled(path: Path, settle_seconds: float, now: float | None = None) -> bool:
    """Whether nothing has written ``path`` for ``settle_seconds``: its modification time
    (which every write moves, and with it the size) is at least that old.

    A writer still copying a file keeps moving its modification time, so a file is taken only
    once it has been quiet for the interval. A modification time in the future (a sender's
    clock, a timestamp preserved from another machine) says nothing about writing now: such
    a file is taken, and the check after reading (:func:`file_state`) still catches a write
    during the read. The link itself is judged, never its target, so a broken link is still
    listed (and refused).
    """
    if settle_seconds <= 0:
        return True
    now = time.time() if now is None else now
    try:
        modified = path.lstat().st_mtime
    except OSError:  # gone while we looked: the next listing will not show it
        return False
    age = now - modified
    return age >= settle_seconds or age < -1


def file_state(path: Path) -> tuple[int, int] | None:
    """(size, modification time in ns) of the file ``path`` leads to, or None if it cannot
    be stat'ed: compared before and after reading, a difference means a writer was busy."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def landed_files(
    folder: Path,
    *,
    ignore: Iterable[str] = (),
    settle_seconds: float = 0,
    now: float | None = None,
) -> list[Path]:
    """Every file under ``folder`` that ingest must judge, in the order it is applied (by
    folder, then name). Links are included, even broken ones, so that a link out of landing
    is logged as refused rather than silently followed or skipped; hidden files, transfers
    in progress and Excel lock files (:func:`in_progress_name`), the names in ``ignore``, and
    files written less than ``settle_seconds`` ago (:func:`settled`) are not files to ingest
    yet. Ingest and the landing sensor both list through here, so neither takes a file the
    other would leave."""
    skip = set(ignore)
    candidates = (p for p in folder.rglob("*") if p.is_symlink() or p.is_file())
    return sorted(
        p
        for p in candidates
        if not in_progress_name(p.name) and p.name not in skip and settled(p, settle_seconds, now)
    )


def check_xlsx_container(data: bytes, file_name: str, max_inflated_bytes: int) -> None:
    """Refuse an XLSX that is not a sound zip, is a zip bomb, or holds no worksheet.

    First the central directory is judged before anything is inflated: too many entries, or
    declared sizes adding up past ``max_inflated_bytes``, is ``xlsx_inflates_too_far``.
    Then every entry is inflated once, in chunks, by Python's zipfile, which stops at the
    declared size and checks the CRC: a file that lies about its sizes is refused here
    instead of being handed to the spreadsheet reader, which trusts them.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise FileRejected(file_name, "unreadable_xlsx", f"not a valid XLSX (zip): {exc}") from exc
    with archive:
        entries = archive.infolist()
        if len(entries) > MAX_ZIP_ENTRIES:
            raise FileRejected(
                file_name,
                "xlsx_inflates_too_far",
                f"{len(entries)} zip entries, over the limit of {MAX_ZIP_ENTRIES}",
            )
        declared = sum(entry.file_size for entry in entries)
        if declared > max_inflated_bytes:
            raise FileRejected(
                file_name,
                "xlsx_inflates_too_far",
                f"declares {declared} bytes uncompressed, over the limit of {max_inflated_bytes}",
            )
        if not any(entry.filename.startswith("xl/worksheets/") for entry in entries):
            raise FileRejected(file_name, "unreadable_xlsx", "zip holds no Excel worksheet")
        try:
            for entry in entries:
                with archive.open(entry) as member:
                    while member.read(_READ_CHUNK):
                        pass
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise FileRejected(
                file_name, "unreadable_xlsx", f"zip entry does not match its directory: {exc}"
            ) from exc
