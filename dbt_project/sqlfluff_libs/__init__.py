"""What sqlfluff's jinja templater needs beyond dbt's builtins to render the models offline.

``.sqlfluff`` points ``library_path`` here: every public name below joins the template
context, ahead of sqlfluff's own dbt stand-ins. dbt never reads this package (it is outside
the project's macro paths), and nothing in ``pipelines/`` imports it.

- ``var``: the values a run passes (``Settings.dbt_vars()``, from the committed
  configuration), so the SQL sqlfluff lints is the SQL dbt runs; sqlfluff's own ``var``
  renders the word ``item``, which breaks ``var('return_due_days') + 1``.
- ``env_var``: its default (the period macros read the run's months from the environment).
- ``dbt``: the cross-database macros the models call as ``dbt.<name>(...)``, rendered as
  dbt-duckdb compiles them. A model calling another ``dbt.`` macro needs one here too.
"""

from __future__ import annotations

from functools import cache
from types import SimpleNamespace
from typing import Any

from jinja2.exceptions import UndefinedError


@cache
def _vars() -> dict[str, Any]:
    from pipelines.settings import load_settings

    return load_settings().dbt_vars()


def var(name: str, default: Any = None) -> Any:
    if name in _vars():
        return _vars()[name]
    if default is not None:
        return default
    # A template error, so sqlfluff reports it against the model (TMP) rather than crashing.
    raise UndefinedError(f"var({name!r}) is not in Settings.dbt_vars() and has no default")


def env_var(name: str, default: str = "") -> str:
    return default


def _dateadd(datepart: str, interval: object, from_date_or_timestamp: str) -> str:
    return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"


def _last_day(date: str, datepart: str) -> str:
    start = f"date_trunc('{datepart}', {date})"
    return f"cast({_dateadd('day', '-1', _dateadd(datepart, '1', start))} as date)"


dbt = SimpleNamespace(
    type_string=lambda: "varchar",
    dateadd=_dateadd,
    last_day=_last_day,
    position=lambda substring_text, string_text: f"position({substring_text} in {string_text})",
    concat=lambda fields: " || ".join(fields),
)
