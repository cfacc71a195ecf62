"""Who has not submitted: a freshness check over mart_submission_completeness.

A warning, never blocking: publication must not wait for a late provider, but the
observatory sees by name who to chase.
"""

from datetime import UTC, datetime

import dagster as dg

from pipelines.defs.dbt import MART_KEYS
from pipelines.settings import load_settings
from pipelines.warehouse import working_connection

COMPLETENESS_KEY = next(k for k in MART_KEYS if k.path[-1] == "mart_submission_completeness")


def overdue_providers(con, today) -> list[tuple[str, str, int, str]]:
    """(org_code, org_name, missing returns, oldest missing month) for every organisation
    with a return past its due date and not received."""
    return con.execute(
        """
        select org_code, any_value(org_name), count(*), strftime(min(period), '%Y-%m')
        from marts.mart_submission_completeness
        where status = 'missing' and due_date < ?
        group by org_code
        order by count(*) desc, org_code
        """,
        [today],
    ).fetchall()


@dg.asset_check(
    asset=COMPLETENESS_KEY,
    name="returns_not_overdue",
    blocking=False,
    description="Names providers whose monthly return is overdue (due date passed, nothing "
    "received). Due = month end + SAFETY_OBS_RETURN_DUE_DAYS.",
)
def returns_not_overdue() -> dg.AssetCheckResult:
    settings = load_settings()
    today = datetime.now(UTC).date()
    with working_connection(settings.working_db, read_only=True) as con:
        overdue = overdue_providers(con, today)
    lines = [f"{code} {name}: {n} missing since {first}" for code, name, n, first in overdue]
    return dg.AssetCheckResult(
        passed=not overdue,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "providers_overdue": len(overdue),
            "returns_overdue": sum(n for _, _, n, _ in overdue),
            "providers": dg.MetadataValue.md("\n".join(f"- {line}" for line in lines[:200])),
        },
    )


defs = dg.Definitions(asset_checks=[returns_not_overdue])
