"""``python -m pipelines.report --warehouse X --out Y [--tier public]``: build the board
reports by hand, e.g. from an older snapshot, without running the pipeline."""

import argparse
import logging
from pathlib import Path

from pipelines.report.build import TIERS, build_reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.report", description=__doc__)
    parser.add_argument(
        "--warehouse",
        type=Path,
        required=True,
        help="the tier's published file (read-only): <snapshot>/warehouse.duckdb for the "
        "internal reports, <snapshot>/public/warehouse.duckdb for the public ones",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder to (re)build them in")
    parser.add_argument("--tier", choices=TIERS, default="internal")
    parser.add_argument("--region-name", help="default: the region_name setting")
    parser.add_argument("--run-id", default="built by hand", help="shown in each footer")
    parser.add_argument("--no-pdf", action="store_true", help="HTML only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    print(
        build_reports(
            args.warehouse,
            args.out,
            args.tier,
            region_name=args.region_name,
            run_id=args.run_id,
            pdf=not args.no_pdf,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
