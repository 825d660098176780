"""The three-year annualized ex-post standard deviation of monthly returns (GIPS).

For month t, on the monthly returns r_{t-35}..r_t (month-end to month-end TWRs, as
decimals, of the 36 months ending with t):

    sd_t = std(r_{t-35..t}, ddof) * sqrt(12)

- ddof: 0 by default (population), the package's convention for every dispersion figure;
  any non-negative integer below the window may be given.
- annualization: times sqrt(periods_per_year), 12 for monthly returns; never compounded.
- minimum length: a full window (36 months); before it the figure is NaN ("blank until 36
  months exist").
- NaN policy: a window holding any NaN month gives NaN (a missing month is not skipped:
  the figure would then cover more than three years). Units: a decimal fraction a year.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW_MONTHS = 36
MONTHS_PER_YEAR = 12


def rolling_ex_post_std_array(
    monthly: np.ndarray,
    window: int = WINDOW_MONTHS,
    periods_per_year: int = MONTHS_PER_YEAR,
    ddof: int = 0,
) -> np.ndarray:
    """The annualized standard deviation of each trailing `window` of rows (module docstring),
    along axis 0 of a (months,) or (months x entities) array; the same shape, NaN where the
    window is incomplete or holds a NaN."""
    if window < 1 or int(window) != window:
        raise ValueError(f"window must be a whole number of at least 1; got {window!r}")
    if ddof < 0 or int(ddof) != ddof or ddof >= window:
        raise ValueError(f"ddof must be an integer in 0..{window - 1}; got {ddof!r}")
    x = np.asarray(monthly, dtype=float)
    flat = x.reshape(len(x), -1)
    out = np.full(flat.shape, np.nan)
    if len(flat) >= window:
        windows = np.lib.stride_tricks.sliding_window_view(flat, window, axis=0)
        # windows: (months - window + 1, entities, window); a NaN anywhere makes std NaN
        out[window - 1 :] = windows.std(axis=-1, ddof=ddof) * np.sqrt(periods_per_year)
    return out.reshape(x.shape)


def three_year_ex_post_std(
    monthly: pd.Series | pd.DataFrame, ddof: int = 0
) -> pd.Series | pd.DataFrame:
    """rolling_ex_post_std_array over a Series (or a DataFrame of entities) of consecutive
    monthly returns indexed by month end; the same index and columns."""
    values = rolling_ex_post_std_array(monthly.to_numpy(dtype=float, na_value=np.nan), ddof=ddof)
    if isinstance(monthly, pd.DataFrame):
        return pd.DataFrame(values, index=monthly.index, columns=monthly.columns)
    return pd.Series(values, index=monthly.index, name=monthly.name)
