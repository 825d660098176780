"""XIRR: the annual internal rate of return of dated cash flows, one series or many at once.

Contract
--------
For signed amounts CF_i on dates d_i (investor's side: money paid in is negative, money
received and the final value positive), the rate r in (-1, inf) solves

    NPV(r) = sum_i CF_i (1 + r) ** (-(d_i - d_0).days / 365) = 0

(Actual/365 from the earliest date d_0, as spreadsheet XIRR). Rows may come in any order;
times of day are ignored; amounts on the same date are summed; zero amounts are no flows.

Several roots: the many-entity form picks the root r minimising
|(1 + r) ** (h / 365) - 1 - near| per entity (near = the period rate to stay close to, default 0;
h = the horizon in days, default 365); `xirr` and the defaults pick the root closest to 0.

NaN policy: a rate is NaN, never inf and never -1, when there is no root, when the input is
degenerate, or when the root is not a float64 rate: 1 + r > 1.8e308 (overflow) or
1 + r < 1.1e-16, where r rounds to -1.0, the pole of NPV (a big loss over a few days; NPV has
a root there, and `log1p_rate` gives it). `xirr_many_detailed` also gives
`log1p_rate` = log(1 + r), finite in both cases: derive a period's own rate from it,
(1 + r) ** (h / 365) - 1 = expm1(log1p_rate * h / 365), not from `rate`. `status` says why a
rate is NaN:

    ok                 a root was found
    non_finite_input   an amount is NaN or +-inf, or a date is missing
    zero_flows         every amount (after summing per date) is 0
    too_few_flows      only one date with a non-zero amount
    no_sign_change     all non-zero flows have one sign: NPV never crosses 0
    no_root            the flows change sign, but NPV has no root in (-1, inf)
    rate_overflow      the selected root has 1 + r above float64's range
    rate_underflow     the selected root has 1 + r below 1.1e-16 (r would round to -1)

Method
------
The unknown is x = log(1 + r) (all of the real line), t_i = (d_i - d_0).days / 365 and
NPV is evaluated scaled, sum_i CF_i exp(-x (t_i - s)) with s = 0 for x >= 0 and s = t_n (the
last flow) for x < 0: the same sign as NPV, no exponent positive, nothing overflows. Every
root lies in [lo, hi] = [-log(S_<n / |CF_n|) / (t_n - t_{n-1}), log(S_>0 / |CF_0|) / t_1]
(S = sum of |CF| of the other flows). Per entity, vectorized over entities laid out one row
each in dense blocks (padding: amount 0 at the last time, so a row's sums never depend on the
other rows):

1. validate (statuses above);
2. two flows: x = log(-CF_1 / CF_0) / t_1;
3. Newton's iteration with the analytic derivative NPV'(x) = -sum_i (t_i - s) CF_i e^(...),
   its step N = -NPV / NPV' corrected by the analytic second derivative as Halley's,
   N / (1 + N NPV'' / (2 NPV')) (cubic convergence: a few steps fewer; plain N where the
   correction is not finite or turns the step around), from a Modified-Dietz-like guess,
   steps capped at 1 + |x| and kept in [lo, hi]; a root when the step is below
   1e-11 (1 + |x|) and |NPV| <= 1e-10 sum_i |discounted CF_i| (both relative: cents and
   billions behave alike);
4. the root is the only one when the investment balance never changes side at it (every
   partial sum of the discounted flows in time order, before the last, has the first flow's
   sign: Teichroew-Robichek-Montalbano; one sign change in the flows is such a case), or
   else when interval bounds prove it (`_unique_by_bounds`);
5. every other entity (Newton failed, or several roots possible): the sign of NPV on a
   601-point grid of x over [lo, hi] (asinh-spaced: 3e-4 apart near 0, 2.5-4% of |x| further
   out, 0 included), each sign change refined by Brent (`scipy.optimize.brentq`) on its
   bracket, then the selection rule above; no sign change: NaN, `no_root`.

Two roots in one grid interval (or a double root, where NPV touches 0 without crossing) can be
missed by the scan; a unique root never is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy.optimize import brentq

STATUSES = (
    "ok",
    "non_finite_input",
    "zero_flows",
    "too_few_flows",
    "no_sign_change",
    "no_root",
    "rate_overflow",
    "rate_underflow",
)

_DAYS_PER_YEAR = 365.0
_NPV_RTOL = 1e-10
_STEP_RTOL = 1e-11
_MAX_NEWTON = 60
_SIGN_TOL = 1e-9
_GRID_POINTS = 601
_GRID_SCALE = 0.01
_BOUND_MARGIN = 1e-3
_ROOT_MERGE_RTOL = 1e-9
_BOX_POINTS = 31
_BOX_SPLIT = 4
_BOX_ROUNDS = 6
_BOX_MAX_OPEN = 32
_BLOCK_CELLS = 65_536  # cells (rows x width) solved at once: the temporaries stay in cache


class _Rows(NamedTuple):
    """Flows of k entities, one row each in time order (k x width): t in years from the
    entity's first flow, cf the amounts; padding after the n real flows has cf = 0 and
    t = the row's last t."""

    t: np.ndarray
    cf: np.ndarray
    n: np.ndarray

    @property
    def horizon(self) -> np.ndarray:
        return self.t[:, -1]

    def take(self, keep: np.ndarray) -> _Rows:
        return _Rows(self.t[keep], self.cf[keep], self.n[keep])


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", a, b)


def _discount(rows: _Rows, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(exp(-x (t - s)) per flow, s per row): s = 0 where x >= 0, the horizon where x < 0."""
    s = np.where(x < 0, rows.horizon, 0.0)
    disc = np.subtract(s[:, None], rows.t)
    disc *= x[:, None]
    return np.exp(disc, out=disc), s


def _root_bounds(rows: _Rows) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] in x holding every root, widened so that NPV is non-zero at both ends."""
    abs_cf = np.abs(rows.cf)
    total = abs_cf.sum(axis=1)
    k = np.arange(len(rows.n))
    first, last = abs_cf[:, 0], abs_cf[k, rows.n - 1]
    with np.errstate(divide="ignore"):
        hi = np.maximum(np.log((total - first) / first) / rows.t[:, 1], 0.0)
        lo = np.log((total - last) / last) / (rows.horizon - rows.t[k, rows.n - 2])
        lo = np.minimum(-lo, 0.0)
    return lo - _BOUND_MARGIN * (1 - lo), hi + _BOUND_MARGIN * (1 + hi)


def _guess(rows: _Rows, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Modified-Dietz-like start: gain over time-weighted capital (the flows on the first
    flow's side, each weighted by the share of the horizon it stays), as an annual log rate."""
    side = np.sign(rows.cf[:, 0])
    capital = np.maximum(
        side[:, None] * rows.cf, 0.0
    )  # the flows on the first flow's side, unsigned
    weighted = _rowdot(capital, rows.horizon[:, None] - rows.t) / rows.horizon
    period = np.maximum(-side * rows.cf.sum(axis=1) / weighted, -0.99)
    return np.clip(np.log1p(period) / rows.horizon, lo, hi)


def _newton(rows: _Rows, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Newton's iteration with Halley's correction in x for all rows at once (step 3); NaN
    where it does not settle. Once fewer than a quarter of the rows still move, the arrays
    shrink to those (copying costs about one step)."""
    x = _guess(rows, lo, hi)
    root = np.full(len(x), np.nan)
    members = np.arange(len(x))  # the rows of `sub`
    sub, cf_t = rows, rows.cf * rows.t
    cf_tt = cf_t * rows.t
    for _ in range(_MAX_NEWTON):
        disc, s = _discount(sub, x)
        npv = _rowdot(sub.cf, disc)
        moment = _rowdot(cf_t, disc)
        slope = s * npv - moment  # d NPV / dx, scaled as NPV
        curve = _rowdot(cf_tt, disc) - s * (2 * moment - s * npv)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = -npv / slope
            halley = step / (1.0 + 0.5 * step * curve / slope)
        step = np.where(np.isfinite(halley) & (halley * step > 0), halley, step)
        limit = 1.0 + np.abs(x)
        x = np.clip(x + np.clip(step, -limit, limit), lo[members], hi[members])
        fresh = (np.abs(step) <= _STEP_RTOL * limit) & np.isnan(root[members])
        root[members[fresh]] = x[fresh]
        going = np.isnan(root[members]) & np.isfinite(step)
        if not going.any():
            break
        if going.sum() < len(members) // 4:  # else the settled rows stay: they stay at a root
            members, sub, x = members[going], sub.take(going), x[going]
            cf_t, cf_tt = cf_t[going], cf_tt[going]
    return root


def _certify(rows: _Rows, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is a root, is certainly the only root) at x per row (steps 3 and 4), from one
    evaluation of the discounted flows."""
    disc, _ = _discount(rows, np.nan_to_num(x))
    disc *= rows.cf
    scale = np.abs(disc).sum(axis=1)
    balance = np.cumsum(disc, axis=1)
    is_root = np.isfinite(x) & (np.abs(balance[:, -1]) <= _NPV_RTOL * scale)
    balance *= (np.sign(rows.cf[:, 0]) / scale)[:, None]
    before_last = np.arange(rows.t.shape[1]) < (rows.n - 1)[:, None]
    return is_root, is_root & ~((balance <= _SIGN_TOL) & before_last).any(axis=1)


def _end_sums(rows: _Rows, row: np.ndarray, y: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(4 x m) sums P, N, P1, N1 at points y of rows `row`: with u = t - shift and terms
    w = CF exp(-y u), P and N are the sums of the positive terms and of -(the negative ones),
    P1 and N1 the same sums of |u| w. About _BLOCK_CELLS cells at a time (cache-sized)."""
    sums = np.empty((4, len(row)))
    step = max(1, _BLOCK_CELLS // rows.t.shape[1])
    for j in range(0, len(row), step):
        part = slice(j, j + step)
        u = rows.t[row[part]] - shift[part, None]
        disc = np.exp(-y[part, None] * u)
        weighted = np.abs(u, out=u)
        weighted *= disc
        cf = rows.cf[row[part]]
        pos, neg = np.maximum(cf, 0.0), np.maximum(-cf, 0.0)
        sums[:, part] = [_rowdot(w, v) for v in (disc, weighted) for w in (pos, neg)]
    return sums


def _unique_by_bounds(rows: _Rows, x: np.ndarray) -> np.ndarray:
    """True where interval bounds prove the root x the only one in [lo, hi] (step 4).

    [lo, hi] is cut into _BOX_POINTS - 1 intervals [a, b] (`_grid`, none straddling 0). With
    s = the horizon for b <= 0 and 0 otherwise, every u = t - s has one sign, so each term
    CF exp(-y u) is monotone on [a, b] and P, N, P1, N1 (`_end_sums`) lie between their
    values at a and b. An interval is settled when it certainly holds no root (P above N
    throughout, or below; or NPV monotone there, by the same test on P1 and N1, with one
    sign at both ends) or, if it holds x, when NPV is monotone there. An interval not
    settled is cut in _BOX_SPLIT, up to _BOX_ROUNDS times; a row left with any, or with more
    than _BOX_MAX_OPEN at once, is not certified. "Throughout" means beyond 1e-9 of the
    sums, far above rounding.
    """
    k, mid = len(x), _BOX_POINTS // 2
    grid = _grid(*_root_bounds(rows), _BOX_POINTS)  # column mid is 0
    shift = np.where(grid <= 0, rows.horizon[:, None], 0.0)
    sums = _end_sums(rows, np.repeat(np.arange(k), _BOX_POINTS), grid.ravel(), shift.ravel())
    sums = sums.reshape(4, k, _BOX_POINTS)
    at_a, at_b = sums[:, :, :-1].copy(), sums[:, :, 1:]
    at_a[:, :, mid] = _end_sums(rows, np.arange(k), np.zeros(k), np.zeros(k))  # 0, right side
    at_a, at_b = at_a.reshape(4, -1), at_b.reshape(4, -1)
    row = np.repeat(np.arange(k), _BOX_POINTS - 1)
    a, b = grid[:, :-1].ravel(), grid[:, 1:].ravel()
    given_up = np.zeros(k, dtype=bool)
    for _ in range(_BOX_ROUNDS):
        low, high = np.minimum(at_a, at_b), np.maximum(at_a, at_b)
        gap = _SIGN_TOL * (high[0::2] + high[1::2])
        apart = (low[0::2] - high[1::2] > gap) | (low[1::2] - high[0::2] > gap)  # (2, m)
        f_a, f_b = at_a[0] - at_a[1], at_b[0] - at_b[1]
        one_sign = (f_a * f_b > 0) & (np.minimum(np.abs(f_a), np.abs(f_b)) > gap[0])
        holds = (a <= x[row]) & (x[row] < b)
        open_ = ~np.where(holds, apart[1], apart[0] | (apart[1] & one_sign))
        given_up |= np.bincount(row[open_], minlength=k) > _BOX_MAX_OPEN
        open_ &= ~given_up[row]
        row, a, b, at_a, at_b = row[open_], a[open_], b[open_], at_a[:, open_], at_b[:, open_]
        if row.size == 0:
            break
        inner = a[:, None] + (b - a)[:, None] * (np.arange(1, _BOX_SPLIT) / _BOX_SPLIT)
        shift = np.where(b <= 0, rows.horizon[row], 0.0)
        at_inner = _end_sums(
            rows, np.repeat(row, _BOX_SPLIT - 1), inner.ravel(), np.repeat(shift, _BOX_SPLIT - 1)
        ).reshape(4, len(row), _BOX_SPLIT - 1)
        ends = np.hstack((a[:, None], inner, b[:, None]))
        at_ends = np.concatenate((at_a[:, :, None], at_inner, at_b[:, :, None]), axis=2)
        row = np.repeat(row, _BOX_SPLIT)
        a, b = ends[:, :-1].ravel(), ends[:, 1:].ravel()
        at_a, at_b = at_ends[:, :, :-1].reshape(4, -1), at_ends[:, :, 1:].reshape(4, -1)
    given_up[row] = True
    return ~given_up


def _grid(lo: np.ndarray, hi: np.ndarray, points: int = _GRID_POINTS) -> np.ndarray:
    """Per-row x grid (k x points), asinh-spaced on [lo, 0] and [0, hi], 0 included."""
    share = np.linspace(0.0, 1.0, points // 2 + 1)
    neg = np.sinh(np.outer(np.arcsinh(lo / _GRID_SCALE), share[::-1])) * _GRID_SCALE
    pos = np.sinh(np.outer(np.arcsinh(hi / _GRID_SCALE), share[1:])) * _GRID_SCALE
    return np.hstack((neg, pos))


def _entity_npv(t: np.ndarray, cf: np.ndarray) -> Callable[[float], float]:
    """Scaled NPV of one entity's flows as a function of x (for Brent)."""
    return lambda x: float(np.dot(cf, np.exp(-x * (t - (t[-1] if x < 0 else 0.0)))))


def _brent(npv: Callable[[float], float], a: float, b: float) -> float:
    """The root in [a, b] of a sign change seen on the grid; if this evaluation (summed in
    another order) sees one sign at both ends, one end is a root to rounding: the smaller."""
    at_a, at_b = npv(a), npv(b)
    if at_a * at_b > 0 or at_a == 0 or at_b == 0:
        return a if abs(at_a) <= abs(at_b) else b
    return brentq(npv, a, b, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200)


def _scan(
    rows: _Rows, known: np.ndarray, near: np.ndarray, horizon_days: np.ndarray
) -> tuple[np.ndarray, ...]:
    """(x, number of distinct roots) per row by the grid scan and Brent (step 5); a `known`
    root (NaN: none) is kept, and the grid interval holding it is not refined again."""
    grid = _grid(*_root_bounds(rows))
    signs = np.empty_like(grid)
    step = max(1, _BLOCK_CELLS // rows.t.size)
    for j in range(0, grid.shape[1], step):
        g = grid[:, j : j + step]
        shift = np.where(g < 0, rows.horizon[:, None], 0.0)
        disc = np.exp(g[:, :, None] * (shift[:, :, None] - rows.t[:, None, :]))
        signs[:, j : j + step] = np.sign(np.einsum("ijk,ik->ij", disc, rows.cf))
    x, count = np.full(len(grid), np.nan), np.zeros(len(grid), dtype=np.int64)
    for i in range(len(grid)):
        found = list(grid[i, signs[i] == 0])
        changes = signs[i, :-1] * signs[i, 1:] < 0
        if np.isfinite(known[i]):
            found.append(known[i])
            changes &= ~((grid[i, :-1] <= known[i]) & (known[i] < grid[i, 1:]))
        changes = np.flatnonzero(changes)
        if changes.size:
            npv = _entity_npv(rows.t[i, : rows.n[i]], rows.cf[i, : rows.n[i]])
            found += [_brent(npv, grid[i, j], grid[i, j + 1]) for j in changes]
        x[i], count[i] = _select(found, near[i], horizon_days[i])
    return x, count


def _select(roots: list[float], near: float, horizon_days: float) -> tuple[float, int]:
    """(the root whose period rate is closest to `near`, number of distinct roots)."""
    if not roots:
        return np.nan, 0
    xs = np.sort(np.asarray(roots))
    distinct = xs[np.concatenate(([True], np.diff(xs) > _ROOT_MERGE_RTOL * (1 + np.abs(xs[1:]))))]
    with np.errstate(over="ignore"):
        gap = np.abs(np.expm1(distinct * horizon_days / _DAYS_PER_YEAR) - near)
    return float(distinct[np.argmin(gap)]), len(distinct)


def _closed_form(rows: _Rows) -> np.ndarray:
    """x of rows of two flows (step 2): log(-CF_1 / CF_0) / t_1, by logs where the ratio
    leaves float64's normal range (it is exact when the amounts scale by 2 ** k)."""
    ratio = -rows.cf[:, 1] / rows.cf[:, 0]
    in_range = (ratio >= np.finfo(float).tiny) & (ratio < np.inf)
    with np.errstate(divide="ignore", over="ignore"):
        logs = np.log(np.abs(rows.cf[:, 1])) - np.log(np.abs(rows.cf[:, 0]))
        return np.where(in_range, np.log(ratio), logs) / rows.t[:, 1]


def _solve(
    ent: np.ndarray, day: np.ndarray, cf: np.ndarray, near: np.ndarray, horizon_days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(x, number of roots) per entity 0..k-1 of flows that change sign (steps 2-5), from
    flows sorted by entity then day. Steps 2-4 block by block; the rows TRM leaves in doubt
    are gathered per width for the interval bounds and the scan."""
    k = int(ent[-1]) + 1
    x, count = np.empty(k), np.ones(k, dtype=np.int64)
    doubtful: dict[int, list[tuple[np.ndarray, _Rows, np.ndarray]]] = {}
    for members, rows in _blocks(ent, day, cf):
        if rows.t.shape[1] == 2:
            x[members] = _closed_form(rows)
            continue
        x[members] = _newton(rows, *_root_bounds(rows))
        is_root, unique = _certify(rows, x[members])
        if not unique.all():
            doubt = ~unique
            parts = doubtful.setdefault(rows.t.shape[1], [])
            parts.append((members[doubt], rows.take(doubt), is_root[doubt]))
    for parts in doubtful.values():
        members = np.concatenate([p[0] for p in parts])
        rows = _Rows(*(np.concatenate([p[1][i] for p in parts]) for i in range(3)))
        known = np.where(np.concatenate([p[2] for p in parts]), x[members], np.nan)
        unique = np.zeros(len(members), dtype=bool)
        check = ~np.isnan(known)
        if check.any():
            unique[check] = _unique_by_bounds(rows.take(check), known[check])
        doubt = ~unique
        if doubt.any():
            at = members[doubt]
            x[at], count[at] = _scan(rows.take(doubt), known[doubt], near[at], horizon_days[at])
    return x, count


def _width(n: np.ndarray) -> np.ndarray:
    """Row width for n flows: n rounded up to 4 significant bits (at most 1/8 padding)."""
    step = 2 ** np.maximum(0, np.ceil(np.log2(np.maximum(n, 1))) - 4).astype(np.int64)
    return -(-n // step) * step


def _blocks(seg: np.ndarray, day: np.ndarray, cf: np.ndarray) -> Iterator[tuple]:
    """(entity numbers, _Rows) of one width at a time, about _BLOCK_CELLS cells each, from
    flows sorted by entity (numbered 0..k-1, each present) then day."""
    n = np.bincount(seg)
    starts = np.cumsum(n) - n
    width = _width(n)
    for w in np.unique(width):
        same = np.flatnonzero(width == w)
        for members in np.array_split(same, -(-len(same) * w // _BLOCK_CELLS)):
            count, first = n[members], starts[members]
            k, m = len(members), count[0]
            t = np.empty((k, w))
            t[:] = day[first + count - 1, None]
            dense_cf = np.zeros((k, w))
            if (count == m).all() and members[-1] - members[0] == k - 1:  # one slice
                flat = slice(first[0], first[0] + k * m)
                t[:, :m], dense_cf[:, :m] = day[flat].reshape(k, m), cf[flat].reshape(k, m)
            else:
                row = np.repeat(np.arange(k), count)
                col = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
                source = np.repeat(first, count) + col
                t[row, col], dense_cf[row, col] = day[source], cf[source]
            t -= t[:, :1]
            t /= _DAYS_PER_YEAR
            yield members, _Rows(t, dense_cf, count)


def _factorize(entity: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, sorted distinct entities) as `pd.factorize(sort=True)`, null -> -1;
    integer labels already in order are numbered where they change."""
    values = entity.to_numpy()
    if values.dtype.kind in "iu" and len(values) and (values[1:] >= values[:-1]).all():
        new = np.empty(len(values), dtype=bool)
        new[0] = True
        np.not_equal(values[1:], values[:-1], out=new[1:])
        codes = np.cumsum(new, dtype=np.int64) - 1
        return codes, values[new]
    return pd.factorize(entity, sort=True)


def _days(dates: pd.Series) -> np.ndarray:
    """Whole days since 1970-01-01 as int64 (NaT -> int64 min); timezones dropped."""
    if isinstance(dates.dtype, np.dtype) and dates.dtype.kind == "M":
        values = dates.to_numpy()  # naive datetime64 already: no parsing, no copy
    else:
        stamps = pd.to_datetime(dates)
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_localize(None)
        values = stamps.to_numpy()
    unit, count = np.datetime_data(values.dtype)
    days = values.view(np.int64) // (np.timedelta64(1, "D") // np.timedelta64(count, unit))
    days[np.isnat(values)] = np.iinfo(np.int64).min
    return days


def _per_entity(values: pd.Series | None, entities: pd.Index, default: float) -> np.ndarray:
    """values aligned on entities as floats, NaN and missing entities -> default."""
    if values is None:
        return np.full(len(entities), default)
    aligned = pd.to_numeric(values).reindex(entities).to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(aligned), default, aligned)


def _where(mask: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays where mask is True (the arrays themselves, uncopied, if it is everywhere)."""
    return arrays if mask.all() else tuple(a[mask] for a in arrays)


def _flows(flows: pd.DataFrame) -> tuple[pd.Index, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(entities, bad entities, then the non-zero flows of the others summed per date and
    sorted by entity code then day: code, day, amount). Raises ValueError as documented."""
    missing = [c for c in ("entity", "date", "amount") if c not in flows.columns]
    if missing:
        raise ValueError(f"flows lacks column(s) {missing}")
    codes, uniques = _factorize(flows["entity"])
    amount = pd.to_numeric(flows["amount"]).to_numpy(dtype=float, na_value=np.nan)
    codes, days, amount = _where(codes >= 0, codes, _days(flows["date"]), amount)
    invalid = ~np.isfinite(amount) | (days == np.iinfo(np.int64).min)
    bad = np.zeros(len(uniques), dtype=bool)
    if invalid.any():
        bad = np.bincount(codes[invalid], minlength=len(uniques)) > 0
        codes, days, amount = _where(~bad[codes], codes, days, amount)
    same = codes[1:] == codes[:-1]
    if not ((codes[1:] > codes[:-1]) | (same & (days[1:] >= days[:-1]))).all():
        order = np.lexsort((days, codes))
        codes, days, amount = codes[order], days[order], amount[order]
        same = codes[1:] == codes[:-1]
    repeat = same & (days[1:] == days[:-1])
    if repeat.any():
        first = np.flatnonzero(np.concatenate(([True], ~repeat)))
        codes, days, amount = codes[first], days[first], np.add.reduceat(amount, first)
    entities = pd.Index(uniques, name="entity")
    return (entities, bad, *_where(amount != 0, codes, days, amount))


def xirr_many_detailed(
    flows: pd.DataFrame,
    near_period_rate: pd.Series | None = None,
    horizon_days: pd.Series | None = None,
) -> pd.DataFrame:
    """XIRR of many entities at once, with why a rate is NaN.

    flows: long table with columns entity, date, amount (signed, investor's side), any order;
    rows with a null entity are ignored. near_period_rate, horizon_days: Series indexed by
    entity choosing among several roots (see the module docstring); NaN or missing entries
    mean 0 and 365 days. Raises ValueError when a column is missing, an amount is not numeric,
    a date cannot be parsed or a horizon is not positive.

    Returns a DataFrame indexed by entity (sorted) with columns `rate` (annual rate r, NaN as
    in the module docstring), `log1p_rate` (log(1 + r) of the selected root, NaN when there is
    none), `status` (one of STATUSES) and `roots` (distinct roots found).
    """
    entities, bad, ent, day, cf = _flows(flows)
    near = _per_entity(near_period_rate, entities, 0.0)
    horizon = _per_entity(horizon_days, entities, _DAYS_PER_YEAR)
    if (horizon <= 0).any():
        raise ValueError("horizon_days must be positive")
    n = len(entities)
    start = np.searchsorted(ent, np.arange(n + 1))  # ent is sorted: each entity's first flow
    n_flows = np.diff(start)
    n_positive = np.zeros(n, dtype=np.int64)
    some = n_flows > 0
    if some.any():
        n_positive[some] = np.add.reduceat(cf > 0, start[:-1][some], dtype=np.int64)
    two_signs = (n_positive > 0) & (n_positive < n_flows)
    status = np.select(
        [bad, n_flows == 0, n_flows == 1, ~two_signs],
        ["non_finite_input", "zero_flows", "too_few_flows", "no_sign_change"],
        "ok",
    ).astype(object)
    x = np.full(n, np.nan)
    roots = np.zeros(n, dtype=np.int64)
    solve = np.flatnonzero(status == "ok")
    if solve.size:
        if not two_signs.all():
            renumber = np.cumsum(two_signs) - 1  # the solved entities numbered 0..k-1
            ent, day, cf = _where(two_signs[ent], renumber[ent], day, cf)
        x[solve], roots[solve] = _solve(ent, day, cf, near[solve], horizon[solve])
    with np.errstate(over="ignore"):
        rate = np.expm1(x)
    overflow, underflow = np.isinf(rate), rate == -1.0
    status[solve] = np.select(
        [np.isnan(x[solve]), overflow[solve], underflow[solve]],
        ["no_root", "rate_overflow", "rate_underflow"],
        "ok",
    )
    rate[overflow | underflow] = np.nan
    return pd.DataFrame(
        {"rate": rate, "log1p_rate": x, "status": status, "roots": roots}, index=entities
    )


def xirr_many(
    flows: pd.DataFrame,
    near_period_rate: pd.Series | None = None,
    horizon_days: pd.Series | None = None,
) -> pd.Series:
    """Annual XIRR per entity: the `rate` column of `xirr_many_detailed` (same arguments)."""
    return xirr_many_detailed(flows, near_period_rate, horizon_days)["rate"]


def xirr(flows: pd.Series) -> float:
    """Annual XIRR of signed amounts indexed by date, in any order; NaN when there is no
    float64 rate (module docstring).

    Solves sum_i CF_i (1 + r) ** (-(d_i - d_0).days / 365) = 0 for r in (-1, inf), d_0 the
    earliest date, duplicate dates summed; of several roots, the one closest to 0. Same
    method as `xirr_many`.
    """
    frame = pd.DataFrame({"entity": 0, "date": flows.index, "amount": flows.to_numpy()})
    rates = xirr_many(frame)
    return float(rates.iloc[0]) if len(rates) else float("nan")
