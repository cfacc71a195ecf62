"""Printable board reports (HTML and PDF) per ICB and for the region (see :func:`build_reports`)."""

from pipelines.report.build import build_reports

__all__ = ["build_reports"]
