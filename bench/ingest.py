"""Incremental ingestion: a full validation of an input root against the cached path.

    .venv/bin/python bench/ingest.py --input /tmp/big [--portfolios 1000 --years 5]

Generates the input root when it is missing (``bench/generate.py``'s data), then times:

1. full: list and read every file, ``validate_inputs`` over all of them (what the inputs
   asset did on every run before the cache);
2. cold: ``validate_incrementally`` with an empty cache (reads, validates and stores all);
3. new day: one more business day's transactions file (a deposit per portfolio) added, then
   ``validate_incrementally`` again: it reads only that file and combines;
4. nothing new: the same again.

and prints each beside the full validation of the same files, with the ratio; the result of
3 is compared with the full validation table by table (it must be equal).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from perf_pipeline.ingest import KINDS, RawFile, validate_inputs
from perf_pipeline.ingest.cache import ValidatedFileCache
from perf_pipeline.ingest.incremental import validate_incrementally
from perf_pipeline.resources.blobs import LocalBlobs
from perf_pipeline.resources.input_store import InputStore
from perf_pipeline.sample_data import generate

TABLES = (
    "portfolios",
    "transactions",
    "prices",
    "benchmarks",
    "rejected_rows",
    "rejected_files",
    "input_files",
)


def full(store: InputStore, today: dt.date):
    files = [
        RawFile(store.uri(obj), kind, store.read(obj))
        for kind in KINDS
        for obj in store.list_files(kind)
    ]
    return validate_inputs(files, today)


def timed(label: str, work, baseline: float | None = None, repeats: int = 1):
    """Best of ``repeats`` runs of ``work``, printed beside ``baseline``."""
    seconds = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        out = work()
        seconds = min(seconds, time.perf_counter() - started)
    ratio = f"  {seconds / baseline:6.1%} of the full validation" if baseline else ""
    print(f"{label:<34} {seconds:8.2f} s{ratio}", flush=True)
    return out, seconds


def add_day(root: Path, portfolios: pd.Series, day: pd.Timestamp) -> Path:
    """One business day's transactions file: a deposit per portfolio into its first account."""
    path = root / "transactions" / f"{day:%Y}" / f"{day:%Y-%m-%d}.csv"
    ids = portfolios.to_numpy()
    frame = pd.DataFrame(
        {
            "transaction_id": [f"N{day:%Y%m%d}-{i}" for i in range(len(ids))],
            "portfolio_id": ids,
            "account_id": [f"{p}-A1" for p in ids],
            "security_id": "",
            "trade_date": f"{day:%Y-%m-%d}",
            "type": "DEPOSIT",
            "quantity": "",
            "price": "",
            "amount": np.round(np.linspace(100, 1000, len(ids)), 2),
            "fee": "",
            "currency": "USD",
        }
    )
    frame.to_csv(path, index=False)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, required=True, help="input root (made if missing)")
    parser.add_argument("--portfolios", type=int, default=1000)
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--end", default="2024-06-28")
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the cached run")
    args = parser.parse_args(argv)
    if not args.input.exists():
        timed(
            "generate",
            lambda: generate(
                args.input, portfolios=args.portfolios, years=args.years, end=args.end
            ),
        )
    for old in args.input.glob("transactions/*/????-??-??.csv"):
        old.unlink()  # a day added by an earlier run of this benchmark
    size = sum(p.stat().st_size for p in args.input.rglob("*") if p.is_file())
    print(f"input: {args.input} ({size / 1e6:.0f} MB), load average {os.getloadavg()[0]:.2f}")
    today = dt.date.fromisoformat(args.end) + dt.timedelta(days=7)
    store = InputStore(root=str(args.input))
    cache_dir = Path(tempfile.mkdtemp(prefix="ingest-cache-"))
    try:
        cache = ValidatedFileCache(LocalBlobs(cache_dir))
        expected, base = timed("full validation", lambda: full(store, today))

        def incremental():
            return validate_incrementally(store, cache, today)

        timed("cold cache (validate + store all)", incremental, base)
        cache_mb = sum(p.stat().st_size for p in cache_dir.rglob("*") if p.is_file()) / 1e6
        print(f"{'cache on disk':<34} {cache_mb:8.0f} MB")
        day = pd.Timestamp(args.end) + pd.offsets.BDay(1)
        add_day(args.input, expected.portfolios["portfolio_id"], day)
        expected, base = timed("full validation, one more day", lambda: full(store, today))
        report, _ = timed("incremental, one more day", incremental, base)
        # (the first run stored the new file: the repeats below read it from the cache)
        print(f"{'':<34} files read: {len(report.files_read)}, from cache: {report.files_cached}")
        for name in TABLES:
            pd.testing.assert_frame_equal(getattr(report.inputs, name), getattr(expected, name))
        print(f"{'':<34} all {len(TABLES)} tables equal to the full validation's")
        timed(f"incremental, nothing new (best of {args.repeats})", incremental, base, args.repeats)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        print(f"{'peak memory (whole process)':<34} {peak:8.2f} GiB")
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
