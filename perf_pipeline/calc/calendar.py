"""Valuation calendar: business days are Monday to Friday, with no holidays.

Every function works on whole days (a time of day is dropped), is vectorized with numpy
datetime64 arithmetic, and returns the kind of object it was given: a ``pd.Timestamp`` for a
scalar, a ``pd.DatetimeIndex``, a ``pd.Series`` (index and name kept) or a datetime64
``np.ndarray``, in the input's datetime unit. NaT in -> NaT out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd

DatesT = TypeVar("DatesT", pd.Timestamp, pd.DatetimeIndex, pd.Series, np.ndarray)

_DAY = "datetime64[D]"
_RESULT_DTYPE = "datetime64[us]"  # pandas' default resolution for dates built here


def _map_days(dates, fn: Callable[[np.ndarray], np.ndarray]):
    """Apply ``fn`` (datetime64[D] ndarray -> datetime64[D] ndarray) keeping the input's kind."""
    if isinstance(dates, pd.Series):
        values = pd.DatetimeIndex(dates)
        out = _map_days(values, fn)
        return pd.Series(out, index=dates.index, name=dates.name)
    if isinstance(dates, pd.DatetimeIndex):
        tz = dates.tz
        naive = dates.tz_localize(None) if tz is not None else dates
        days = fn(naive.to_numpy().astype(_DAY))
        out = pd.DatetimeIndex(days.astype(naive.dtype), name=dates.name)
        return out.tz_localize(tz) if tz is not None else out
    if isinstance(dates, np.ndarray):
        if not np.issubdtype(dates.dtype, np.datetime64):
            raise ValueError(f"expected a datetime64 array, got dtype {dates.dtype}")
        return fn(dates.astype(_DAY)).astype(dates.dtype)
    if np.ndim(dates) == 0:
        stamp = pd.Timestamp(dates)
        if pd.isna(stamp):
            return pd.NaT
        tz = stamp.tz
        naive = stamp.tz_localize(None) if tz is not None else stamp
        day = fn(np.array([naive.to_datetime64()]).astype(_DAY))[0]
        out = pd.Timestamp(day).as_unit(stamp.unit)
        return out.tz_localize(tz) if tz is not None else out
    return _map_days(pd.DatetimeIndex(dates), fn)


def as_day(date) -> np.datetime64:
    """One date as datetime64[D]: time of day dropped, wall-clock day if tz-aware, NaT if none."""
    stamp = pd.Timestamp(date)
    if pd.isna(stamp):
        return np.datetime64("NaT", "D")
    return np.datetime64(stamp.tz_localize(None) if stamp.tz else stamp, "D")


def as_days(dates) -> np.ndarray:
    """Array-like dates as a datetime64[D] ndarray, with the conventions of ``as_day``."""
    index = pd.DatetimeIndex(dates)
    return (index.tz_localize(None) if index.tz is not None else index).to_numpy().astype(_DAY)


def roll_days(days: np.ndarray) -> np.ndarray:
    """Kernel of ``roll_to_business_day`` on a datetime64[D] array."""
    return np.busday_offset(days, 0, roll="forward")


def previous_days(days: np.ndarray) -> np.ndarray:
    """Kernel of ``previous_business_day`` on a datetime64[D] array."""
    return np.busday_offset(days, -1, roll="forward")


def next_days(days: np.ndarray) -> np.ndarray:
    """Kernel of ``next_business_day`` on a datetime64[D] array."""
    return np.busday_offset(days, 1, roll="backward")


def last_business_day_on_or_before(days: np.ndarray) -> np.ndarray:
    """The latest business day <= each day (datetime64[D] in and out)."""
    return np.busday_offset(days, 0, roll="backward")


def month_end_days(months: np.ndarray) -> np.ndarray:
    """The last business day of each month (datetime64[M] in, datetime64[D] out)."""
    return np.busday_offset((months + 1).astype(_DAY), -1, roll="forward")


def roll_to_business_day(dates: DatesT) -> DatesT:
    """Saturday and Sunday -> the next Monday; business days unchanged."""
    return _map_days(dates, roll_days)


def previous_business_day(dates: DatesT) -> DatesT:
    """The latest business day strictly before each date (Saturday, Sunday, Monday -> Friday)."""
    return _map_days(dates, previous_days)


def next_business_day(dates: DatesT) -> DatesT:
    """The earliest business day strictly after each date (Friday, Saturday, Sunday -> Monday)."""
    return _map_days(dates, next_days)


def business_days(start, end) -> pd.DatetimeIndex:
    """Business days d with start <= d <= end (both inclusive); empty if start > end or NaT."""
    first, last = as_day(start), as_day(end)
    if np.isnat(first) or np.isnat(last) or first > last:
        return pd.DatetimeIndex([], dtype=_RESULT_DTYPE)
    days = np.arange(first, last + 1, dtype=_DAY)
    return pd.DatetimeIndex(days[np.is_busday(days)].astype(_RESULT_DTYPE))


def month_end_business_days(start, end) -> pd.DatetimeIndex:
    """The last business day of each month, for those lying in [start, end]; sorted."""
    first, last = as_day(start), as_day(end)
    if np.isnat(first) or np.isnat(last) or first > last:
        return pd.DatetimeIndex([], dtype=_RESULT_DTYPE)
    months = np.arange(first.astype("datetime64[M]"), last.astype("datetime64[M]") + 1)
    ends = month_end_days(months)
    ends = ends[(ends >= first) & (ends <= last)]
    return pd.DatetimeIndex(ends.astype(_RESULT_DTYPE))
