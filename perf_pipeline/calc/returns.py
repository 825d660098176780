"""Daily returns, the performance index and geometric linking.

Daily return of day t, with MV the market value at the close, IN / OUT the amounts flowing
into / out of the entity that day (both >= 0), by flow timing:

- ``bod_in_eod_out`` (default): r_t = (MV_t + OUT_t) / (MV_{t-1} + IN_t) - 1
- ``start`` (all flows at the start of the day): r_t = MV_t / (MV_{t-1} + IN_t - OUT_t) - 1
- ``end`` (all flows at the end of the day): r_t = (MV_t - IN_t + OUT_t) / MV_{t-1} - 1

NaN policy: when |denominator| < 1e-9 the entity was not invested that day and r_t is NaN,
which links as 0 (r = 0) in the index and in linked returns. NaN in a value or a flow gives
NaN returns wherever it enters the formula. Results are never inf.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TIMINGS: tuple[str, ...] = ("bod_in_eod_out", "start", "end")

NOT_INVESTED_TOLERANCE = 1e-9  # |denominator| below this: not invested, return is NaN


def return_terms(
    values: np.ndarray,
    inflows: np.ndarray,
    outflows: np.ndarray,
    timing: str = "bod_in_eod_out",
    previous_value: np.ndarray | float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(numerator, denominator) of each daily return by the module's formulas, same shapes as
    `values` (see `daily_returns_array` for the arguments). The denominator is the capital
    at work that day (MV_{t-1} + IN_t by default), the weight of an entity in its parent's
    return. Raises ValueError for an unknown timing."""
    if timing not in TIMINGS:
        raise ValueError(f"unknown timing {timing!r}; expected one of {TIMINGS}")
    mv = np.asarray(values, dtype=float)
    flow_in = np.broadcast_to(np.asarray(inflows, dtype=float), mv.shape)
    flow_out = np.broadcast_to(np.asarray(outflows, dtype=float), mv.shape)
    if mv.shape[0] == 0:
        return np.empty(mv.shape, dtype=float), np.empty(mv.shape, dtype=float)
    first = np.zeros(mv.shape[1:]) if previous_value is None else previous_value
    first = np.broadcast_to(np.asarray(first, dtype=float), mv.shape[1:])
    mv_prev = np.concatenate([first[np.newaxis, ...], mv[:-1]], axis=0)
    if timing == "bod_in_eod_out":
        return mv + flow_out, mv_prev + flow_in
    if timing == "start":
        return mv, mv_prev + flow_in - flow_out
    return mv - flow_in + flow_out, mv_prev


def daily_returns_array(
    values: np.ndarray,
    inflows: np.ndarray,
    outflows: np.ndarray,
    timing: str = "bod_in_eod_out",
    previous_value: np.ndarray | float | None = None,
) -> np.ndarray:
    """Daily returns of aligned arrays, shape (T,) or (T, N): dates x entities, axis 0 = time.

    ``previous_value`` is MV before the first row, shape () or (N,); default 0 (so the first row
    has a return only if money flows in, or under ``end`` timing, never). Formulas and NaN policy
    in the module docstring. Raises ValueError for an unknown timing.
    """
    return ratio_returns(*return_terms(values, inflows, outflows, timing, previous_value))


def ratio_returns(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator - 1 of `return_terms`, with the module's NaN policy (NaN when
    not invested, never inf)."""
    invested = np.abs(denominator) >= NOT_INVESTED_TOLERANCE
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.where(invested, numerator / np.where(invested, denominator, 1.0) - 1.0, np.nan)
    out[~np.isfinite(out)] = np.nan
    return out


def _flows_on(dates: pd.DatetimeIndex, flows: pd.Series | None) -> np.ndarray:
    """Flow amounts summed onto ``dates``: each flow goes to the first date on or after its own
    (a weekend flow lands on the next valuation date, an earlier one on the first date); flows
    after the last date are dropped."""
    out = np.zeros(len(dates))
    if flows is None or len(flows) == 0 or len(dates) == 0:
        return out
    flow_dates = pd.DatetimeIndex(flows.index).as_unit(dates.unit)
    position = dates.searchsorted(flow_dates, side="left")
    kept = position < len(dates)
    np.add.at(out, position[kept], flows.to_numpy(dtype=float)[kept])
    return out


def daily_returns(
    values: pd.Series,
    inflows: pd.Series | None = None,
    outflows: pd.Series | None = None,
    timing: str = "bod_in_eod_out",
) -> pd.Series:
    """Daily returns of one entity (``daily_returns_array`` formulas) as a Series by date.

    ``values``: market value at each close, indexed by date (sorted here). ``inflows`` /
    ``outflows``: positive amounts indexed by date; dates missing from them count as 0, several
    flows on one date add up, and a flow dated between valuation dates (e.g. a weekend) or
    before the first one counts on the next valuation date; flows after the last date are
    ignored. The value before the first date is 0. Result name: ``daily_return``.
    """
    values = values.sort_index()
    dates = pd.DatetimeIndex(values.index)
    returns = daily_returns_array(
        values.to_numpy(dtype=float), _flows_on(dates, inflows), _flows_on(dates, outflows), timing
    )
    return pd.Series(returns, index=values.index, name="daily_return")


def performance_index(returns, base=1.0):
    """Performance index I_t = I_{t-1} (1 + r_t) along axis 0, with I_{-1} = ``base``.

    NaN returns link as 0 (the index stays flat). ``base`` is a scalar or one value per column
    (shape (N,)), so that a run can continue from a stored index. ndarray in -> ndarray out;
    Series / DataFrame in -> the same, with the same labels.
    """
    growth = 1.0 + np.nan_to_num(np.asarray(returns, dtype=float), nan=0.0)
    index = np.asarray(base, dtype=float) * np.cumprod(growth, axis=0)
    if isinstance(returns, pd.DataFrame):
        return pd.DataFrame(index, index=returns.index, columns=returns.columns)
    if isinstance(returns, pd.Series):
        return pd.Series(index, index=returns.index, name=returns.name)
    return index


def linked_return(returns) -> float:
    """Geometrically linked return prod(1 + r_i) - 1 over the non-null r_i of a 1-D sequence.

    Empty or all-null input -> 0.0 (a never-invested period has twr 0). A non-finite product
    -> NaN. Raises ValueError for input of more than one dimension.
    """
    r = np.asarray(returns, dtype=float)
    if r.ndim > 1:
        raise ValueError(f"linked_return takes a 1-D sequence, got shape {r.shape}")
    total = float(np.prod(1.0 + r[~np.isnan(r)]) - 1.0)
    return total if np.isfinite(total) else float("nan")
