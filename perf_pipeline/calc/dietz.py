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


def _flow_sums(
    group: np.ndarray, amounts: np.ndarray, dates: np.ndarray, start: np.ndarray, end: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(sum F_i, sum w_i F_i) per group over the flows in (b, D]; start/end are per group.

    ``group`` gives each flow's group number (0 .. len(start) - 1). Both forms sum through this
    one path, so the scalar and many-entity results are identical.
    """
    b, d = start[group], end[group]
    inside = (dates > b) & (dates <= d)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        weighted = (d - dates).astype(float) / (d - b).astype(float) * amounts
    counted = np.where(inside, amounts, 0.0)
    weighted = np.where(inside, weighted, 0.0)
    size = len(start)
    return (
        np.bincount(group, weights=counted, minlength=size),
        np.bincount(group, weights=weighted, minlength=size),
    )


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
    b, d = np.array([as_day(start)]), np.array([as_day(end)])
    if flows is None:
        flows = pd.Series([], dtype=float, index=pd.DatetimeIndex([]))
    amounts = flows.to_numpy(dtype=float)
    group = np.zeros(len(amounts), dtype=np.intp)
    flow_sum, weighted_sum = _flow_sums(group, amounts, as_days(flows.index), b, d)
    return float(_dietz(begin_value, end_value, flow_sum, weighted_sum, b, d)[0])


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

    group = entities.get_indexer(flows["entity"])
    known = group >= 0
    flow_sum, weighted_sum = _flow_sums(
        group[known],
        flows["amount"].to_numpy(dtype=float)[known],
        as_days(flows["date"])[known],
        b,
        d,
    )
    result = _dietz(begin, end_value, flow_sum, weighted_sum, b, d)
    return pd.Series(result, index=entities, name="modified_dietz")


def _per_entity_days(dates, entities: pd.Index) -> np.ndarray:
    """A scalar date or a Series of dates by entity, as one datetime64[D] per entity."""
    if isinstance(dates, pd.Series):
        return as_days(dates.reindex(entities))
    return np.full(len(entities), as_day(dates))
