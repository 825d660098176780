"""Exchange rates: the rate that converts an amount in currency C into currency B on each day.

On business day t, converting C into B uses, in this order (docs/methodology.md, "Several
currencies"):

1. the pair (C, B): x_t = rate of (base=C, quote=B), units of B per unit of C;
2. the inverse of (B, C): x_t = 1 / rate of (base=B, quote=C);
3. the cross through the pivot P: x_t = x_t(C -> P) * x_t(P -> B), each leg by 1. then 2.

Each pair is forward-filled over business days like a price: the last rate dated on or
before t. The age of a rate is the calendar days from its date to t; a cross rate is as old
as its older leg. When no rate of any route is known on or before t, x_t is NaN: nothing
falls back to 1. C == B gives x_t = 1 with age 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perf_pipeline.calc.asof import day_numbers, last_known

DEFAULT_PIVOT = "USD"
FX_RATE_COLUMNS = ["date", "base", "quote", "rate"]


def conversion_rates(
    fx_rates: pd.DataFrame | None,
    pairs: pd.DataFrame,
    dates: pd.DatetimeIndex,
    pivot: str = DEFAULT_PIVOT,
) -> tuple[np.ndarray, np.ndarray]:
    """(rate, age_days) as (T, K) matrices for the K rows of `pairs` (columns ``source`` and
    ``target``: convert an amount in ``source`` into ``target``) on the business days `dates`.

    `fx_rates` has at least date, base, quote, rate (one row per date, base, quote); None or
    empty means no rates at all.
    """
    source = pairs["source"].to_numpy(dtype=object)
    target = pairs["target"].to_numpy(dtype=object)
    n_dates, n_pairs = len(dates), len(pairs)
    rate = np.full((n_dates, n_pairs), np.nan)
    age = np.full((n_dates, n_pairs), np.nan)
    same = source == target
    rate[:, same], age[:, same] = 1.0, 0.0
    if fx_rates is None or fx_rates.empty or same.all() or n_dates == 0:
        return rate, age
    quoted = _QuotedSeries(fx_rates, dates)
    direct_rate, direct_age = quoted.convert(source, target)
    leg1_rate, leg1_age = quoted.convert(source, np.full(n_pairs, pivot, dtype=object))
    leg2_rate, leg2_age = quoted.convert(np.full(n_pairs, pivot, dtype=object), target)
    cross_rate = leg1_rate * leg2_rate
    cross_age = np.maximum(leg1_age, leg2_age)
    use_direct = ~np.isnan(direct_rate)
    rate[:, ~same] = np.where(use_direct, direct_rate, cross_rate)[:, ~same]
    age[:, ~same] = np.where(use_direct, direct_age, cross_age)[:, ~same]
    return rate, age


class _QuotedSeries:
    """Every quoted (base, quote) series, forward-filled over `dates`."""

    def __init__(self, fx_rates: pd.DataFrame, dates: pd.DatetimeIndex) -> None:
        named = fx_rates.assign(series=fx_rates["base"] + "/" + fx_rates["quote"])
        self.series = pd.Index(named["series"].unique())
        value, day = last_known(named, "series", self.series, "rate", "date", dates)
        today = day_numbers(dates)[:, None]
        self.value = np.hstack([value, np.full((len(dates), 1), np.nan)])
        self.age = np.hstack([today - day, np.full((len(dates), 1), np.nan)])

    def column(self, base: np.ndarray, quote: np.ndarray) -> np.ndarray:
        """Column of each (base, quote) series, or the all-NaN last column when not quoted."""
        found = self.series.get_indexer(pd.Index(base.astype(str) + "/" + quote.astype(str)))
        return np.where(found >= 0, found, len(self.series))

    def convert(self, source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rate and age of source -> target by the direct pair, else its inverse; 1 and 0 where
        source == target; NaN where neither is quoted on or before the day."""
        direct, inverse = self.column(source, target), self.column(target, source)
        has_direct = ~np.isnan(self.value[:, direct])
        rate = np.where(has_direct, self.value[:, direct], 1.0 / self.value[:, inverse])
        age = np.where(has_direct, self.age[:, direct], self.age[:, inverse])
        same = source == target
        rate[:, same], age[:, same] = 1.0, 0.0
        return rate, age
