"""Benchmark: `xirr_many` on 10,000 series of 50 dated flows against a loop of `pyxirr.xirr`.

Run: .venv/bin/python bench/xirr_bench.py [repeats]

Series (fixed seed): an initial purchase, 48 contributions or withdrawals on distinct random
dates over a horizon of 60 days to 10 years while the value follows a random walk (annual
drift and volatility drawn per series), then the final value. Withdrawals never exceed the
value at the time. The per-series lists of dates and amounts for pyxirr, and the long table
for `xirr_many`, are built outside the timed region; ours parses the table inside it.

How it is timed, so that the ratio does not move with the machine (it fell to 0.75-1.3x
between runs when each side was timed as a block of repeats by the wall clock):
- both sides run once untimed first (imports, first-touch page faults, caches);
- the repeats interleave the two sides, alternating which goes first, so that load from other
  processes falls on both alike (the machine is shared);
- each call runs with the garbage collector off after a `gc.collect()` (pyxirr's loop makes
  10,000 Python floats and lists, ours a few arrays: a collection may land in either);
- the figure is CPU time of this process (`time.process_time`), which a process preempted by
  another does not accrue, beside the wall time; both sides run on one thread (BLAS threads
  are set to 1 before numpy loads; neither calls BLAS);
- the best of `repeats` of each, and the ratio of the bests; the median of the per-repeat
  ratios is printed too.

It also reports how many series each found a root for, the largest difference where both
did, and for that series each rate's NPV relative to the sum of |discounted flows| (which of
the two is nearer the root).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # effective when this file is the first to load numpy

import datetime as dt  # noqa: E402
import gc  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyxirr  # noqa: E402

from perf_pipeline.calc.xirr import xirr_many  # noqa: E402

N_SERIES = 10_000
N_FLOWS = 50
SEED = 20240601


def make_flows(n_series: int = N_SERIES, n_flows: int = N_FLOWS, seed: int = SEED) -> pd.DataFrame:
    """Long table (entity, date, amount) of realistic investor cash flows."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2015-01-01") + rng.integers(0, 3000, n_series)
    horizon = np.exp(rng.uniform(np.log(60), np.log(3650), n_series)).astype(int)
    offsets = np.sort(
        np.stack([rng.choice(np.arange(1, h), n_flows - 2, replace=False) for h in horizon]),
        axis=1,
    )
    days = np.hstack((np.zeros((n_series, 1), int), offsets, horizon[:, None]))
    drift = rng.normal(0.06, 0.15, n_series)
    vol = rng.uniform(0.05, 0.6, n_series)
    amounts = np.empty((n_series, n_flows))
    value = rng.uniform(1e3, 1e6, n_series)
    amounts[:, 0] = -value
    for j in range(1, n_flows):
        years = (days[:, j] - days[:, j - 1]) / 365.0
        growth = (drift - vol**2 / 2) * years + vol * np.sqrt(years) * rng.standard_normal(n_series)
        value = value * np.exp(growth)
        if j == n_flows - 1:
            amounts[:, j] = value
            break
        contribute = rng.random(n_series) < 0.6
        flow = np.where(
            contribute,
            -rng.uniform(0.0, 0.3, n_series) * value,
            rng.uniform(0.0, 0.5, n_series) * value,
        )
        value = value - flow
        amounts[:, j] = flow
    dates = start[:, None] + days.astype("timedelta64[D]")
    return pd.DataFrame(
        {
            "entity": np.repeat(np.arange(n_series), n_flows),
            "date": pd.to_datetime(dates.ravel()),
            "amount": amounts.ravel(),
        }
    )


def _relative_npv(dates: list[dt.date], amounts: list[float], rate: float) -> float:
    """NPV at rate over the sum of |discounted flows| (Actual/365), computed in logs."""
    years = np.array([(d - dates[0]).days for d in dates]) / 365.0
    cf = np.asarray(amounts)
    log_abs = np.log(np.abs(cf)) - years * np.log1p(rate)
    weights = np.exp(log_abs - log_abs.max())
    return float(np.sum(np.sign(cf) * weights) / np.sum(weights))


def _timed(fn) -> tuple[float, float, object]:
    """(CPU seconds, wall seconds, result) of one call with the garbage collector off."""
    gc.collect()
    gc.disable()
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        result = fn()
        return time.process_time() - cpu, time.perf_counter() - wall, result
    finally:
        gc.enable()


def run(repeats: int = 15) -> dict:
    """Time both solvers (interleaved, best of `repeats`) and compare their rates."""
    flows = make_flows()
    groups = flows.groupby("entity", sort=True)
    series = [
        ([dt.date.fromisoformat(str(d)[:10]) for d in g["date"]], g["amount"].tolist())
        for _, g in groups
    ]

    def ours_call() -> pd.Series:
        return xirr_many(flows)

    def loop() -> list:
        return [pyxirr.xirr(d, a, silent=True) for d, a in series]

    sides = {"ours": ours_call, "pyxirr": loop}
    results = {name: fn() for name, fn in sides.items()}  # warm-up, untimed
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    wall: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(max(1, repeats)):
        for name in list(sides)[:: 1 if i % 2 == 0 else -1]:
            c, w, results[name] = _timed(sides[name])
            cpu[name].append(c)
            wall[name].append(w)
    ours, theirs = results["ours"], results["pyxirr"]
    ours_time, pyxirr_time = min(cpu["ours"]), min(cpu["pyxirr"])
    paired = np.array(cpu["pyxirr"]) / np.array(cpu["ours"])
    ours = ours.to_numpy()
    theirs = np.array([np.nan if r is None else r for r in theirs], dtype=float)
    both = np.isfinite(ours) & np.isfinite(theirs)
    diff = np.abs(ours[both] - theirs[both]) / np.maximum(1.0, np.abs(theirs[both]))
    worst = int(np.flatnonzero(both)[np.argmax(diff)]) if both.any() else 0
    return {
        "series": len(series),
        "flows_per_series": N_FLOWS,
        "repeats": max(1, repeats),
        "xirr_many_s": ours_time,
        "pyxirr_loop_s": pyxirr_time,
        "ratio_pyxirr_over_ours": pyxirr_time / ours_time,
        "ratio_median_of_pairs": float(np.median(paired)),
        "ratio_worst_pair": float(paired.min()),
        "xirr_many_wall_s": min(wall["ours"]),
        "pyxirr_loop_wall_s": min(wall["pyxirr"]),
        "ratio_wall": min(wall["pyxirr"]) / min(wall["ours"]),
        "load_average_1min": os.getloadavg()[0],
        "roots_ours": int(np.isfinite(ours).sum()),
        "roots_pyxirr": int(np.isfinite(theirs).sum()),
        "pyxirr_only": int((np.isfinite(theirs) & ~np.isfinite(ours)).sum()),
        "max_abs_diff": float(np.max(np.abs(ours[both] - theirs[both]), initial=0.0)),
        "max_rel_diff": float(np.max(diff, initial=0.0)),
        "worst_series_npv_ours": _relative_npv(*series[worst], ours[worst]),
        "worst_series_npv_pyxirr": _relative_npv(*series[worst], theirs[worst]),
    }


if __name__ == "__main__":
    figures = run(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
