"""``python -m pipelines.bench --scale 0.05 [--out var/bench]``: see pipelines/bench/run.py.

Exits 1 when a stage failed or a count did not match the generator; the results printed
then say why and carry no ratio (docs/benchmark.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.bench.report import RESULTS_JSON, RESULTS_MD, markdown
from pipelines.bench.run import Benchmark
from pipelines.months import parse_month
from pipelines.settings import PROJECT_ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.bench",
        description="National-scale benchmark of the pipeline against plain DuckDB "
        "(docs/design.md §10)",
    )
    parser.add_argument(
        "--scale", type=float, default=0.05, help="1.0 = about 20,000 organisations"
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "var" / "bench")
    parser.add_argument(
        "--months", type=int, default=120, help="history wanted (capped by the catalogue start)"
    )
    parser.add_argument(
        "--last-period", type=parse_month, default=None, help="YYYY-MM (default: last month)"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--query-runs", type=int, default=7)
    parser.add_argument(
        "--regenerate", action="store_true", help="rewrite the data even if present"
    )
    parser.add_argument(
        "--no-pdfs",
        action="store_true",
        help="publish the board reports as HTML only (the PDFs come after the data is "
        "published; at SCALE=5 they take hours)",
    )
    args = parser.parse_args(argv)
    bench = Benchmark(
        scale=args.scale,
        out=args.out,
        months=args.months,
        seed=args.seed,
        last_period=args.last_period,
        query_runs=args.query_runs,
        regenerate=args.regenerate,
        board_report_pdfs=not args.no_pdfs,
    )
    results = bench.run()
    print()
    print(markdown(results))
    print(f"results: {bench.paths.root / RESULTS_JSON}, {bench.paths.root / RESULTS_MD}")
    if results["failures"]:
        print("benchmark FAILED: " + "; ".join(results["failures"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
