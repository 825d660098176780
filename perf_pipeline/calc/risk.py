"""Risk metrics over a period, for one entity or thousands at once.

Definitions (docs/methodology.md, "Risk metrics"), on the n non-null daily returns
r_1..r_n of an entity (null days are left out, together with the benchmark's return on
those days); P = periods_per_year (default 252); rf = annual risk-free rate;
rf_d = (1 + rf)^(1/P) - 1; std/var/cov use ``ddof`` (default 0, population):

    annualized_return            prod(1 + r_i)^(P/n) - 1
    volatility                   std(r, ddof) * sqrt(P)
    downside_deviation           sqrt(mean over all n of min(r_i - rf_d, 0)^2) * sqrt(P)
    sharpe_ratio                 (annualized_return - rf) / volatility
    sortino_ratio                (annualized_return - rf) / downside_deviation
    max_drawdown                 max_t (1 - I_t / max_{s<=t} I_s), I built from the returns
                                 with base I_0 = 1 included as a possible peak (positive)
    calmar_ratio                 annualized_return / max_drawdown
    beta                         cov(r, m, ddof) / var(m, ddof)
    alpha                        annualized_return - (rf + beta * (ann_bench - rf))
    tracking_error               std(r - m, ddof) * sqrt(P)
    information_ratio            (annualized_return - ann_bench) / tracking_error
    correlation                  cov(r, m) / sqrt(var(r) var(m))  (Pearson)
    var_95                       -quantile(r, 0.05), linear interpolation (numpy's default)
    cvar_95                      -mean of the r_i <= quantile(r, 0.05)
    annualized_benchmark_return  prod(1 + m_i)^(P/n) - 1 on the entity's n days (ann_bench)

NaN policy: a ratio whose denominator's absolute value is below 1e-12 is NaN (never inf);
with n < 2 (or n - ddof < 1 for the dispersion figures) every metric is NaN; benchmark
metrics are NaN without a benchmark, or when the benchmark is NaN on any day on which the
entity has a return. Invalid arguments raise ValueError.

Layout: the kernels work on arrays of shape (entities, dates) so that every reduction runs
along a contiguous row, _BLOCK entities at a time (a loop over blocks of columns, each
block vectorized, so that a block's intermediates stay in cache). Within a block the
days are stored in run-major order (see _to_runs), padded with null days to whole runs:
sums do not depend on the order of their terms, and the linked index needs it. numpy sums
each row pairwise, in the same order whatever the block holds, and the linked index (see
_link_runs) does not depend on the number of rows either: the scalar and the many-entity
forms agree bit for bit (but for the BLAS sums of a benchmark shared by all rows, see
_shared_benchmark).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

RISK_METRICS: tuple[str, ...] = (
    "annualized_return",
    "volatility",
    "downside_deviation",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "calmar_ratio",
    "beta",
    "alpha",
    "tracking_error",
    "information_ratio",
    "correlation",
    "var_95",
    "cvar_95",
    "annualized_benchmark_return",
)
_TINY = 1e-12
_VAR_LEVEL = 0.05
_DRAWDOWN_COLUMNS = ("max_drawdown", "peak_date", "trough_date", "recovery_date")
_BLOCK = 128  # entities per block (64 to 160 time alike on 2,520 days: 14 MB of buffers)
_RUN = 16  # days per run in _link_runs and _max_drawdown_of_returns
_TAIL_Z = 1.2  # candidates for the 5 % quantile: dev below -1.2 standard deviations


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, NaN where |den| < 1e-12 or either side is NaN: a ratio is never inf."""
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=np.abs(den) >= _TINY)  # NaN >= x is False
    return out


def _log_growth(xz: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Row-wise log prod(1 + x) for (N, T) returns with null days set to 0; NaN if negative.

    Computed as sum(log1p(x)): log1p keeps the digits of small daily returns that 1 + x
    would round away, and a sum of logs cannot overflow or underflow over long periods
    where a raw product can. A return below -1 makes 1 + x negative: the product's sign is
    then the parity of such days (those rows are redone with log|1 + x|). scratch: an
    (N, T) buffer that is overwritten.
    """
    log_sum = np.log1p(xz, out=scratch).sum(axis=1)
    odd = np.isnan(log_sum)  # only a return below -1 makes log1p NaN here
    if odd.any():
        bad = xz[odd]
        below = bad < -1.0
        redo = np.log1p(np.where(below, -2.0 - bad, bad)).sum(axis=1)
        redo[below.sum(axis=1) % 2 == 1] = np.nan
        log_sum[odd] = redo
    return log_sum


def _annualized(log_growth: np.ndarray, n: np.ndarray, periods_per_year: float) -> np.ndarray:
    """prod(1 + x)^(P/n) - 1 from log_growth = log prod(1 + x), as expm1(P/n * log_growth).

    expm1 keeps the digits of a result near 0. A NaN log (a negative product, which has no
    real (P/n)-th root) gives NaN.
    """
    return np.expm1(log_growth * (periods_per_year / n))


def _centre(xz: np.ndarray, valid: np.ndarray, n: np.ndarray, out: np.ndarray) -> np.ndarray:
    """xz minus its row mean on valid days, 0 on null days, into out (first pass of two).

    Second moments are sums of products of these centred values, never E[x^2] - E[x]^2,
    which loses every digit when the mean is large against the spread (daily returns of a
    steady fund) and can even come out negative. xz must be 0 on null days; valid is the
    1.0 / 0.0 mask of valid days (multiplying finite values by it is exact, and cheaper than
    a masked copy).
    """
    np.subtract(xz, (xz.sum(axis=1) / n)[:, None], out=out)
    return np.multiply(out, valid, out=out)


def _shared_benchmark(
    m: np.ndarray, valid: np.ndarray, n: np.ndarray, out: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log growth, centred returns (into out) and availability of one benchmark m (T,) per row.

    For rows that share one benchmark, finite and above -1 where not NaN: the sums of m and
    log1p(m) over each row's valid days are one matrix product of the 1.0 / 0.0 mask of
    valid days (N, T) with the two (T,) vectors, instead of two (N, T) copies of the
    benchmark. (BLAS may order those sums differently for one row than for many: they can
    differ in the last bit.) Returns the log of prod(1 + m) over the row's valid days, m
    minus its mean over them (0 on null days, as _centre), and whether m has a value on
    every valid day of the row.
    """
    gaps = np.isnan(m)
    values = np.where(gaps, 0.0, m)
    sums = valid @ np.stack([values, np.log1p(values)], axis=1)
    ok = ~np.any(valid[:, gaps], axis=1)
    np.subtract(values, (sums[:, 0] / n)[:, None], out=out)
    np.multiply(out, valid, out=out)
    return sums[:, 1], out, ok


def _sum_squares(x: np.ndarray) -> np.ndarray:
    """Row-wise sum of x^2 without a temporary (all terms >= 0: no cancellation)."""
    return np.einsum("ij,ij->i", x, x)


def _runs(n_days: int) -> int:
    """The number of runs of _RUN days that cover n_days (at least one)."""
    return max(-(-n_days // _RUN), 1)


def _to_runs(days: np.ndarray, out: np.ndarray, fill: float) -> np.ndarray:
    """Rows of days (N, T) copied into out (N, _RUN * _runs(T)) in run-major order.

    Day k * _RUN + j goes to column j * _runs(T) + k: out.reshape(N, _RUN, -1)[:, j, k].
    The columns of the days past T get fill.
    """
    n_rows, n_days = days.shape
    by_day = out.reshape(n_rows, _RUN, -1).transpose(0, 2, 1)  # [:, k, j]: day k * _RUN + j
    whole, rest = divmod(n_days, _RUN)
    by_day[:, whole:] = fill
    np.copyto(by_day[:, :whole], days[:, : whole * _RUN].reshape(n_rows, whole, _RUN))
    if rest:
        by_day[:, whole, :rest] = days[:, whole * _RUN :]
    return out


def _link_runs(xz: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Performance index I_t = prod_{s<=t} (1 + x_s) of returns in run-major order, by runs.

    xz: (N, _RUN * c) returns with null days 0, in the order of _to_runs. out, a
    (_RUN, N, c) buffer, receives the running product within each run, day k * _RUN + j
    at [j, :, k]; the returned (N, c) scale holds the product of the runs before each run,
    so that I_{k * _RUN + j} = scale[:, k] * out[j, :, k].
    np.cumprod along a row is one chain of dependent multiplications, bound by their
    latency (about 3 ns a point) however the rows are laid out. Here the products within
    every run are formed for all runs of all rows at once (_RUN - 1 vectorized steps over
    contiguous (N, c) slabs, hence the layout) and only the chain of run totals is a
    _RUN-th as long. That associates the product differently (g_1 ... g_32 =
    (g_1 ... g_16)(g_17 ... g_32)), which moves the levels by a few ulps from np.cumprod's,
    with the same error bound; the result does not depend on the number of rows.
    """
    n_rows = xz.shape[0]
    np.add(xz.reshape(n_rows, _RUN, -1).transpose(1, 0, 2), 1.0, out=out)
    for j in range(1, _RUN):
        np.multiply(out[j - 1], out[j], out=out[j])
    scale = np.ones((n_rows, out.shape[2]))
    np.cumprod(out[-1, :, :-1], axis=1, out=scale[:, 1:])
    return scale


def _by_day(runs: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The index levels scale[:, k] * runs[j, :, k] of _link_runs, rows by day (N, _RUN * c)."""
    levels = runs * scale[None, :, :]
    return levels.transpose(1, 2, 0).reshape(runs.shape[1], -1)


def _index_rows(xz: np.ndarray) -> np.ndarray:
    """Performance index (N, T + 1) from returns (N, T) with null days set to 0: I_0 = 1."""
    n_rows, n_days = xz.shape
    runs = np.empty((_RUN, n_rows, _runs(n_days)))
    scale = _link_runs(_to_runs(xz, np.empty((n_rows, runs[:, 0].size)), 0.0), runs)
    index = np.empty((n_rows, n_days + 1))
    index[:, 0] = 1.0
    index[:, 1:] = _by_day(runs, scale)[:, :n_days]
    return index


def _drawdown(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drawdown 1 - I_t / max_{s<=t} I_s and the running peak, row-wise on a NaN-free index.

    Written as 1 - I/peak, not (peak - I)/peak: both round alike, and at a new high I/peak
    is exactly 1, so the drawdown there is exactly 0. A non-positive peak gives NaN.
    """
    peak = np.maximum.accumulate(index, axis=1)
    relative = np.full(index.shape, np.nan)
    np.divide(index, peak, out=relative, where=peak > 0)
    return 1.0 - relative, peak


def _worst_ratio(level: np.ndarray, floor: float | np.ndarray) -> np.ndarray:
    """Row-wise min_t I_t / max(floor, max_{s<=t} I_s) (floor: a scalar or one per row)."""
    peak = np.maximum(np.maximum.accumulate(level, axis=1), np.reshape(floor, (-1, 1)))
    return np.divide(level, peak, out=peak).min(axis=1)


def _max_drawdown_of_returns(xz: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Row-wise max drawdown of the index linked from xz (null days 0), base I_0 = 1 included.

    The figure 1 - min_t I_t / P_t, P_t = max(1, max_{s<=t} I_s) (the base is a floor under
    the running peak; 0 at the base), as _drawdown(_index_rows(xz)).max(axis=1) gives it,
    without the running peak, a chain of dependent comparisons as slow as np.cumprod. Take
    the runs of _link_runs with highs H_k, lows L_k and the peak before them
    B_k = max(1, H_0 .. H_{k-1}). In run k, P_t = max(B_k, h_t) (h_t: the high within the
    run so far), so for positive levels I_t / P_t = min(I_t / B_k, I_t / h_t): the deepest
    point is the smaller of A = min_k L_k / B_k and each run's own min_t I_t / h_t, which
    is at least L_k / H_k. Only the runs with L_k / H_k < A (a few in a thousand rows:
    large drawdowns last many runs) are scanned point by point. Division rounds
    monotonically, so every comparison holds in floating point and the result is exactly
    the point-by-point one. Rows with a non-positive or non-finite level (returns of -100 %
    or below, overflow) are scanned whole. xz: returns with null days 0 in the run-major
    order of _to_runs; level: a (_RUN, N, c) buffer for _link_runs, overwritten.
    """
    scale = _link_runs(xz, level)
    # level is the index within each run; scaling is monotone for a positive scale, so
    # the runs' extremes scale exactly and the full index is never formed.
    high = level.max(axis=0) * scale
    low = level.min(axis=0) * scale
    before = np.ones_like(high)
    before[:, 1:] = high[:, :-1]
    np.maximum.accumulate(before, axis=1, out=before)
    worst = (low / before).min(axis=1)
    regular = np.all(scale > 0.0, axis=1) & np.all(low > 0.0, axis=1)
    regular &= np.all(high < np.inf, axis=1)
    rows, runs = np.nonzero((low / high < worst[:, None]) & regular[:, None])
    if rows.size:
        inside = level[:, rows, runs].T * scale[rows, runs][:, None]
        np.minimum.at(worst, rows, _worst_ratio(inside, before[rows, runs]))
    if not regular.all():
        worst[~regular] = _worst_ratio(_by_day(level[:, ~regular], scale[~regular]), 1.0)
    return 1.0 - np.minimum(worst, 1.0)


def _drawdown_positions(
    index: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise max drawdown and the positions of its peak, trough and recovery (-1: none).

    Trough: the first point of the largest drawdown. Peak: the last point at or before the
    trough where the index stood at its running high (as pyfolio reports it). Recovery: the
    first point after the trough with I_t >= the peak level (to a relative 1e-12). A
    drawdown of at most 1e-12 (rounding of a linked index) counts as none: all three
    positions are -1.
    """
    dd, peak = _drawdown(index)
    rows = np.arange(index.shape[0])
    cols = np.arange(index.shape[1])
    trough = np.argmax(dd, axis=1)
    mdd = dd[rows, trough]
    level = peak[rows, trough]
    # The running high holds copies of index values, so equality here is exact.
    last_high = np.maximum.accumulate(np.where(index == peak, cols, 0), axis=1)
    peak_pos = last_high[rows, trough]
    # A relative 1e-12 slack: an index linked from returns that were computed from prices
    # comes back to its old high only up to rounding (1.1 * 95/110 * 110/95 != 1.1).
    recovered = (index >= level[:, None] * (1.0 - _TINY)) & (cols > trough[:, None])
    recovery = np.where(recovered.any(axis=1), np.argmax(recovered, axis=1), -1)
    none = ~(mdd > _TINY)
    return (
        mdd,
        np.where(none, -1, peak_pos),
        np.where(none, -1, trough),
        np.where(none, -1, recovery),
    )


def _lower_tail(
    xz: np.ndarray,
    dev: np.ndarray,
    spread: np.ndarray,
    invalid: np.ndarray,
    n: np.ndarray,
    level: float,
    cut: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise linear-interpolation quantile of the n valid values, and the mean at or below it.

    Same arithmetic as np.quantile(method="linear"): virtual position h = (n - 1) * level,
    k = floor(h), g = h - k, and the lerp a + (b - a) g, taken from b's side when g >= 0.5
    so that it never overshoots b. Selecting from whole rows (np.partition) costs about
    9 ns a point; only the lowest values matter, so the candidates are the valid values
    with dev below -_TAIL_Z population standard deviations (about 12 % of a normal
    sample). dev = fl(x - mean) is monotone in x, so the candidates are the lowest values
    of the row, ties included; a row is kept only if they are at least the k + 2 values
    the lerp needs, else all its valid values are its candidates (short or skewed rows).
    The candidates are packed into a +inf-padded (N, width) array, partitioned at the
    largest position any row needs, and only that short left block is sorted.

    xz: returns with null days 0; dev: xz minus the row mean, 0 on null days; spread: the
    population standard deviation of each row; cut: an (N, T) bool buffer, overwritten.
    """
    n_rows = xz.shape[0]
    rows = np.arange(n_rows)
    h = (np.maximum(n, 1) - 1) * level
    k = np.floor(h).astype(np.intp)
    g = h - k
    k_next = np.minimum(k + 1, np.maximum(n - 1, 0))
    np.less(dev, (-_TAIL_Z * spread)[:, None], out=cut)  # null days: 0 < 0 is False
    row_starts = rows * xz.shape[1]
    picked = np.flatnonzero(cut)  # ascending, so each row's picks are one stretch
    count = np.diff(np.searchsorted(picked, row_starts), append=picked.size)
    short = count <= k_next
    if short.any():
        cut[short] = ~invalid[short]
        picked = np.flatnonzero(cut)
        count = np.diff(np.searchsorted(picked, row_starts), append=picked.size)
    width = max(int(count.max()), 1)
    low = np.full((n_rows, width), np.inf)
    slots = np.arange(picked.size) + np.repeat(rows * width - (np.cumsum(count) - count), count)
    np.put(low, slots, xz.ravel()[picked])
    last = int(k_next.max())
    low.partition(last, axis=1)
    head = np.sort(low[:, : last + 1], axis=1)
    a, b = head[rows, k], head[rows, k_next]
    diff = b - a
    q = np.where(g >= 0.5, b - diff * (1.0 - g), a + diff * g)
    tail = low <= q[:, None]  # padding holds +inf and never counts
    cvar = np.add.reduce(low, axis=1, where=tail) / np.count_nonzero(tail, axis=1)
    return q, cvar


def _validate(
    r: np.ndarray, m: np.ndarray | None, risk_free_rate: float, periods_per_year: float, ddof: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Check the arguments; return r as an (N, T) view, m as None, (T,) or an (N, T) view."""
    r = np.asarray(r, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"r must have shape (T, N); got {r.shape}")
    if not (np.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"periods_per_year must be positive; got {periods_per_year!r}")
    if not (np.isfinite(risk_free_rate) and risk_free_rate > -1):
        raise ValueError(f"risk_free_rate must be a finite rate above -1; got {risk_free_rate!r}")
    if int(ddof) != ddof or ddof < 0:
        raise ValueError(f"ddof must be a non-negative integer; got {ddof!r}")
    if m is None:
        return r.T, None
    m = np.asarray(m, dtype=float)
    if m.shape == r.shape[:1]:
        # Shared as a vector (see _shared_benchmark) unless it has a value of -1 or below or
        # an infinite one: then a full (N, T) view takes the general path.
        shareable = bool(np.all(np.isnan(m) | ((m > -1.0) & (m < np.inf))))
        return r.T, m if shareable else np.broadcast_to(m, r.T.shape)
    if m.shape == r.shape:
        return r.T, m.T
    raise ValueError(f"m must be None or have shape {r.shape[:1]} or {r.shape}; got {m.shape}")


def risk_metrics_array(
    r: np.ndarray,
    m: np.ndarray | None = None,
    risk_free_rate: float = 0.0,
    periods_per_year: float = 252,
    ddof: int = 0,
) -> dict[str, np.ndarray]:
    """Every RISK_METRICS figure for each column of r, vectorized across columns.

    r: daily returns, shape (T, N) (dates x entities), NaN on null days, which are left out
    per column (with the benchmark's return on those days), so columns may have different
    numbers n of valid days. m: None, shape (T,) (one benchmark for all columns) or (T, N)
    (one per column). Returns a dict RISK_METRICS key -> array of shape (N,). Formulas, ddof,
    annualization and the NaN policy: see the module docstring.

    The columns are taken _BLOCK columns at a time (a loop over blocks, not over entities),
    so that every intermediate array of a block stays in cache while all its figures are
    computed; r and m are read once, never copied whole.
    """
    x, bench = _validate(r, m, risk_free_rate, periods_per_year, ddof)
    n_entities, n_days = x.shape
    out = {key: np.full(n_entities, np.nan) for key in RISK_METRICS}
    if n_entities == 0 or n_days == 0:
        return out
    width = min(n_entities, _BLOCK)
    scratch = _Scratch(
        work=np.empty((4, width, _RUN * _runs(n_days))),
        flags=np.empty((3, width, _RUN * _runs(n_days)), dtype=bool),
        level=np.empty((_RUN, width, _runs(n_days))),
    )
    if bench is not None and bench.ndim == 1:
        bench = _to_runs(bench[None, :], np.empty((1, _RUN * _runs(n_days))), np.nan)[0]
    with np.errstate(all="ignore"):
        for start in range(0, n_entities, _BLOCK):
            block = slice(start, min(start + _BLOCK, n_entities))
            figures = _block_figures(
                x[block],
                bench if bench is None or bench.ndim == 1 else bench[block],
                float(risk_free_rate),
                float(periods_per_year),
                ddof,
                scratch,
            )
            for key, value in figures.items():
                out[key][block] = value
    return out


class _Scratch(NamedTuple):
    """Buffers reused by every block: (count, rows, padded T) floats and bools, run slabs."""

    work: np.ndarray
    flags: np.ndarray
    level: np.ndarray


def _block_figures(
    xb: np.ndarray,
    mb: np.ndarray | None,
    rf: float,
    p: float,
    ddof: int,
    scratch: _Scratch,
) -> dict[str, np.ndarray]:
    """RISK_METRICS of the rows of one block: returns xb (B, T), benchmark mb (T,) or (B, T)."""
    size = xb.shape[0]
    xz, dev, tmp, valid = (a[:size] for a in scratch.work)
    invalid, cut, gaps = (a[:size] for a in scratch.flags)
    level = scratch.level[:, :size]
    rf_d = (1.0 + rf) ** (1.0 / p) - 1.0
    sqrt_p = np.sqrt(p)

    _to_runs(xb, xz, np.nan)  # the only read of r; the padding days count as null days
    np.isnan(xz, out=invalid)
    np.copyto(valid, np.logical_not(invalid, out=cut))  # 1.0 on valid days, 0.0 on null days
    n = valid.sum(axis=1).astype(np.intp)
    dof = (n - ddof).astype(float)
    dof[dof < 1] = np.nan
    # min(r - rf_d, 0) as fmin(r, rf_d) - rf_d (the same rounding): fmin returns the
    # non-NaN argument, so a null day gives rf_d - rf_d = 0 without a pass to mask it
    # (and with rf = 0 there is nothing to subtract).
    shortfall = np.fmin(xz, rf_d, out=tmp)
    if rf_d != 0.0:
        np.subtract(shortfall, rf_d, out=shortfall)
    downside = np.sqrt(_sum_squares(shortfall) / n) * sqrt_p
    np.copyto(xz, 0.0, where=invalid)  # from here on the returns with null days set to 0
    dev = _centre(xz, valid, n, out=dev)
    squares = _sum_squares(dev)
    var = squares / dof
    vol = np.sqrt(var) * sqrt_p
    q, cvar = _lower_tail(xz, dev, np.sqrt(squares / n), invalid, n, _VAR_LEVEL, cut)
    ann = _annualized(_log_growth(xz, tmp), n, p)
    mdd = _max_drawdown_of_returns(xz, level)
    figures = {
        "annualized_return": ann,
        "volatility": vol,
        "downside_deviation": downside,
        "sharpe_ratio": _ratio(ann - rf, vol),
        "sortino_ratio": _ratio(ann - rf, downside),
        "max_drawdown": mdd,
        "calmar_ratio": _ratio(ann, mdd),
        "var_95": -q,
        "cvar_95": -cvar,
    }

    if mb is not None:
        bz = xz  # the returns are no longer needed
        if mb.ndim == 1:
            log_b, dev_b, bench_ok = _shared_benchmark(mb, valid, n, bz)
        else:
            _to_runs(mb, bz, np.nan)
            np.isnan(bz, out=gaps)
            bench_ok = ~np.any(np.greater(gaps, invalid, out=cut), axis=1)  # gap & ~invalid
            np.copyto(bz, 0.0, where=gaps)
            np.copyto(bz, 0.0, where=invalid)
            log_b = _log_growth(bz, tmp)
            dev_b = _centre(bz, valid, n, out=bz)
        ann_b = _annualized(log_b, n, p)
        var_b = _sum_squares(dev_b) / dof
        # Mixed signs: summed pairwise from the products, not accumulated in one go.
        cov = np.multiply(dev, dev_b, out=tmp).sum(axis=1) / dof
        beta = _ratio(cov, var_b)
        # Tracking error from the centred differences themselves (the mean of r - m is
        # the difference of the means): var(r) + var(m) - 2 cov(r, m) would cancel
        # catastrophically when r tracks m closely.
        dev_a = np.subtract(dev, dev_b, out=dev)
        te = np.sqrt(_sum_squares(dev_a) / dof) * sqrt_p
        # Rounding can push |correlation| a hair past 1; clip to its true range.
        corr = np.clip(_ratio(cov, np.sqrt(var * var_b)), -1.0, 1.0)
        bench_figures = {
            "beta": beta,
            "alpha": ann - (rf + beta * (ann_b - rf)),
            "tracking_error": te,
            "information_ratio": _ratio(ann - ann_b, te),
            "correlation": corr,
            "annualized_benchmark_return": ann_b,
        }
        for key, value in bench_figures.items():
            figures[key] = np.where(bench_ok, value, np.nan)

    too_short = n < 2
    for value in figures.values():
        value[too_short] = np.nan
    return figures


def _benchmark_array(
    returns: pd.DataFrame, benchmark: pd.Series | pd.DataFrame | None
) -> np.ndarray | None:
    """The benchmark aligned by label to returns' dates (and columns): NaN where it has none."""
    if benchmark is None:
        return None
    if isinstance(benchmark, pd.Series):
        aligned = benchmark.reindex(returns.index)
    elif isinstance(benchmark, pd.DataFrame):
        aligned = benchmark.reindex(index=returns.index, columns=returns.columns)
    else:
        raise ValueError(f"benchmark must be a Series, a DataFrame or None; got {type(benchmark)}")
    return aligned.to_numpy(dtype=float, na_value=np.nan)


def risk_metrics_many(
    returns: pd.DataFrame,
    benchmark: pd.Series | pd.DataFrame | None = None,
    risk_free_rate: float = 0.0,
    periods_per_year: float = 252,
    ddof: int = 0,
) -> pd.DataFrame:
    """RISK_METRICS for every column of returns (one row per date, one column per entity).

    benchmark: a Series of daily returns by date (one benchmark for all entities) or a
    DataFrame with the same dates and columns (one per entity), aligned by label; a date or
    column it lacks counts as a NaN benchmark return. Result: index = returns.columns,
    columns = RISK_METRICS. Definitions and NaN policy: see the module docstring.
    """
    figures = risk_metrics_array(
        returns.to_numpy(dtype=float, na_value=np.nan),
        _benchmark_array(returns, benchmark),
        risk_free_rate=risk_free_rate,
        periods_per_year=periods_per_year,
        ddof=ddof,
    )
    return pd.DataFrame(figures, index=returns.columns, columns=list(RISK_METRICS))


def risk_metrics(
    returns: pd.Series,
    benchmark: pd.Series | None = None,
    risk_free_rate: float = 0.0,
    periods_per_year: float = 252,
    ddof: int = 0,
) -> dict[str, float]:
    """RISK_METRICS of one entity's daily returns (NaN = null day), benchmark aligned by date.

    The one-column case of risk_metrics_many; definitions and NaN policy: module docstring.
    """
    row = risk_metrics_many(
        returns.to_frame(), benchmark, risk_free_rate, periods_per_year, ddof
    ).iloc[0]
    return {key: float(row[key]) for key in RISK_METRICS}


def max_drawdown(index) -> float:
    """max_t (1 - I_t / max_{s<=t} I_s) of a performance index, a positive fraction.

    index: array-like or Series of index levels; the first point is the base (a possible
    peak). NaN points are left out. 0 for a never-falling index; NaN with fewer than 2
    points or a non-positive running peak.
    """
    levels = np.asarray(index, dtype=float).ravel()
    levels = levels[~np.isnan(levels)]
    if levels.size < 2:
        return float("nan")
    with np.errstate(all="ignore"):
        return float(_drawdown(levels[None, :])[0].max())


def drawdown_details(index: pd.Series) -> dict:
    """Max drawdown of a performance index (Series by date) with its peak, trough, recovery.

    Keys: max_drawdown (as max_drawdown()), peak_date (last date at the running high before
    the trough), trough_date (first date of the deepest point), recovery_date (first date
    after the trough with I_t >= the peak level, to a relative 1e-12; NaT if not recovered).
    NaN levels are left out. For a zero drawdown (at most 1e-12) or fewer than 2 points all
    three dates are NaT.
    """
    levels = index.dropna()
    result = {"max_drawdown": max_drawdown(levels.to_numpy(dtype=float))}
    result.update(peak_date=pd.NaT, trough_date=pd.NaT, recovery_date=pd.NaT)
    if len(levels) < 2:
        return result
    with np.errstate(all="ignore"):
        _, peak, trough, recovery = _drawdown_positions(levels.to_numpy(dtype=float)[None, :])
    for key, pos in zip(_DRAWDOWN_COLUMNS[1:], (peak, trough, recovery), strict=True):
        result[key] = pd.Timestamp(levels.index[pos[0]]) if pos[0] >= 0 else pd.NaT
    return result


def drawdowns_many(returns: pd.DataFrame, base_date=None) -> pd.DataFrame:
    """Max drawdown with peak, trough and recovery dates for every column of daily returns.

    Each column's index starts at I = 1 on base_date (the day before the first row) and
    links its returns, a NaN return linking as 0. A peak at the base is reported as
    base_date (NaT when not given). Date rules as in drawdown_details. A column without any
    non-null return has NaN max_drawdown and NaT dates. Result: index = returns.columns,
    columns max_drawdown, peak_date, trough_date, recovery_date.
    """
    x = returns.to_numpy(dtype=float, na_value=np.nan).T
    valid = ~np.isnan(x)
    with np.errstate(all="ignore"):
        mdd, *positions = _drawdown_positions(_index_rows(np.where(valid, x, 0.0)))
    empty = ~valid.any(axis=1)
    mdd[empty] = np.nan
    # Position p of the index is date p - 1 of the frame (0 is the base); -1 maps to NaT.
    dates = np.concatenate(
        [
            pd.DatetimeIndex([base_date]).values,
            pd.DatetimeIndex(returns.index).values,
            pd.DatetimeIndex([pd.NaT]).values,
        ]
    )
    frame = {"max_drawdown": mdd}
    for key, pos in zip(_DRAWDOWN_COLUMNS[1:], positions, strict=True):
        frame[key] = dates[np.where(empty, -1, pos)]
    return pd.DataFrame(frame, index=returns.columns, columns=list(_DRAWDOWN_COLUMNS))
