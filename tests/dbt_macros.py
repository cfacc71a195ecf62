"""dbt's macros rendered outside dbt, so a test can hold a SQL rule equal to its Python twin.

The macro files under ``dbt_project/macros`` are plain Jinja; a macro that only builds an
expression (``rate``, ``direction_sign``, ``is_count_chart``) renders the same SQL here as
in a dbt model, and DuckDB runs it on rows the test chooses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import jinja2

MACROS = Path(__file__).resolve().parents[1] / "dbt_project" / "macros"


def macro(file: str, name: str) -> Callable[..., str]:
    """The macro ``name`` of ``dbt_project/macros/<file>``, callable with SQL fragments."""
    module = jinja2.Environment().from_string((MACROS / file).read_text()).module
    return getattr(module, name)
