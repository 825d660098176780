"""Modified Dietz return over a period (b, D].

    R = (MV_D - MV_b - sum F_i) / (MV_b + sum w_i F_i),   w_i = (D - d_i).days / (D - b).days

F_i is the net external flow (IN - OUT, + into the entity) dated d_i; only flows with
b < d_i <= D count (a flow on D has weight 0). Days are calendar days between whole dates.

NaN policy: b >= D, a missing date, a NaN value or a NaN flow inside the period, or
|denominator| < 1e-12 -> NaN. Results are never inf.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perf_pipeline.calc.calendar import as_day, as_days

DENOMINATOR_TOLERANCE = 1e-12  # |MV_b + sum w_i F_i| below this: the return is NaN


def _weighted_flows(
    amounts: np.ndarray, dates: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per flow: the amount counted in the period and w_i * amount (both 0 outside (b, D])."""
    inside = (dates > start) & (dates <= end)
    span = (end - start).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = (end - dates).astype(float) / span
    counted = np.where(inside, amounts, 0.0)
    return counted, np.where(inside, weight * amounts, 0.0)


def _dietz(begin, end_value, flow_sum, weighted_sum, start, end) -> np.ndarray:
    """Modified Dietz from the flow sums, elementwise; NaN where undefined (module docstring)."""
    begin = np.asarray(begin, dtype=float)
    denominator = begin + weighted_sum
    valid = (start < end) & (np.abs(denominator) >= DENOMINATOR_TOLERANCE)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.where(
            valid, (end_value - begin - flow_sum) / np.where(valid, denominator, 1), np.nan
        )
    return np.where(np.isfinite(out), out, np.nan)


def modified_dietz(
    begin_value: float, end_value: float, flows: pd.Series | None, start, end
) -> float:
    """Modified Dietz return of one entity over (start, end]; formula in the module docstring.

    ``flows``: net external flows (+ in, - out) indexed by date; None or empty for none.
    """
    b, d = as_day(start), as_day(end)
    if flows is None or len(flows) == 0:
        counted = weighted = np.zeros(0)
    else:
        counted, weighted = _weighted_flows(flows.to_numpy(dtype=float), as_days(flows.index), b, d)
    return float(_dietz(begin_value, end_value, counted.sum(), weighted.sum(), b, d))


def modified_dietz_many(
    begin_values: pd.Series,
    end_values: pd.Series,
    flows: pd.DataFrame,
    start,
    end,
) -> pd.Series:
    """Modified Dietz return of many entities in one vectorized pass, a Series by entity.

    ``begin_values`` (MV_b) and ``end_values`` (MV_D): Series indexed by entity; the result has
    ``begin_values``' index (end values missing for an entity -> NaN). ``flows``: a long frame
    with columns ``entity``, ``date``, ``amount`` (net, + in); rows of other entities are ignored.
    ``start`` / ``end``: one date for all, or a Series of dates by entity. Equal to
    ``modified_dietz`` entity by entity.
    """
    entities = begin_values.index
    if not entities.is_unique:
        raise ValueError("begin_values must have one row per entity")
    begin = begin_values.to_numpy(dtype=float)
    end_value = end_values.reindex(entities).to_numpy(dtype=float)
    b = _per_entity_days(start, entities)
    d = _per_entity_days(end, entities)

    position = entities.get_indexer(flows["entity"])
    known = position >= 0
    position = position[known]
    counted, weighted = _weighted_flows(
        flows["amount"].to_numpy(dtype=float)[known],
        as_days(flows["date"])[known],
        b[position],
        d[position],
    )
    flow_sum = np.bincount(position, weights=counted, minlength=len(entities))
    weighted_sum = np.bincount(position, weights=weighted, minlength=len(entities))
    result = _dietz(begin, end_value, flow_sum, weighted_sum, b, d)
    return pd.Series(result, index=entities, name="modified_dietz")


def _per_entity_days(dates, entities: pd.Index) -> np.ndarray:
    """A scalar date or a Series of dates by entity, as one datetime64[D] per entity."""
    if isinstance(dates, pd.Series):
        return as_days(dates.reindex(entities))
    return np.full(len(entities), as_day(dates))
