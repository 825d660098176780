"""Write a sample input root: ``python bench/generate.py --portfolios N --years Y --out DIR``.

``--fx-share F`` makes round(N x F) of the N portfolios multi-currency (EUR and GBP
portfolios holding USD and JPY securities and cash; fx_rates files beside). Prints the rows
written per kind, the total size on disk and the elapsed wall time.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from perf_pipeline.sample_data import FORMATS, fx_split, generate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=4, help="number of portfolios")
    parser.add_argument("--years", type=float, default=3, help="years of history")
    parser.add_argument("--out", type=Path, required=True, help="input root to write")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument("--end", default="2024-06-28", help="last date, YYYY-MM-DD")
    parser.add_argument("--files-per-kind", type=int, default=None, help="files per kind")
    parser.add_argument("--format", choices=FORMATS, default="csv", help="file format")
    parser.add_argument(
        "--fx-share", type=float, default=0.0, help="share of multi-currency portfolios, e.g. 0.33"
    )
    args = parser.parse_args(argv)
    try:
        portfolios, fx_portfolios = fx_split(args.portfolios, args.fx_share)
    except ValueError as error:
        parser.error(str(error))
    started = time.perf_counter()
    counts = generate(
        args.out,
        portfolios=portfolios,
        fx_portfolios=fx_portfolios,
        years=args.years,
        seed=args.seed,
        end=args.end,
        files_per_kind=args.files_per_kind,
        fmt=args.format,
    )
    elapsed = time.perf_counter() - started
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    for kind, rows in counts.items():
        print(f"{kind:>12}: {rows:>10,} rows")
    print(f"{'on disk':>12}: {size / 1e6:>10.1f} MB in {args.out}")
    print(f"{'elapsed':>12}: {elapsed:>10.1f} s")


if __name__ == "__main__":
    main()
