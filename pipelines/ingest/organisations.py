"""Organisation register: real ODS extracts plus the local register.

ODS publishes headerless, fully quoted CSVs whose field count changes between
vintages (24 or 27 fields); we address fields by their documented position and
accept any width that carries the fields we need.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines.ingest.errors import FileRejected

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


def load_register(con, ods_dir: Path, local_register: Path) -> dict[str, int]:
    """Replace the raw register tables with the current files, in one transaction.

    The register is a snapshot, not a history: ODS publishes the whole list each time, with
    closed organisations kept and dated. Returns row counts by source file.
    """
    import hashlib
    from datetime import UTC, datetime

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
    local = read_local_register(local_register).with_columns(
        pl.lit(hashlib.sha256(local_register.read_bytes()).hexdigest()).alias("sha256"),
        pl.lit(now).alias("loaded_at"),
    )
    con.execute("begin")
    try:
        for table, frame in (("ods_organisations", ods), ("local_organisations", local)):
            con.register("incoming", frame.to_arrow())
            con.execute(f"delete from raw.{table}")
            con.execute(f"insert into raw.{table} by name select * from incoming")
            con.unregister("incoming")
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    counts = ods.group_by("source_file").len().sort("source_file").iter_rows()
    return {**dict(counts), local_register.name: local.height}
