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
2. the entities' flows are laid out densely, one row per entity in time order, padded with
   zero amounts to a width that depends only on the entity's number of flows (n rounded up
   to 4 significant bits), so an entity's sums do not depend on the others; rows of one
   width are solved in blocks of about 65,536 cells (cache-sized, memory reused block to
   block);
3. Halley's iteration (Newton's step corrected by the analytic second derivative) for all
   rows of a block at once, from a Modified-Dietz-like guess, steps capped at 1 + |x| and
   kept inside the root bounds below; converged when |NPV| <= 1e-10 sum_i |discounted CF_i|
   and the step <= 1e-11 (1 + |x|) (both relative, so cents and billions behave alike);
4. entities Halley does not settle whose first and last flows differ in sign (so NPV changes
   sign): Brent (`scipy.optimize.brentq`) on a bracket;
5. uniqueness certificates: if every partial sum of the discounted flows, in time order and
   before the last flow, has the sign of the first flow (the investment balance never changes
   side at the root, Teichroew-Robichek-Montalbano), the root is the only one; failing that
   (the rows left are gathered across blocks), interval bounds: the root bounds are cut
   into intervals (refined where needed) on each of which the sums of the positive and of
   the negative discounted flows are monotone, so their values at the ends bound them;
   every interval must exclude a root or, for the one holding the root found, show NPV
   monotone (`_box_settled`); failing that, if Laguerre's rule of signs at one of a few
   rates c near the root bounds the number of roots by 1 (sign changes of the partial sums
   of CF_i exp(-c t_i), forwards plus backwards);
6. the others (several roots possible, or none): a scan of NPV's sign on a 601-point grid in
   x (asinh-spaced: about 3e-4 apart near 0, then 2.5-4% of |x|, out to the root bounds below),
   vectorized over those entities, each sign change refined by Brent (the interval holding
   the root found in 3-4 keeps that root), then the selection rule above.

All roots lie in [-log(S_<n / |CF_n|) / (t_n - t_{n-1}), log(S_>0 / |CF_0|) / t_1] (S = the sum
of |CF| of the other flows), so the scan covers every root. Two roots in one grid interval
(or a double root, where NPV touches 0 without crossing) can be missed by the scan; a unique
root never is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields

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
_BOX_POINTS = 31
_BLOCK_SIZE = 65536
_BOX_ROUNDS = 6
_BOX_SPLIT = 4
_BOX_MAX_OPEN = 32
_BOX_CHUNK = 50_000


@dataclass(frozen=True)
class _Block:
    """Non-zero aggregated flows of k entities in time order, one row each, in a dense (k, K)
    layout: row i holds its n_i flows in columns 0..n_i-1, then padding (amount 0 at the last
    time, so it adds exact zeros). K depends on n only (`_width`), so a row's sums do not
    depend on which other entities share its block.

    t: years from the entity's first flow; cf: amounts; abs_cf, cf_t, cf_tt: |cf|, cf t and cf t^2;
    n: flows per row; horizon: the last t.
    """

    t: np.ndarray
    cf: np.ndarray
    abs_cf: np.ndarray
    cf_t: np.ndarray
    cf_tt: np.ndarray
    n: np.ndarray
    horizon: np.ndarray

    @classmethod
    def build(cls, t: np.ndarray, cf: np.ndarray, n: np.ndarray) -> _Block:
        """From dense t and cf whose padding has t = the row's last t and cf = 0."""
        cf_t = cf * t
        return cls(t, cf, np.abs(cf), cf_t, cf_t * t, n, t[:, -1].copy())

    @property
    def size(self) -> int:
        return len(self.n)

    @property
    def valid(self) -> np.ndarray:
        """True at real flows, False at padding (k x K)."""
        return np.arange(self.t.shape[1]) < self.n[:, None]

    def at(self, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, cf) of each row at a column per row."""
        rows = np.arange(self.size)
        return self.t[rows, column], self.cf[rows, column]

    @classmethod
    def stack(cls, blocks: list[_Block]) -> _Block:
        """The rows of blocks of one width, one block after the other."""
        names = [field.name for field in fields(cls)]
        return cls(*(np.concatenate([getattr(b, name) for b in blocks]) for name in names))

    def rows(self, keep: np.ndarray | slice) -> _Block:
        """The rows where the boolean `keep` is True, or in the slice `keep`."""
        if isinstance(keep, np.ndarray) and keep.all():
            return self
        names = [field.name for field in fields(self)]
        return _Block(*(getattr(self, name)[keep] for name in names))

    def entity(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(t, cf) of row i without padding."""
        return self.t[i, : self.n[i]], self.cf[i, : self.n[i]]

    def shifted(self, x: np.ndarray) -> np.ndarray:
        """t - s per flow (k x K), s = 0 where x >= 0 and the horizon where x < 0."""
        return self.t - np.where(x < 0, self.horizon, 0.0)[:, None]


def _width(n: np.ndarray) -> np.ndarray:
    """Row width for n flows: n rounded up to 4 significant bits (at most 1/8 padding)."""
    step = 2 ** np.maximum(0, np.ceil(np.log2(np.maximum(n, 1))) - 4).astype(np.int64)
    return -(-n // step) * step


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row sums of a * b."""
    return np.einsum("ij,ij->i", a, b)


def _npv(x: np.ndarray, b: _Block) -> tuple[np.ndarray, ...]:
    """Scaled NPV, its first and second derivatives in x and sum |discounted CF| per row, at
    x per row. With u = t - s (s as in `_Block.shifted`) and d = exp(-x u): f = sum CF d,
    f' = -sum u CF d, f'' = sum u^2 CF d, expanded in powers of s so the products CF t and
    CF t^2 are computed once."""
    s = np.where(x < 0, b.horizon, 0.0)
    disc = np.subtract(s[:, None], b.t)
    disc *= x[:, None]
    np.exp(disc, out=disc)
    npv = _rowdot(b.cf, disc)
    moment = _rowdot(b.cf_t, disc)
    curvature = _rowdot(b.cf_tt, disc) - s * (2 * moment - s * npv)
    return npv, s * npv - moment, curvature, _rowdot(b.abs_cf, disc)


def _root_bounds(b: _Block) -> tuple[np.ndarray, np.ndarray]:
    """Bounds [lo, hi] in x containing every root, widened so NPV is non-zero at both."""
    total = b.abs_cf.sum(axis=1)
    first_cf, last_cf = b.abs_cf[:, 0], np.abs(b.at(b.n - 1)[1])
    first_gap = b.t[:, 1]
    last_gap = b.horizon - b.at(b.n - 2)[0]
    with np.errstate(divide="ignore"):
        hi = np.maximum(np.log((total - first_cf) / first_cf) / first_gap, 0.0)
        lo = np.minimum(-np.log((total - last_cf) / last_cf) / last_gap, 0.0)
    return lo - _BOUND_MARGIN * (1 - lo), hi + _BOUND_MARGIN * (1 + hi)


def _initial_guess(b: _Block, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Modified-Dietz-like guess: gain over time-weighted capital, as an annual log rate.

    Capital = flows of the first flow's sign, weighted by the share of the horizon they stay.
    """
    side = np.sign(b.cf[:, 0])
    # (|cf| + side cf) / 2 is |cf| on the first flow's side, else 0
    total, abs_total = b.cf.sum(axis=1), b.abs_cf.sum(axis=1)
    moment = b.cf_t.sum(axis=1) * side + _rowdot(b.abs_cf, b.t)
    capital = (b.horizon * (abs_total + side * total) - moment) / (2 * b.horizon)
    gain = -side * total
    period = np.maximum(gain / capital, -0.99)
    return np.clip(np.log1p(period) / b.horizon, lo, hi)


def _newton(b: _Block, x0: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Vectorized Halley iteration in x (Newton's step corrected by the curvature, cubic
    convergence; Newton's step where the correction is not finite or flips the direction);
    NaN where it does not converge.

    Rows that settled stay in the arrays (a Newton step at a root stays there) until fewer
    than 1/8 are still moving; then the arrays shrink to those (copying rows costs more
    than iterating on settled ones).
    """
    x = x0.copy()
    root = np.full(b.size, np.nan)
    members = np.arange(b.size)
    sub = b
    for _ in range(_MAX_NEWTON):
        xm = x[members]
        npv, slope, curvature, scale = _npv(xm, sub)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = -npv / slope
            step = newton / (1.0 + 0.5 * newton * curvature / slope)
        step = np.where(np.isfinite(step) & (step * newton > 0), step, newton)
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
        if going.sum() < members.size // 8:
            members, sub = members[going], sub.rows(going)
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


def _running_sums(term: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(normalised term, its running sums along the last axis): normalised = divided by the
    sum of |term| along that axis, so the running sums lie in [-1, 1] whatever the amounts."""
    normalised = term / np.abs(term).sum(axis=-1, keepdims=True)
    return normalised, np.cumsum(normalised, axis=-1)


def _unique(b: _Block, x: np.ndarray) -> np.ndarray:
    """True where the root x is certainly the only one (Teichroew-Robichek-Montalbano).

    Every partial sum of CF_i exp(-x t_i) in time order before the last flow is strictly
    (beyond 1e-9 of sum |.|) on the first flow's side: the balance never changes side.
    """
    partial = b.shifted(x)
    partial *= -x[:, None]
    np.exp(partial, out=partial)
    scale = _rowdot(b.abs_cf, partial)
    partial *= b.cf
    np.cumsum(partial, axis=1, out=partial)
    partial *= (np.sign(b.cf[:, 0]) / scale)[:, None]
    before_last = np.arange(b.t.shape[1]) < (b.n - 1)[:, None]
    return ~((partial <= _SIGN_TOL) & before_last).any(axis=1)


def _sign_changes(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Upper bound on the sign changes of each sequence of values along the last axis, over
    the valid positions (a prefix): a value within 1e-9 of 0 may have either sign, so it
    counts as 2."""
    sign = np.where(np.abs(values) > _SIGN_TOL, np.sign(values), 0.0)
    pairs = (sign[..., 1:] * sign[..., :-1] < 0) & valid[..., 1:]
    return pairs.sum(axis=-1) + 2 * ((sign == 0) & valid).sum(axis=-1)


def _unique_by_laguerre(b: _Block, x: np.ndarray) -> np.ndarray:
    """True where Laguerre's rule of signs leaves room for one root only (x is one).

    For any c, NPV has at most as many roots above c as the partial sums of CF_i exp(-c t_i)
    in time order have sign changes, and at most as many below c as those sums taken from
    the last flow backwards (Norstrom's criterion is the case c = 0). Tried at c = 0, x/2,
    2x and x + _LAGUERRE_OFFSETS, for blocks of rows of about _BLOCK_SIZE cells per c.
    """
    certain = np.empty(b.size, dtype=bool)
    step = max(1, _BLOCK_SIZE // ((len(_LAGUERRE_OFFSETS) + 3) * b.t.shape[1]))
    for first in range(0, b.size, step):
        part = slice(first, first + step)
        sub, xs = b.rows(part), x[part]
        c = np.hstack((xs[:, None] + _LAGUERRE_OFFSETS, np.outer(xs, [0.0, 0.5, 2.0])))
        shift = np.where(c < 0, sub.horizon[:, None], 0.0)
        exponent = (shift[:, :, None] - sub.t[:, None, :]) * c[:, :, None]
        normalised, forward = _running_sums(sub.cf[:, None, :] * np.exp(exponent))
        backward = forward[:, :, -1:] - forward + normalised
        valid = sub.valid[:, None, :]
        bound = _sign_changes(forward, valid) + _sign_changes(backward, valid)
        certain[part] = bound.min(axis=1) <= 1
    return certain


def _grid(lo: np.ndarray, hi: np.ndarray, points: int) -> np.ndarray:
    """Per-entity x grid (k x points), asinh-spaced on [lo, 0] and [0, hi], 0 included."""
    share = np.linspace(0.0, 1.0, points // 2 + 1)
    neg = np.sinh(np.outer(np.arcsinh(lo / _GRID_SCALE), share[::-1])) * _GRID_SCALE
    pos = np.sinh(np.outer(np.arcsinh(hi / _GRID_SCALE), share[1:])) * _GRID_SCALE
    return np.hstack((neg, pos))


def _box_sums(b: _Block, row: np.ndarray, y: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(4 x m) sums P, N, P1, N1 at points y of rows `row`: with u = t - shift and terms
    w = CF exp(-y u), P and N are the sums of the positive terms and of -(negative terms),
    P1 and N1 the same sums of |u| w. A block of points at a time (small temporaries)."""
    sums = np.empty((4, len(row)))
    step = max(1, _BOX_CHUNK // b.t.shape[1])
    for j in range(0, len(row), step):
        part = slice(j, j + step)
        r = row[part]
        u = b.t[r] - shift[part, None]
        disc = np.exp(-y[part, None] * u)
        weighted = np.abs(u, out=u)
        weighted *= disc
        cf = b.cf[r]
        pos, neg = np.maximum(cf, 0.0), np.maximum(-cf, 0.0)
        sums[:, part] = [_rowdot(w, v) for v in (disc, weighted) for w in (pos, neg)]
    return sums


def _box_settled(
    a: np.ndarray, c: np.ndarray, at_a: np.ndarray, at_c: np.ndarray, root: np.ndarray
) -> np.ndarray:
    """Per interval [a, c] (not straddling 0) with `_box_sums` at both ends: True where NPV
    certainly has no root in it or, if it holds the row's root (a <= root < c), no other.

    With s = 0 for c > 0 and the horizon for c <= 0 every u = t - s has one sign, so each
    term is monotone in y on [a, c] and P, N (P1, N1 of the derivative) lie between their
    values at a and c. No root: min P > max N or min N > max P, or NPV is monotone there
    (the same test on P1, N1) with one strict sign at both ends. One root at most: NPV is
    monotone. Strict means beyond 1e-9 of the sums, far above rounding.
    """
    low, high = np.minimum(at_a, at_c), np.maximum(at_a, at_c)
    gap = _SIGN_TOL * (high[0::2] + high[1::2])
    apart = (low[0::2] - high[1::2] > gap) | (low[1::2] - high[0::2] > gap)
    f_a, f_c = at_a[0] - at_a[1], at_c[0] - at_c[1]
    one_sign = (f_a * f_c > 0) & (np.minimum(np.abs(f_a), np.abs(f_c)) > gap[0])
    holds = (a <= root) & (root < c)
    return np.where(holds, apart[1], apart[0] | (apart[1] & one_sign))


def _unique_by_bounds(b: _Block, x: np.ndarray) -> np.ndarray:
    """True where interval bounds prove the root x the only one in the root bounds.

    [lo, hi] (`_root_bounds`) is cut into _BOX_POINTS - 1 intervals (`_grid`); an interval
    `_box_settled` does not settle is cut in _BOX_SPLIT equal parts, up to _BOX_ROUNDS
    times; a row with more than _BOX_MAX_OPEN such intervals at once is given up (False).
    """
    lo, hi = _root_bounds(b)
    grid = _grid(lo, hi, _BOX_POINTS)
    k, points = grid.shape
    middle = points // 2
    # every grid point with the shift of the intervals on its side; 0 once more for the left
    y = np.hstack((grid, np.zeros((k, 1)))).ravel()
    shift = np.hstack((np.where(grid <= 0, b.horizon[:, None], 0.0), b.horizon[:, None]))
    shift[:, middle] = 0.0
    sums = _box_sums(b, np.repeat(np.arange(k), points + 1), y, shift.ravel())
    sums = sums.reshape(4, k, points + 1)
    right = sums[:, :, 1:points].copy()
    right[:, :, middle - 1] = sums[:, :, points]
    row = np.repeat(np.arange(k), points - 1)
    a, c = grid[:, :-1].ravel(), grid[:, 1:].ravel()
    at_a, at_c = sums[:, :, :-2].reshape(4, -1), right.reshape(4, -1)
    certain = np.ones(k, dtype=bool)
    for _ in range(_BOX_ROUNDS):
        open_ = ~_box_settled(a, c, at_a, at_c, x[row])
        certain[np.bincount(row[open_], minlength=k) > _BOX_MAX_OPEN] = False
        keep = open_ & certain[row]
        row, a, c, at_a, at_c = row[keep], a[keep], c[keep], at_a[:, keep], at_c[:, keep]
        if row.size == 0:
            break
        share = np.arange(1, _BOX_SPLIT) / _BOX_SPLIT
        inner = a[:, None] + (c - a)[:, None] * share  # (m, _BOX_SPLIT - 1)
        shift = np.repeat(np.where(c <= 0, b.horizon[row], 0.0), _BOX_SPLIT - 1)
        at_inner = _box_sums(b, np.repeat(row, _BOX_SPLIT - 1), inner.ravel(), shift)
        ends = np.hstack((a[:, None], inner, c[:, None]))
        at_ends = np.concatenate(
            (at_a[:, :, None], at_inner.reshape(4, len(row), -1), at_c[:, :, None]), axis=2
        )
        row = np.repeat(row, _BOX_SPLIT)
        a, c = ends[:, :-1].ravel(), ends[:, 1:].ravel()
        at_a, at_c = at_ends[:, :, :-1].reshape(4, -1), at_ends[:, :, 1:].reshape(4, -1)
    certain[row] = False
    return certain


def _npv_signs(b: _Block, grid: np.ndarray) -> np.ndarray:
    """Sign of NPV per row and grid point (k x G) for a grid from `_grid` (its columns
    before the middle one are <= 0 for every row, the others > 0), a block of columns at a
    time."""
    signs = np.empty_like(grid)
    columns = max(1, _GRID_CHUNK // max(1, b.t.size))
    middle = grid.shape[1] // 2 + 1
    back = b.horizon[:, None] - b.t
    for first, stop, times in ((0, middle, back), (middle, grid.shape[1], -b.t)):
        for j in range(first, stop, columns):
            block = slice(j, min(j + columns, stop))
            exponent = grid[:, block, None] * times[:, None, :]
            npv = np.einsum("ijk,ik->ij", np.exp(exponent, out=exponent), b.cf)
            signs[:, block] = np.sign(npv)
    return signs


def _scan_roots(b: _Block, lo: np.ndarray, hi: np.ndarray, known: np.ndarray) -> list:
    """All roots found by NPV signs on the grid, each sign change refined by Brent, except
    one around the `known` root (NaN: none), which is that root."""
    grid = _grid(lo, hi, _GRID_POINTS)
    signs = _npv_signs(b, grid)
    change = signs[:, :-1] * signs[:, 1:] < 0
    holds_known = (grid[:, :-1] <= known[:, None]) & (known[:, None] < grid[:, 1:])
    roots = []
    for i in range(b.size):
        found = list(grid[i][signs[i] == 0])
        refine = np.flatnonzero(change[i] & ~holds_known[i])
        if refine.size:
            npv = _entity_npv(*b.entity(i))
            found += [_brent(npv, grid[i, j], grid[i, j + 1]) for j in refine]
        if not np.isnan(known[i]):
            found.append(known[i])
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


def _first_root(b: _Block) -> tuple[np.ndarray, np.ndarray]:
    """(a root or NaN, True where it is certainly the only root) per row of flows that
    change sign at least once: closed form for two flows, else Newton (Brent where Newton
    does not settle and the first and last flows differ in sign), then the TRM certificate.
    """
    if b.t.shape[1] == 2:
        return np.log(-b.cf[:, 1] / b.cf[:, 0]) / b.t[:, 1], np.ones(b.size, dtype=bool)
    lo, hi = _root_bounds(b)
    root = _newton(b, _initial_guess(b, lo, hi), lo, hi)
    ends_differ = np.sign(b.cf[:, 0]) != np.sign(b.at(b.n - 1)[1])
    for i in np.flatnonzero(np.isnan(root) & ends_differ):
        root[i] = _brent(_entity_npv(*b.entity(i)), lo[i], hi[i])
    has_root = ~np.isnan(root)
    certain = np.zeros(b.size, dtype=bool)
    if has_root.any():
        certain[has_root] = _unique(b.rows(has_root), root[has_root])
    return root, certain


def _settle(b: _Block, root: np.ndarray, near: np.ndarray, horizon_days: np.ndarray) -> tuple:
    """(x, number of roots) per row whose root (NaN: none found yet) is not known to be the
    only one: the interval-bounds and Laguerre certificates, then the scan and `_select`."""
    x = np.full(b.size, np.nan)
    count = np.zeros(b.size, dtype=np.int64)
    certain = np.zeros(b.size, dtype=bool)
    for certificate in (_unique_by_bounds, _unique_by_laguerre):
        check = ~np.isnan(root) & ~certain
        if check.any():
            certain[check] = certificate(b.rows(check), root[check])
    x[certain] = root[certain]
    count[certain] = 1
    doubt = np.flatnonzero(~certain)
    if doubt.size:
        keep = ~certain
        lo, hi = _root_bounds(b.rows(keep))
        found = _scan_roots(b.rows(keep), lo, hi, root[keep])
        for i, roots in zip(doubt, found, strict=True):
            x[i], count[i] = _select(roots, near[i], horizon_days[i])
    return x, count


def _solve(
    seg: np.ndarray,
    day: np.ndarray,
    cf: np.ndarray,
    near: np.ndarray,
    horizon_days: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(x, number of roots) per entity of flows (sorted by entity numbered 0..k-1, each
    present, then day) that change sign at least once. `_first_root` block by block; the
    rows it leaves in doubt are gathered per row width and settled together."""
    k = int(seg[-1]) + 1
    x = np.empty(k)
    count = np.ones(k, dtype=np.int64)
    doubtful: dict[int, list] = {}
    for members, block in _blocks(seg, day, cf):
        x[members], certain = _first_root(block)
        if not certain.all():
            doubt = ~certain
            parts = doubtful.setdefault(block.t.shape[1], [])
            parts.append((members[doubt], block.rows(doubt), x[members][doubt]))
    for parts in doubtful.values():
        members = np.concatenate([p[0] for p in parts])
        block = _Block.stack([p[1] for p in parts])
        root = np.concatenate([p[2] for p in parts])
        x[members], count[members] = _settle(block, root, near[members], horizon_days[members])
    return x, count


def _blocks(seg: np.ndarray, day: np.ndarray, cf: np.ndarray) -> Iterator[tuple]:
    """(entity numbers, _Block) per row width, cut into blocks of about _BLOCK_SIZE cells,
    built one at a time (cache-sized, and the memory of one is reused by the next), from
    flows sorted by entity (numbered 0..k-1, each present) then day; t = (day - the
    entity's first day) / 365."""
    n = np.bincount(seg)
    starts = np.cumsum(n) - n
    width = _width(n)
    for w in np.unique(width):
        same_width = np.flatnonzero(width == w)
        for members in np.array_split(same_width, -(-len(same_width) * w // _BLOCK_SIZE)):
            yield members, _block(members, w, n, starts, day, cf)


def _block(
    members: np.ndarray,
    w: int,
    n: np.ndarray,
    starts: np.ndarray,
    day: np.ndarray,
    cf: np.ndarray,
) -> _Block:
    """The _Block of width w of entities `members` (see `_blocks`)."""
    k = len(members)
    at = starts[members[0]]
    dense_t = np.empty((k, w))
    dense_t[:] = day[starts[members] + n[members] - 1, None]
    dense_cf = np.zeros((k, w))
    n0 = n[members[0]]
    if members[-1] - members[0] == k - 1 and (n[members] == n0).all():
        dense_t[:, :n0] = day[at : at + k * n0].reshape(k, n0)
        dense_cf[:, :n0] = cf[at : at + k * n0].reshape(k, n0)
    else:
        row = np.repeat(np.arange(k), n[members])
        flow = np.arange(len(row)) - np.repeat(np.cumsum(n[members]) - n[members], n[members])
        source = np.repeat(starts[members], n[members]) + flow
        dense_t[row, flow] = day[source]
        dense_cf[row, flow] = cf[source]
    dense_t -= dense_t[:, :1]
    dense_t /= _DAYS_PER_YEAR
    return _Block.build(dense_t, dense_cf, n[members])


def _factorize(entity: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, sorted distinct entities) as `pd.factorize(sort=True)`, null -> -1;
    integer labels already in order are numbered where they change."""
    values = entity.to_numpy()
    if values.dtype.kind in "iu" and len(values) and (values[1:] >= values[:-1]).all():
        new = np.empty(len(values), dtype=bool)
        new[0] = True
        np.not_equal(values[1:], values[:-1], out=new[1:])
        codes = np.cumsum(new, dtype=np.int32 if len(values) < 2**31 else np.int64)
        codes -= 1
        return codes, values[new]
    return pd.factorize(entity, sort=True)


def _days(dates: pd.Series) -> np.ndarray:
    """Whole days since 1970-01-01 as datetime64[D] (NaT kept); timezones dropped."""
    if isinstance(dates.dtype, np.dtype) and dates.dtype.kind == "M":
        values = dates.to_numpy()  # naive datetime64 already: no parsing, no copy
    else:
        stamps = pd.to_datetime(dates)
        if isinstance(stamps.dtype, pd.DatetimeTZDtype):
            stamps = stamps.dt.tz_localize(None)
        values = stamps.to_numpy()
    unit, count = np.datetime_data(values.dtype)
    days = values.view(np.int64) // (np.timedelta64(1, "D") // np.timedelta64(count, unit))
    missing = np.isnat(values)
    if missing.any():
        days[missing] = np.iinfo(np.int64).min  # NaT
    return days.view("datetime64[D]")


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
    codes, uniques = _factorize(flows["entity"])
    entities = pd.Index(uniques, name="entity")
    near = _per_entity(near_period_rate, entities, 0.0)
    horizon = _per_entity(horizon_days, entities, _DAYS_PER_YEAR)
    if (horizon <= 0).any():
        raise ValueError("horizon_days must be positive")
    amount = pd.to_numeric(flows["amount"]).to_numpy(dtype=float, na_value=np.nan)
    codes, days, amount = _compress(codes >= 0, codes, _days(flows["date"]), amount)

    n = len(entities)
    days = days.view(np.int64)
    invalid = ~np.isfinite(amount) | np.isnat(days.view("datetime64[D]"))
    bad = np.zeros(n, dtype=bool)
    if invalid.any():
        bad = np.bincount(codes, invalid, minlength=n) > 0
        codes, days, amount = _compress(~bad[codes], codes, days, amount)
    same = codes[1:] == codes[:-1]
    if not ((codes[1:] > codes[:-1]) | (same & (days[1:] >= days[:-1]))).all():
        order = np.lexsort((days, codes))
        codes, days, amount = codes[order], days[order], amount[order]
        same = codes[1:] == codes[:-1]
    repeat = same & (days[1:] == days[:-1])
    if repeat.any():
        first = np.flatnonzero(np.concatenate(([True], ~repeat)))
        codes, days, amount = codes[first], days[first], np.add.reduceat(amount, first)
    ent, day, cf = _compress(amount != 0, codes, days, amount)
    bounds = np.searchsorted(ent, np.arange(n + 1, dtype=ent.dtype))
    n_flows = np.diff(bounds)
    positive = cf > 0
    two_signs = np.zeros(n, dtype=bool)
    some = n_flows > 0
    if some.any():
        starts = bounds[:-1][some]
        two_signs[some] = np.logical_or.reduceat(positive, starts) & np.logical_or.reduceat(
            ~positive, starts
        )

    status = np.select(
        [bad, n_flows == 0, n_flows == 1, ~two_signs],
        ["non_finite_input", "zero_flows", "too_few_flows", "no_sign_change"],
        "ok",
    ).astype(object)
    rate = np.full(n, np.nan)
    log1p_rate = np.full(n, np.nan)
    roots = np.zeros(n, dtype=np.int64)
    solve = status == "ok"
    if solve.any():
        seg, kept_day, kept_cf = _compress(solve[ent], ent, day, cf)
        if not solve.all():
            seg = (np.cumsum(solve) - 1)[seg]
        x, count = _solve(seg, kept_day, kept_cf, near[solve], horizon[solve])
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
