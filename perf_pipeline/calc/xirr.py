"""XIRR: the annual internal rate of return of dated cash flows, one series or many at once.

Contract
--------
For signed amounts CF_i on dates d_i (investor's side: money paid in is negative, money
received and the final value positive), the rate r in (-1, inf) solves

    NPV(r) = sum_i CF_i (1 + r) ** (-(d_i - d_0).days / 365) = 0

(Actual/365 from the earliest date d_0, as spreadsheet XIRR). Times of day are ignored;
amounts on the same date are summed; zero amounts do not count as flows.

Several roots: the many-entity form picks the root r minimising
|(1 + r) ** (h / 365) - 1 - near| per entity (near = the period rate to stay close to, default 0;
h = the horizon in days, default 365); `xirr` and the defaults pick the root closest to 0.

NaN policy: a rate is NaN (never inf) when there is no root, when the input is degenerate, or
when the root overflows float64 (1 + r > 1.8e308). A root with 1 + r below 1.1e-16 (a big loss
over days) is reported as its nearest float, -1.0. `xirr_many_detailed` also gives
`log1p_rate` = log(1 + r), finite in both cases: derive a period's own rate from it,
(1 + r) ** (h / 365) - 1 = expm1(log1p_rate * h / 365), not from `rate`. It says why a rate
is NaN in `status`:

    ok                 a root was found
    non_finite_input   an amount is NaN or +-inf, or a date is missing
    zero_flows         every amount (after summing per date) is 0
    too_few_flows      only one date with a non-zero amount
    no_sign_change     all non-zero flows have one sign: NPV never crosses 0
    no_root            the flows change sign, but NPV has no root in (-1, inf)
    rate_overflow      the selected root is too large for float64

Method
------
The unknown is x = log(1 + r), so r in (-1, inf) is all of the real line and rates of 1e15 are
x = 35. NPV is evaluated as sum_i CF_i exp(-x (t_i - s)) with s = 0 for x >= 0 and s = the last
flow time for x < 0: the same sign as NPV, and no exponent is ever positive, so nothing
overflows. Per entity, with t in years:

1. validate; two flows: closed form x = log(-CF_1 / CF_0) / t_1;
2. Newton with the analytic derivative for all entities at once (numpy over the long flow
   arrays, segment sums by `np.add.reduceat`), from a Modified-Dietz-like guess, steps capped
   at 1 + |x| and kept inside the root bounds below; converged when
   |NPV| <= 1e-10 sum_i |discounted CF_i| and the step <= 1e-11 (1 + |x|) (both relative, so
   cents and billions behave alike);
3. entities Newton does not settle whose first and last flows differ in sign (so NPV changes
   sign): Brent (`scipy.optimize.brentq`) on a bracket;
4. uniqueness certificates: if every partial sum of the discounted flows, in time order and
   before the last flow, has the sign of the first flow (the investment balance never changes
   side at the root, Teichroew-Robichek-Montalbano), the root is the only one; failing that,
   if Laguerre's rule of signs at one of a few rates c near the root bounds the number of
   roots by 1 (sign changes of the partial sums of CF_i exp(-c t_i), forwards plus
   backwards);
5. the others (several roots possible, or none): a scan of NPV's sign on a 601-point grid in
   x (asinh-spaced: about 3e-4 apart near 0, then 2.5-4% of |x|, out to the root bounds below),
   vectorized over those entities, each sign change refined by Brent, then the selection
   rule above.

All roots lie in [-log(S_<n / |CF_n|) / (t_n - t_{n-1}), log(S_>0 / |CF_0|) / t_1] (S = the sum
of |CF| of the other flows), so the scan covers every root. Two roots in one grid interval
(or a double root, where NPV touches 0 without crossing) can be missed by the scan; a unique
root never is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
)

_DAYS_PER_YEAR = 365.0
_NPV_RTOL = 1e-10
_STEP_RTOL = 1e-11
_MAX_NEWTON = 60
_SIGN_TOL = 1e-9
_GRID_POINTS = 601
_GRID_SCALE = 0.01
_GRID_CHUNK = 500_000
_BOUND_MARGIN = 1e-3
_ROOT_MERGE_RTOL = 1e-9
_LAGUERRE_OFFSETS = np.array([-4.0, -2.0, -1.0, -0.5, -0.25, 0.25, 0.5, 1.0, 2.0, 4.0])


@dataclass(frozen=True)
class _Flows:
    """Non-zero aggregated flows of k entities, sorted by entity then time.

    seg: entity number (0..k-1) of each flow; t: years from the entity's first flow;
    back: t minus the entity's last t (<= 0); starts: index of each entity's first flow
    (every entity has one); horizon: the entity's last t.
    """

    seg: np.ndarray
    t: np.ndarray
    back: np.ndarray
    cf: np.ndarray
    starts: np.ndarray
    horizon: np.ndarray

    @classmethod
    def build(cls, seg: np.ndarray, t: np.ndarray, cf: np.ndarray) -> _Flows:
        """From flows sorted by entity (numbered 0..k-1, each present) then t."""
        starts = np.flatnonzero(np.concatenate(([True], seg[1:] != seg[:-1])))
        horizon = t[np.append(starts[1:], len(t)) - 1]
        return cls(seg, t, t - horizon[seg], cf, starts, horizon)

    @property
    def size(self) -> int:
        return len(self.starts)

    @property
    def last(self) -> np.ndarray:
        """Index of each entity's last flow."""
        return np.append(self.starts[1:], len(self.t)) - 1

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Per-entity sums of per-flow values (along axis 0)."""
        return np.add.reduceat(values, self.starts, axis=0)

    def subset(self, keep: np.ndarray) -> _Flows:
        """The flows of the entities where the boolean `keep` is True, renumbered."""
        if keep.all():
            return self
        flow_keep = keep[self.seg]
        renumber = np.cumsum(keep) - 1
        seg = renumber[self.seg[flow_keep]]
        counts = np.bincount(seg, minlength=int(keep.sum()))
        starts = np.cumsum(counts) - counts
        return _Flows(
            seg,
            self.t[flow_keep],
            self.back[flow_keep],
            self.cf[flow_keep],
            starts,
            self.horizon[keep],
        )

    def entity(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(t, cf) of entity i."""
        flows = slice(self.starts[i], self.last[i] + 1)
        return self.t[flows], self.cf[flows]


def _discounted(x_flow: np.ndarray, t: np.ndarray, back: np.ndarray) -> tuple:
    """(t - s, exp(-x (t - s))) with s = 0 for x >= 0, else the horizon: exponents <= 0."""
    shifted = np.where(x_flow < 0, back, t)
    return shifted, np.exp(-x_flow * shifted)


def _npv(x: np.ndarray, fl: _Flows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scaled NPV, its derivative in x and sum |discounted CF| per entity, at x per entity."""
    shifted, disc = _discounted(x[fl.seg], fl.t, fl.back)
    term = fl.cf * disc
    return fl.sum(term), -fl.sum(shifted * term), fl.sum(np.abs(term))


def _root_bounds(fl: _Flows) -> tuple[np.ndarray, np.ndarray]:
    """Bounds [lo, hi] in x containing every root, widened so NPV is non-zero at both."""
    abs_cf = np.abs(fl.cf)
    total = fl.sum(abs_cf)
    last = fl.last
    first_cf, last_cf = abs_cf[fl.starts], abs_cf[last]
    first_gap = fl.t[fl.starts + 1]
    last_gap = fl.t[last] - fl.t[last - 1]
    with np.errstate(divide="ignore"):
        hi = np.maximum(np.log((total - first_cf) / first_cf) / first_gap, 0.0)
        lo = np.minimum(-np.log((total - last_cf) / last_cf) / last_gap, 0.0)
    return lo - _BOUND_MARGIN * (1 - lo), hi + _BOUND_MARGIN * (1 + hi)


def _initial_guess(fl: _Flows, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Modified-Dietz-like guess: gain over time-weighted capital, as an annual log rate.

    Capital = flows of the first flow's sign, weighted by the share of the horizon they stay.
    """
    side = np.sign(fl.cf[fl.starts])
    same_side = np.sign(fl.cf) == side[fl.seg]
    weight = -fl.back / fl.horizon[fl.seg]
    capital = fl.sum(np.where(same_side, np.abs(fl.cf) * weight, 0.0))
    gain = -side * fl.sum(fl.cf)
    period = np.maximum(gain / capital, -0.99)
    return np.clip(np.log1p(period) / fl.horizon, lo, hi)


def _newton(fl: _Flows, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Vectorized Newton in x; NaN where it does not converge.

    Entities that settled stay in the arrays (a Newton step at a root stays there) until
    fewer than half are still moving; then the arrays shrink to those.
    """
    x = x0.copy()
    root = np.full(fl.size, np.nan)
    members = np.arange(fl.size)
    sub = fl
    for _ in range(_MAX_NEWTON):
        xm = x[members]
        npv, slope, scale = _npv(xm, sub)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = -npv / slope
        finite = np.isfinite(step)
        limit = 1.0 + np.abs(xm)
        x_new = np.clip(xm + np.clip(step, -limit, limit), lo[members], hi[members])
        done = finite & (np.abs(npv) <= _NPV_RTOL * scale) & (np.abs(step) <= _STEP_RTOL * limit)
        x[members] = np.where(finite, x_new, xm)
        fresh = done & np.isnan(root[members])
        root[members[fresh]] = x_new[fresh]
        going = finite & np.isnan(root[members])
        if not going.any():
            break
        if going.sum() < members.size // 2:
            members, sub = members[going], sub.subset(going)
    return root


def _entity_npv(t: np.ndarray, cf: np.ndarray) -> Callable[[float], float]:
    """Scaled NPV of one entity's flows as a scalar function of x (for Brent)."""
    horizon = t[-1]

    def npv(x: float) -> float:
        shifted = t - (horizon if x < 0 else 0.0)
        return float(np.dot(cf, np.exp(-x * shifted)))

    return npv


def _brent(npv: Callable[[float], float], a: float, b: float) -> float:
    """Root of npv in [a, b] given a sign change, split at 0 so the scaling is continuous.

    If npv here has one sign at both ends (the sign change came from a sum in another order,
    so one end is a root to rounding), that end.
    """
    if a < 0 < b:
        at_zero = npv(0.0)
        if at_zero == 0:
            return 0.0
        if np.sign(at_zero) == np.sign(npv(b)):
            b = 0.0
        else:
            a = 0.0
    at_a, at_b = npv(a), npv(b)
    if np.sign(at_a) * np.sign(at_b) >= 0:
        return a if abs(at_a) <= abs(at_b) else b
    return brentq(npv, a, b, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200)


def _running_sums(fl: _Flows, term: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(normalised term, its running sums within each entity) for a term per flow (or per
    flow and column); normalised = divided by the entity's sum of |term|, so the running
    sums lie in [-1, 1] whatever the amounts. One cumsum over all entities, restarted at
    each entity by taking the previous entity's total off its first term."""
    normalised = term / fl.sum(np.abs(term))[fl.seg]
    restarted = normalised.copy()
    restarted[fl.starts[1:]] -= fl.sum(normalised)[:-1]
    return normalised, np.cumsum(restarted, axis=0)


def _unique(fl: _Flows, x: np.ndarray) -> np.ndarray:
    """True where the root x is certainly the only one (Teichroew-Robichek-Montalbano).

    Every partial sum of CF_i exp(-x t_i) in time order before the last flow is strictly
    (beyond 1e-9 of sum |.|) on the first flow's side: the balance never changes side.
    """
    _, disc = _discounted(x[fl.seg], fl.t, fl.back)
    _, partial = _running_sums(fl, fl.cf * disc)
    partial = partial * np.sign(fl.cf[fl.starts])[fl.seg]
    is_last = np.zeros(len(fl.t), dtype=bool)
    is_last[fl.last] = True
    violated = (partial <= _SIGN_TOL) & ~is_last
    return fl.sum(violated.astype(np.int64)) == 0


def _sign_changes(fl: _Flows, values: np.ndarray) -> np.ndarray:
    """Upper bound on the sign changes of each entity's sequence of values (flows x columns):
    a value within 1e-9 of 0 may have either sign, so it counts as 2."""
    sign = np.where(np.abs(values) > _SIGN_TOL, np.sign(values), 0.0)
    pair = np.zeros(values.shape, dtype=np.int64)
    pair[:-1] = (sign[1:] * sign[:-1] < 0) & (fl.seg[1:] == fl.seg[:-1])[:, None]
    return fl.sum(pair + 2 * (sign == 0))


def _unique_by_laguerre(fl: _Flows, x: np.ndarray) -> np.ndarray:
    """True where Laguerre's rule of signs leaves room for one root only (x is one).

    For any c, NPV has at most as many roots above c as the partial sums of CF_i exp(-c t_i)
    in time order have sign changes, and at most as many below c as those sums taken from
    the last flow backwards (Norstrom's criterion is the case c = 0). Tried at c = 0, x/2,
    2x and x + _LAGUERRE_OFFSETS.
    """
    c = np.hstack((x[:, None] + _LAGUERRE_OFFSETS, np.outer(x, [0.0, 0.5, 2.0])))
    c_flow = c[fl.seg]
    exponent = -c_flow * np.where(c_flow < 0, fl.back[:, None], fl.t[:, None])
    normalised, forward = _running_sums(fl, fl.cf[:, None] * np.exp(exponent))
    backward = forward[fl.last][fl.seg] - forward + normalised
    bound = _sign_changes(fl, forward) + _sign_changes(fl, backward)
    return bound.min(axis=1) <= 1


def _grid(lo: np.ndarray, hi: np.ndarray, points: int) -> np.ndarray:
    """Per-entity x grid (k x points), asinh-spaced on [lo, 0] and [0, hi], 0 included."""
    share = np.linspace(0.0, 1.0, points // 2 + 1)
    neg = np.sinh(np.outer(np.arcsinh(lo / _GRID_SCALE), share[::-1])) * _GRID_SCALE
    pos = np.sinh(np.outer(np.arcsinh(hi / _GRID_SCALE), share[1:])) * _GRID_SCALE
    return np.hstack((neg, pos))


def _npv_signs(fl: _Flows, grid: np.ndarray) -> np.ndarray:
    """Sign of NPV per entity and grid point (k x G) for a grid from `_grid` (its columns
    before the middle one are <= 0 for every entity, the others > 0), evaluated a block of
    columns at a time as (columns x flows) arrays so the segment sums run along contiguous
    memory."""
    signs = np.empty_like(grid)
    columns = grid.T
    rows = max(1, _GRID_CHUNK // max(1, len(fl.t)))
    middle = grid.shape[1] // 2 + 1
    for first, stop, minus_times in ((0, middle, -fl.back), (middle, grid.shape[1], -fl.t)):
        for j in range(first, stop, rows):
            block = slice(j, min(j + rows, stop))
            exponent = columns[block, fl.seg] * minus_times
            term = np.exp(exponent, out=exponent) * fl.cf
            signs[:, block] = np.sign(np.add.reduceat(term, fl.starts, axis=1)).T
    return signs


def _scan_roots(fl: _Flows, lo: np.ndarray, hi: np.ndarray) -> list[list[float]]:
    """All roots found by NPV signs on the grid, each sign change refined by Brent."""
    grid = _grid(lo, hi, _GRID_POINTS)
    signs = _npv_signs(fl, grid)
    roots: list[list[float]] = []
    for i in range(fl.size):
        npv = _entity_npv(*fl.entity(i))
        s, g = signs[i], grid[i]
        found = list(g[s == 0])
        found += [_brent(npv, g[j], g[j + 1]) for j in np.flatnonzero(s[:-1] * s[1:] < 0)]
        roots.append(found)
    return roots


def _select(roots: list[float], near: float, horizon_days: float) -> tuple[float, int]:
    """(chosen x, number of distinct roots): the period rate closest to `near`."""
    if not roots:
        return np.nan, 0
    xs = np.sort(np.asarray(roots))
    distinct = xs[np.concatenate(([True], np.diff(xs) > _ROOT_MERGE_RTOL * (1 + np.abs(xs[1:]))))]
    with np.errstate(over="ignore"):
        gap = np.abs(np.expm1(distinct * horizon_days / _DAYS_PER_YEAR) - near)
    return float(distinct[np.argmin(gap)]), len(distinct)


def _solve(fl: _Flows, near: np.ndarray, horizon_days: np.ndarray) -> tuple:
    """(x, number of roots) per entity of flows that change sign at least once."""
    k = fl.size
    x = np.full(k, np.nan)
    count = np.zeros(k, dtype=np.int64)
    counts = np.diff(np.append(fl.starts, len(fl.t)))
    pair = counts == 2
    if pair.any():
        first = fl.starts[pair]
        x[pair] = np.log(-fl.cf[first + 1] / fl.cf[first]) / fl.t[first + 1]
        count[pair] = 1
    rest = np.flatnonzero(~pair)
    if rest.size == 0:
        return x, count
    sub = fl.subset(~pair)
    lo, hi = _root_bounds(sub)
    root = _newton(sub, _initial_guess(sub, lo, hi), lo, hi)
    ends_differ = np.sign(sub.cf[sub.starts]) != np.sign(sub.cf[sub.last])
    for i in np.flatnonzero(np.isnan(root) & ends_differ):
        root[i] = _brent(_entity_npv(*sub.entity(i)), lo[i], hi[i])
    has_root = ~np.isnan(root)
    certain = np.zeros(sub.size, dtype=bool)
    if has_root.any():
        certain[has_root] = _unique(sub.subset(has_root), root[has_root])
    check = has_root & ~certain
    if check.any():
        certain[check] = _unique_by_laguerre(sub.subset(check), root[check])
    x[rest[certain]] = root[certain]
    count[rest[certain]] = 1
    doubt = ~certain
    if doubt.any():
        found = _scan_roots(sub.subset(doubt), lo[doubt], hi[doubt])
        for i, roots in zip(np.flatnonzero(doubt), found, strict=True):
            candidates = roots if np.isnan(root[i]) else [*roots, root[i]]
            j = rest[i]
            x[j], count[j] = _select(candidates, near[j], horizon_days[j])
    return x, count


def _days(dates: pd.Series) -> np.ndarray:
    """Whole days since 1970-01-01 as datetime64[D] (NaT kept); timezones dropped."""
    stamps = pd.to_datetime(dates)
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):
        stamps = stamps.dt.tz_localize(None)
    return stamps.to_numpy().astype("datetime64[D]")


def _compress(mask: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """The arrays at the positions where mask is True (themselves when it is True everywhere)."""
    if mask.all():
        return arrays
    return tuple(a[mask] for a in arrays)


def _per_entity(values: pd.Series | None, entities: pd.Index, default: float) -> np.ndarray:
    """values aligned on entities as floats, NaN and missing entities -> default."""
    if values is None:
        return np.full(len(entities), default)
    aligned = pd.to_numeric(values).reindex(entities).to_numpy(dtype=float, na_value=np.nan)
    return np.where(np.isnan(aligned), default, aligned)


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
    missing = [c for c in ("entity", "date", "amount") if c not in flows.columns]
    if missing:
        raise ValueError(f"flows lacks column(s) {missing}")
    codes, uniques = pd.factorize(flows["entity"], sort=True)
    entities = pd.Index(uniques, name="entity")
    near = _per_entity(near_period_rate, entities, 0.0)
    horizon = _per_entity(horizon_days, entities, _DAYS_PER_YEAR)
    if (horizon <= 0).any():
        raise ValueError("horizon_days must be positive")
    amount = pd.to_numeric(flows["amount"]).to_numpy(dtype=float, na_value=np.nan)
    codes, days, amount = _compress(codes >= 0, codes, _days(flows["date"]), amount)

    n = len(entities)
    bad = np.bincount(codes, ~np.isfinite(amount) | np.isnat(days), minlength=n) > 0
    codes, days, amount = _compress(~bad[codes], codes, days, amount)
    days = days.astype(np.int64)
    if len(days):
        key = codes * (days.max() - days.min() + 1) + (days - days.min())
        if (np.diff(key) < 0).any():
            order = np.argsort(key, kind="stable")
            codes, days, amount = codes[order], days[order], amount[order]
    new = np.ones(len(codes), dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (days[1:] != days[:-1])
    if not new.all():
        first = np.flatnonzero(new)
        codes, days, amount = codes[first], days[first], np.add.reduceat(amount, first)
    ent, day, cf = _compress(amount != 0, codes, days, amount)
    n_flows = np.bincount(ent, minlength=n)
    flip = (ent[1:] == ent[:-1]) & (np.sign(cf[1:]) != np.sign(cf[:-1]))
    n_flips = np.bincount(ent[1:][flip], minlength=n)

    status = np.select(
        [bad, n_flows == 0, n_flows == 1, n_flips == 0],
        ["non_finite_input", "zero_flows", "too_few_flows", "no_sign_change"],
        "ok",
    ).astype(object)
    rate = np.full(n, np.nan)
    log1p_rate = np.full(n, np.nan)
    roots = np.zeros(n, dtype=np.int64)
    solve = status == "ok"
    if solve.any():
        seg, kept_day, kept_cf = _compress(solve[ent], ent, day, cf)
        seg = (np.cumsum(solve) - 1)[seg]
        first_day = np.minimum.reduceat(kept_day, np.flatnonzero(np.diff(seg, prepend=-1)))
        fl = _Flows.build(seg, (kept_day - first_day[seg]) / _DAYS_PER_YEAR, kept_cf)
        x, count = _solve(fl, near[solve], horizon[solve])
        with np.errstate(over="ignore"):
            solved_rate = np.expm1(x)
        overflow = np.isinf(solved_rate)
        rate[solve] = np.where(overflow, np.nan, solved_rate)
        roots[solve] = count
        log1p_rate[solve] = x
        status[solve] = np.where(np.isnan(x), "no_root", np.where(overflow, "rate_overflow", "ok"))
    return pd.DataFrame(
        {"rate": rate, "log1p_rate": log1p_rate, "status": status, "roots": roots},
        index=entities,
    )


def xirr_many(
    flows: pd.DataFrame,
    near_period_rate: pd.Series | None = None,
    horizon_days: pd.Series | None = None,
) -> pd.Series:
    """Annual XIRR per entity: the `rate` column of `xirr_many_detailed` (same arguments)."""
    return xirr_many_detailed(flows, near_period_rate, horizon_days)["rate"]


def xirr(flows: pd.Series) -> float:
    """Annual XIRR of signed amounts indexed by date; NaN when there is no root.

    Solves sum_i CF_i (1 + r) ** (-(d_i - d_0).days / 365) = 0 for r in (-1, inf), duplicate
    dates summed; of several roots, the one closest to 0. Same method as `xirr_many`.
    """
    frame = pd.DataFrame({"entity": 0, "date": flows.index, "amount": flows.to_numpy()})
    rates = xirr_many(frame)
    return float(rates.iloc[0]) if len(rates) else float("nan")
