"""As-of lookups: the last value dated on or before each business day, per key.

A value dated on a weekend counts from the next business day (it is known then), and its age
is counted in calendar days from its own date. Used for security prices and exchange rates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perf_pipeline.calc.calendar import roll_to_business_day
from perf_pipeline.calc.segments import forward_fill_positions, gather_rows


def last_known(
    source: pd.DataFrame,
    key: str,
    keys: pd.Index,
    value: str,
    when: str,
    dates: pd.DatetimeIndex,
    order: tuple[str, ...] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """(value, day) as (T, K) matrices: for each business day of `dates` and each of `keys`,
    the `value` of the last row of `source` whose `key` is that key and whose `when` is on or
    before the day, and that row's own date as days since the epoch (float). NaN where there is
    none. Rows of one key and day are ordered by `when` then `order`; the last one wins. A row
    before the first date seeds the fill."""
    n_dates, n_keys = len(dates), len(keys)
    src = source.loc[source[key].isin(keys)]
    src = src.loc[src[when] <= dates[-1]].sort_values([when, *order], kind="stable")
    rows = np.asarray(dates.searchsorted(roll_to_business_day(pd.DatetimeIndex(src[when]))))
    cols = keys.get_indexer(src[key])
    last = ~pd.Series(rows * n_keys + cols).duplicated(keep="last").to_numpy()
    rows, cols, src = rows[last], cols[last], src.loc[last]
    value_m = np.full((n_dates, n_keys), np.nan)
    day_m = np.full((n_dates, n_keys), np.nan)
    value_m[rows, cols] = src[value].to_numpy(dtype=float)
    day_m[rows, cols] = day_numbers(pd.DatetimeIndex(src[when]))
    filled = forward_fill_positions(~np.isnan(value_m))
    return gather_rows(value_m, filled), gather_rows(day_m, filled)


def day_numbers(dates: pd.DatetimeIndex) -> np.ndarray:
    """The dates as days since the epoch, shape (T,), to subtract a `last_known` day from."""
    return dates.to_numpy().astype("datetime64[D]").astype(np.int64)
