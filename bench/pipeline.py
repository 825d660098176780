"""The whole pipeline beside its I/O floor, in one run.

    python bench/pipeline.py --portfolios 100 --years 5 [--workdir /tmp/perf-bench]

1. writes the input with the sample generator (kept when it is already there);
2. runs `perf-pipeline run` on the local target in a child process: wall time and peak memory;
3. the I/O floor, in this process: DuckDB alone reads the same input files (its CSV reader)
   and writes the same rows the run wrote (every table of the run's store, from memory into a
   fresh DuckDB file);
4. prints both and the ratio (issue goal at 1,000 portfolios x 5 years: <= 3x, <= 8 GB).
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from perf_pipeline.ingest import KINDS
from perf_pipeline.sample_data import generate

BIN = Path(sys.executable).parent


def ensure_input(root: Path, portfolios: int, years: float) -> None:
    marker = root / f".generated-{portfolios}-{years}"
    if not marker.exists():
        started = time.perf_counter()
        counts = generate(root, portfolios=portfolios, years=years)
        marker.touch()
        print(f"generated {counts} in {time.perf_counter() - started:.1f} s")


def run_pipeline(root: Path, store: Path) -> tuple[float, float]:
    """(wall seconds, peak resident GiB) of `perf-pipeline run` in a child process."""
    store.unlink(missing_ok=True)
    env = {**os.environ, "DAGSTER_HOME": ""}
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "perf-pipeline"), "run", "--input", str(root),
                           "--store", str(store), "--target", "local"],
                          env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"perf-pipeline run failed:\n{done.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, peak_kib / 2**20


def io_floor(root: Path, store: Path, scratch: Path) -> float:
    """Seconds for DuckDB to read the input files and write the run's rows, nothing else."""
    with duckdb.connect(str(store), read_only=True) as source:
        tables = {name: source.execute(f'SELECT * FROM "{name}"').df()
                  for (name,) in source.execute("SHOW TABLES").fetchall()}
    scratch.unlink(missing_ok=True)
    started = time.perf_counter()
    with duckdb.connect(str(scratch)) as con:
        for kind in KINDS:
            pattern = str(root / kind / "**" / "*.csv")
            con.execute(f"CREATE TABLE input_{kind} AS SELECT * FROM read_csv('{pattern}', "
                        "all_varchar = true)")
        for name, frame in tables.items():
            con.register("frame", frame)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM frame')
            con.unregister("frame")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=100)
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/perf-bench"))
    args = parser.parse_args()
    root = args.workdir / f"input-{args.portfolios}x{args.years:g}"
    ensure_input(root, args.portfolios, args.years)
    wall, peak = run_pipeline(root, args.workdir / "perf.duckdb")
    floor = io_floor(root, args.workdir / "perf.duckdb", args.workdir / "floor.duckdb")
    with duckdb.connect(str(args.workdir / "perf.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM daily_valuations").fetchone()[0]
    print(f"{args.portfolios} portfolios x {args.years:g} years, {rows:,} valuation rows, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"perf-pipeline run   {wall:7.1f} s   peak {peak:.2f} GiB (goal <= 8)")
    print(f"I/O floor (DuckDB)  {floor:7.1f} s")
    print(f"ratio               {wall / floor:7.1f}x (goal <= 3)")


if __name__ == "__main__":
    main()
