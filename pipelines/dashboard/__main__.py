"""``python -m pipelines.dashboard WAREHOUSE OUT_DIR [--tier public]``: build a site by hand,
e.g. from an older snapshot, without running the pipeline."""

import argparse
import logging
from pathlib import Path

from pipelines.dashboard.build import TIERS, build_site


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.dashboard", description=__doc__)
    parser.add_argument(
        "warehouse",
        type=Path,
        help="the tier's published file (read-only): <snapshot>/warehouse.duckdb for the "
        "internal site, <snapshot>/public/warehouse.duckdb for the public one",
    )
    parser.add_argument("out_dir", type=Path, help="folder to (re)build the site in")
    parser.add_argument("--tier", choices=TIERS, default="internal")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    print(build_site(args.warehouse, args.out_dir, args.tier))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
