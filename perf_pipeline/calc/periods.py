"""Reporting periods: base dates, reporting rules, annualization and calculation dates.

A period for an as-of date D covers (b, D], b being its base date (a close). Rules
(docs/methodology.md, "Periods"):

- MTD / QTD / YTD: b = last business day of the previous month / quarter / year. An entity
  born after the business day following b is reported from inception instead: b = the ITD
  base and ``partial_period`` is true.
- 1M 3M 6M 1Y 3Y 5Y 10Y (N months): when D is the last business day of its month, b is the
  last business day of the month N months earlier (month-end to month-end); otherwise b is the
  last business day on or before D minus N months, the day clipped to that month's length.
  Reported only if the entity existed at b: inception <= next business day after b.
- ITD: b = the business day before inception.
- Nothing is reported when inception > D, or when D or inception is missing.

D is first taken as the last business day on or before it (a weekend as-of date is valued at
Friday's close, so it gets Friday's periods); inception is rolled forward to a business day
(a weekend inflow applies on the next business day).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perf_contract.ids import PERIODS
from perf_pipeline.calc.calendar import (
    as_days,
    last_business_day_on_or_before,
    month_end_business_days,
    month_end_days,
    next_days,
    previous_days,
    roll_days,
)

TRAILING_MONTHS: dict[str, int] = {
    "1M": 1, "3M": 3, "6M": 6, "1Y": 12, "3Y": 36, "5Y": 60, "10Y": 120,
}  # fmt: skip

DAYS_PER_YEAR = 365  # annualization basis, calendar days

_DAY = "datetime64[D]"
_MONTH = "datetime64[M]"


def _trailing_base(as_of: np.ndarray, months: int) -> np.ndarray:
    """Base date of a trailing N-month period (as_of: business days, datetime64[D])."""
    month = as_of.astype(_MONTH)
    target_month = month - months
    is_month_end = as_of == month_end_days(month)
    day_of_month = (as_of - month.astype(_DAY)).astype(np.int64)  # 0-based
    target_length = ((target_month + 1).astype(_DAY) - target_month.astype(_DAY)).astype(np.int64)
    clipped = target_month.astype(_DAY) + np.minimum(day_of_month, target_length - 1)
    return np.where(
        is_month_end,
        month_end_days(target_month),
        last_business_day_on_or_before(clipped),
    )


def _to_date_base(as_of: np.ndarray, period: str) -> np.ndarray:
    """Base date of MTD / QTD / YTD: last business day before the month / quarter / year."""
    month = as_of.astype(_MONTH)
    if period == "QTD":
        month_number = month.astype(np.int64)  # months since 1970-01, so 0 is a January
        month = (month_number - month_number % 3).astype(_MONTH)
    elif period == "YTD":
        month = as_of.astype("datetime64[Y]").astype(_MONTH)
    return previous_days(month.astype(_DAY))


def period_bounds(as_of, period: str, inception) -> pd.DataFrame:
    """Base date and reporting flags of one period for many (as-of date, inception) rows.

    ``as_of`` and ``inception`` are equal-length array-likes of dates (datetime64, Timestamps,
    Series, DatetimeIndex). Returns a frame in the same row order (indexed like ``as_of`` when
    it is a Series, else a RangeIndex) with columns ``start_date`` (the base date b, datetime64
    in ``as_of``'s unit, NaT when not reported), ``partial_period`` (bool) and ``reported``
    (bool). Raises ValueError for an unknown period name or unequal lengths.
    """
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; expected one of {PERIODS}")
    raw_as_of, born = as_days(as_of), as_days(inception)
    dtype = f"datetime64[{pd.DatetimeIndex(as_of).unit}]"
    if raw_as_of.shape != born.shape:
        raise ValueError(f"as_of has {raw_as_of.size} rows, inception has {born.size}")
    end = last_business_day_on_or_before(raw_as_of)
    born = roll_days(born)
    itd_base = previous_days(born)
    exists = ~np.isnat(end) & ~np.isnat(born) & (born <= end)

    partial = np.zeros(end.shape, dtype=bool)
    if period == "ITD":
        base, reported = itd_base, exists
    elif period in TRAILING_MONTHS:
        base = _trailing_base(end, TRAILING_MONTHS[period])
        reported = exists & (born <= next_days(base))
    else:
        base = _to_date_base(end, period)
        partial = exists & (born > next_days(base))
        base = np.where(partial, itd_base, base)
        reported = exists

    start = np.where(reported, base, np.datetime64("NaT", "D")).astype(dtype)
    index = as_of.index if isinstance(as_of, pd.Series) else None
    return pd.DataFrame(
        {"start_date": start, "partial_period": partial, "reported": reported},
        index=index,
    )


def annualize(total_return, days):
    """Annualized rate (1 + R)^(365 / days) - 1 of a total return R over ``days`` calendar days.

    Only periods of 365 days or more are annualized: ``days`` < 365 gives NaN. NaN in R or days
    -> NaN. R < -1 (no real root) -> NaN; R = -1 -> -1. Scalar in -> float out; array in ->
    ndarray out (broadcast).
    """
    rate = np.asarray(total_return, dtype=float)
    span = np.asarray(days, dtype=float)
    valid = (span >= DAYS_PER_YEAR) & (rate >= -1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        growth = np.where(valid, 1.0 + rate, 1.0)
        out = np.where(valid, growth ** (DAYS_PER_YEAR / np.where(valid, span, 1.0)) - 1.0, np.nan)
    return float(out) if out.ndim == 0 else out


def calculation_dates(inception, latest) -> pd.DatetimeIndex:
    """Each month-end business day from inception on, plus ``latest``; sorted and unique.

    Empty when inception or latest is missing or latest < inception (the entity does not exist
    yet). ``latest`` is the latest valuation date and is kept as given (normalized to a day).
    """
    first, last = pd.Timestamp(inception), pd.Timestamp(latest)
    if pd.isna(first) or pd.isna(last) or last.normalize() < first.normalize():
        return pd.DatetimeIndex([], dtype="datetime64[us]")
    ends = month_end_business_days(first, last)
    latest_day = pd.DatetimeIndex([last.normalize()]).as_unit(ends.unit)
    return ends.union(latest_day)
