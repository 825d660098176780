"""Benchmark: risk_metrics_many on 1,000 entities x 2,520 days against a loop over empyrical.

Ours computes the full RISK_METRICS set in one call; the baseline loops over the columns
calling empyrical on ndarrays for annual_volatility, sharpe_ratio, sortino_ratio,
max_drawdown and alpha_beta (a subset of our work). The machine may be shared, so each
repeat times both sides back to back and each side keeps its best time; the load average
is reported with the figures. Peak memory of our call is measured with tracemalloc (numpy
reports its buffers to it) in a separate, untimed run. Goals: empyrical / ours >= 3 and
peak memory < 1 GB.

Run: .venv/bin/python bench/risk_bench.py [repeats]
"""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from collections.abc import Callable

import empyrical
import numpy as np
import pandas as pd

from perf_pipeline.calc.risk import risk_metrics_many

N_ENTITIES = 1_000
N_DAYS = 2_520
SEED = 20240601
NULL_SHARE = 0.02


def make_data() -> tuple[pd.DataFrame, pd.Series]:
    """Fixed-seed daily returns (2 % null days, 10 % of entities starting late) and a benchmark."""
    rng = np.random.default_rng(SEED)
    dates = pd.bdate_range("2015-01-01", periods=N_DAYS)
    bench = rng.normal(0.0003, 0.01, N_DAYS)
    beta = rng.uniform(0.5, 1.5, N_ENTITIES)
    r = bench[:, None] * beta + rng.normal(0.0001, 0.008, (N_DAYS, N_ENTITIES))
    r[rng.random((N_DAYS, N_ENTITIES)) < NULL_SHARE] = np.nan
    late = rng.choice(N_ENTITIES, N_ENTITIES // 10, replace=False)
    r[: N_DAYS // 4, late] = np.nan
    columns = [f"entity_{i:04d}" for i in range(N_ENTITIES)]
    return pd.DataFrame(r, index=dates, columns=columns), pd.Series(bench, index=dates)


def _empyrical_loop(r: np.ndarray, m: np.ndarray) -> None:
    for j in range(r.shape[1]):
        col = r[:, j]
        empyrical.annual_volatility(col)
        empyrical.sharpe_ratio(col)
        empyrical.sortino_ratio(col)
        empyrical.max_drawdown(col)
        empyrical.alpha_beta(col, m)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(repeats: int = 5) -> dict:
    """Time both sides (best of repeats, seconds, interleaved) and our peak memory (bytes)."""
    returns, bench = make_data()
    r, m = returns.to_numpy(), bench.to_numpy()

    def ours() -> object:
        return risk_metrics_many(returns, bench)

    def theirs() -> object:
        return _empyrical_loop(r, m)

    load_before = os.getloadavg()[0]
    ours()  # warm-up: imports, first-touch of buffers
    ours_s = empyrical_s = float("inf")
    for _ in range(repeats):
        ours_s = min(ours_s, _seconds(ours))
        empyrical_s = min(empyrical_s, _seconds(theirs))
    load_after = os.getloadavg()[0]
    tracemalloc.start()
    ours()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "entities": N_ENTITIES,
        "days": N_DAYS,
        "repeats": repeats,
        "ours_s": ours_s,
        "empyrical_s": empyrical_s,
        "ratio": empyrical_s / ours_s,
        "peak_memory_bytes": peak,
        "load_average_1min": (load_before, load_after),
    }


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    res = run(repeats)
    print(f"{res['entities']} entities x {res['days']} days, best of {res['repeats']}")
    print(f"risk_metrics_many (15 metrics):   {res['ours_s'] * 1e3:.1f} ms")
    print(f"empyrical loop (5 functions):     {res['empyrical_s'] * 1e3:.1f} ms")
    print(f"ratio empyrical / ours:           {res['ratio']:.2f}x (goal >= 3)")
    mib = res["peak_memory_bytes"] / 2**20
    print(f"peak traced memory of our call:   {mib:.0f} MiB (goal < 1 GiB)")
    before, after = res["load_average_1min"]
    print(f"1-min load average before/after:  {before:.2f} / {after:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
