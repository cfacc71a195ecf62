"""The static dashboard site, built from a published snapshot (see :func:`build_site`)."""

from pipelines.dashboard.build import build_site

__all__ = ["build_site"]
