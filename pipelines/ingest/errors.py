"""Why a whole file was refused. Row-level problems go to quarantine instead."""

from __future__ import annotations


class FileRejected(Exception):
    """A file that cannot be loaded at all; recorded in the submission log, never raised past
    the ingest loop, so one bad file never stops the others."""

    def __init__(self, file_name: str, rule: str, detail: str) -> None:
        super().__init__(f"{file_name}: {rule}: {detail}")
        self.file_name = file_name
        self.rule = rule
        self.detail = detail
