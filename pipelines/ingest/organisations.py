"""Organisation register: real ODS extracts plus the local register.

ODS publishes headerless, fully quoted CSVs whose field count changes between
vintages (24 or 27 fields); we address fields by their documented position and
accept any width that carries the fields we need. The files are national; only the
configured region's organisations are loaded (``split_by_region``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from pipelines.ingest.errors import FileRejected
from pipelines.settings import ALL_ENGLAND, load_settings

# 1-based positions from the ODS field specifications (etr.pdf, epraccur.pdf).
_ODS_FIELDS = {
    "org_code": 1,
    "org_name": 2,
    "national_grouping": 3,
    "icb_code": 4,
    "postcode": 10,
    "open_date": 11,
    "close_date": 12,
}
_EPRACCUR_EXTRA = {"status_code": 13, "sub_icb_code": 15, "prescribing_setting": 26}
_MIN_ODS_FIELDS = 12

LOCAL_REGISTER_COLUMNS = [
    "org_code",
    "org_name",
    "sector_code",
    "icb_code",
    "open_date",
    "close_date",
    "successor_code",
]


def _ods_date(column: str) -> pl.Expr:
    return pl.col(column).str.strip_chars().replace("", None).str.to_date("%Y%m%d", strict=False)


def read_ods_file(path: Path, record_type: str) -> pl.DataFrame:
    """Read one ODS extract (``etr.csv`` trusts or ``epraccur.csv`` GP practices)."""
    raw = pl.read_csv(
        path,
        has_header=False,
        infer_schema=False,
        truncate_ragged_lines=True,
        encoding="utf8-lossy",
    )
    if raw.width < _MIN_ODS_FIELDS:
        raise FileRejected(
            path.name,
            "ods_layout",
            f"expected an ODS extract with at least {_MIN_ODS_FIELDS} fields, found {raw.width}",
        )
    fields = dict(_ODS_FIELDS)
    if record_type == "gp_practice":
        fields.update({k: v for k, v in _EPRACCUR_EXTRA.items() if v <= raw.width})
    frame = raw.select(
        [pl.col(raw.columns[pos - 1]).str.strip_chars().alias(name) for name, pos in fields.items()]
    )
    for name in _EPRACCUR_EXTRA:
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name))
    return frame.with_columns(
        pl.col("org_code").str.to_uppercase(),
        _ods_date("open_date").alias("open_date"),
        _ods_date("close_date").alias("close_date"),
        pl.lit(record_type).alias("record_type"),
        pl.lit(path.name).alias("source_file"),
        (pl.int_range(pl.len(), dtype=pl.Int64) + 1).alias("source_line"),
    )


def read_local_register(path: Path) -> pl.DataFrame:
    """Care homes, independent providers, ICBs and sector overrides, kept by the observatory."""
    frame = pl.read_csv(path, infer_schema=False, encoding="utf8-lossy")
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    missing = [c for c in LOCAL_REGISTER_COLUMNS if c not in frame.columns]
    if missing:
        raise FileRejected(path.name, "local_register_layout", f"missing columns {missing}")
    return frame.select(
        pl.col("org_code").str.strip_chars().str.to_uppercase(),
        pl.col("org_name").str.strip_chars(),
        pl.col("sector_code").str.strip_chars().str.to_lowercase(),
        pl.col("icb_code").str.strip_chars().str.to_uppercase(),
        pl.col("open_date").str.strip_chars().str.to_date("%Y-%m-%d", strict=False),
        pl.col("close_date").str.strip_chars().str.to_date("%Y-%m-%d", strict=False),
        pl.col("successor_code").str.strip_chars().str.to_uppercase(),
        pl.lit(path.name).alias("source_file"),
        (pl.int_range(pl.len(), dtype=pl.Int64) + 2).alias("source_line"),
    )


ODS_FILES = {"etr": "trust", "epraccur": "gp_practice"}


def split_by_region(
    ods: pl.DataFrame, local: pl.DataFrame, region_icbs: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(ODS rows in the region, local register rows in the region, organisations outside it).

    An organisation belongs to the region when its ICB is one of ``region_icbs`` (or the
    region is ``("ENGLAND",)``), judged on the ICB the warehouse will give it: the local
    register's where it names one, else ODS's (the precedence ``int_organisations__resolved``
    applies). So a local row can adopt an organisation ODS files elsewhere, a local row with
    no ICB (a sector override) follows its ODS row, and a local organisation with no ICB at
    all is outside a region (it cannot be placed in one). The third frame lists what was
    left out (``org_code, org_name, icb_code, record_type, source_file``), so ingest can
    say "outside the region" rather than "unknown" when one of them sends a return.
    """
    outside_columns = ["org_code", "org_name", "icb_code", "record_type", "source_file"]
    if tuple(region_icbs) == (ALL_ENGLAND,):
        return ods, local, pl.DataFrame(schema=dict.fromkeys(outside_columns, pl.String))
    region = [code.upper() for code in region_icbs]
    blank_is_null = pl.col("icb_code").str.strip_chars().replace("", None)
    local_icb = (
        local.select("org_code", blank_is_null.alias("local_icb"))
        .drop_nulls("local_icb")
        .unique("org_code", keep="first", maintain_order=True)
    )
    ods_icb = ods.select("org_code", blank_is_null.alias("ods_icb")).unique(
        "org_code", keep="first", maintain_order=True
    )
    resolved = (
        pl.concat([ods.select("org_code"), local.select("org_code")])
        .unique(maintain_order=True)
        .join(local_icb, on="org_code", how="left")
        .join(ods_icb, on="org_code", how="left")
        .select("org_code", pl.coalesce("local_icb", "ods_icb").alias("resolved_icb"))
    )
    in_region = resolved.filter(pl.col("resolved_icb").is_in(region))["org_code"].implode()
    ods_in = ods.filter(pl.col("org_code").is_in(in_region))
    local_in = local.filter(pl.col("org_code").is_in(in_region))
    described = pl.concat(
        [
            ods.select("org_code", "org_name", "record_type", "source_file"),
            local.select(
                "org_code",
                pl.col("org_name").replace("", None),
                pl.lit("local_register").alias("record_type"),
                "source_file",
            ),
        ]
    ).unique("org_code", keep="first", maintain_order=True)
    outside = (
        resolved.filter(~pl.col("org_code").is_in(in_region))
        .join(described, on="org_code", how="left")
        .select(
            "org_code",
            "org_name",
            pl.col("resolved_icb").alias("icb_code"),
            "record_type",
            "source_file",
        )
    )
    return ods_in, local_in, outside


def load_register(
    con: duckdb.DuckDBPyConnection,
    ods_dir: Path,
    local_register: Path | None,
    region_icbs: Sequence[str] | None = None,
) -> dict[str, int]:
    """Replace the raw register tables with the region's rows of the current files, in one
    transaction.

    The register is a snapshot, not a history: ODS publishes the whole list each time, with
    closed organisations kept and dated. ``local_register`` None means no local
    organisations. ``region_icbs`` defaults to the configured region (``Settings.
    region_icbs``), so no caller can load all of England by forgetting it.

    The region is applied here, once, and not in dbt staging: ingest checks returns against
    ``raw`` directly (``organisation_lookup``), so a filter downstream in dbt would leave
    ingest loading returns from organisations the marts then drop, and would need a second
    copy of the rule in Python. Filtering at load, everything that reads the register
    (ingest, survey matching, every dbt model, completeness) sees the same organisations.
    Organisations left out go to ``raw.organisations_outside_region`` (code, name, ICB)
    only so that a return from one can be refused with that reason.

    Returns the rows loaded per source file.
    """
    if region_icbs is None:
        region_icbs = load_settings().region_icbs
    now = datetime.now(UTC).replace(tzinfo=None)
    frames = []
    for stem, record_type in ODS_FILES.items():
        for path in sorted(ods_dir.glob(f"{stem}*.csv")):
            frames.append(
                read_ods_file(path, record_type).with_columns(
                    pl.lit(hashlib.sha256(path.read_bytes()).hexdigest()).alias("sha256"),
                    pl.lit(now).alias("loaded_at"),
                )
            )
    if not frames:
        raise FileRejected(str(ods_dir), "ods_missing", "no etr*.csv or epraccur*.csv found")
    ods = pl.concat(frames, how="diagonal_relaxed")
    if local_register is None:
        local = _empty_local_register()
    else:
        local = read_local_register(local_register).with_columns(
            pl.lit(hashlib.sha256(local_register.read_bytes()).hexdigest()).alias("sha256"),
            pl.lit(now).alias("loaded_at"),
        )
    ods, local, outside = split_by_region(ods, local, region_icbs)
    outside = outside.with_columns(pl.lit(now).alias("loaded_at"))
    con.execute("begin")
    try:
        for table, frame in (
            ("ods_organisations", ods),
            ("local_organisations", local),
            ("organisations_outside_region", outside),
        ):
            con.register("incoming", frame.to_arrow())
            con.execute(f"delete from raw.{table}")
            con.execute(f"insert into raw.{table} by name select * from incoming")
            con.unregister("incoming")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    counts = dict(ods.group_by("source_file").len().sort("source_file").iter_rows())
    if local_register is not None:
        counts[local_register.name] = local.height
    return counts


def _empty_local_register() -> pl.DataFrame:
    """No local register configured: no local organisations, same columns."""
    schema = {column: pl.String for column in LOCAL_REGISTER_COLUMNS}
    schema |= {"open_date": pl.Date, "close_date": pl.Date, "source_file": pl.String}
    schema |= {"source_line": pl.Int64, "sha256": pl.String, "loaded_at": pl.Datetime("us")}
    return pl.DataFrame(schema=schema)


def region_label(region_name: str, region_icbs: Sequence[str]) -> str:
    """How refusals name the region: ``Innovation Agency (ICBs QYG, QE1)``."""
    codes = ", ".join(region_icbs)
    return f"{region_name} (ICB{'s' if len(region_icbs) > 1 else ''} {codes})"
