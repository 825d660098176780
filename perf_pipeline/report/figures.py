"""Every number a report shows, picked out of the stored outputs (PortfolioData).

A stored figure is shown as stored, never recomputed: the key figures and the period table
are performance_metrics rows at the as-of date; monthly returns are the MTD rows at each
month-end calculation date, calendar years the YTD rows at each year's last one, the
rolling 12-month lines the 1Y rows. What is not stored is derived from stored series only:
growth of 10,000 is 10,000 x twr_index (with the benchmark's forward-filled closes rebased
on the same base day, as the metrics' benchmark_twr is), the drawdowns come from twr_index,
net invested capital is the running sum of inflow - outflow, and the GIPS three-year
dispersion is calc.ex_post over the stored monthly returns.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from perf_pipeline.calc.calendar import previous_business_day
from perf_pipeline.calc.ex_post import rolling_ex_post_std_array
from perf_pipeline.calc.valuation import POSITION_TYPES
from perf_pipeline.report.data import PortfolioData

GROWTH_BASE = 10_000.0
TABLE_PERIODS = ("MTD", "QTD", "YTD", "1Y", "3Y", "5Y", "10Y", "ITD")
PERIOD_FIELDS = [
    "twr",
    "twr_local",
    "fx_effect",
    "twr_annualized",
    "benchmark_twr",
    "excess_return",
    "mwr",
    "modified_dietz",
    "volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "beta",
    "alpha",
    "tracking_error",
    "information_ratio",
]
WORST_DRAWDOWNS = 5


def _value(x: Any) -> Any:
    """A JSON-ready scalar: NaN/NaT -> None, numpy scalars -> Python, timestamps -> ISO date."""
    if x is None or x is pd.NaT:
        return None
    if isinstance(x, pd.Timestamp | np.datetime64):
        return None if pd.isna(x) else pd.Timestamp(x).date().isoformat()
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return None if not math.isfinite(float(x)) else float(x)
    return x


def latest_rows(periods: dict[str, pd.DataFrame]) -> dict[str, dict[str, Any]]:
    """The rows of the latest calculation date (the as-of date), by period."""
    last = max(rows["calculation_date"].iloc[-1] for rows in periods.values())
    return {
        period: rows.iloc[-1].to_dict()
        for period, rows in periods.items()
        if rows["calculation_date"].iloc[-1] == last
    }


def _dates(values: pd.Series | pd.DatetimeIndex) -> list[str]:
    days = np.asarray(pd.DatetimeIndex(values).values, dtype="datetime64[D]")
    return np.datetime_as_string(days).tolist()


def _floats(values: Any) -> list[float | None]:
    """Floats as JSON-ready values: NaN and infinities become None."""
    x = np.asarray(values, dtype=float)
    finite = np.isfinite(x)
    if finite.all():
        return x.tolist()
    return [v if ok else None for v, ok in zip(x.tolist(), finite.tolist(), strict=True)]


def growth(data: PortfolioData) -> dict[str, Any]:
    """Growth of 10,000 from the base day (the business day before inception) and the
    benchmark's closes on the same days rebased there; deposits and withdrawals."""
    daily = data.daily
    days = pd.DatetimeIndex(daily["date"])
    base = pd.Timestamp(previous_business_day(days[0]))
    line = np.concatenate([[GROWTH_BASE], GROWTH_BASE * daily["twr_index"].to_numpy(float)])
    result: dict[str, Any] = {
        "dates": [base.date().isoformat(), *_dates(days)],
        "portfolio": _floats(line),
        "benchmark": None,
    }
    if data.benchmark is not None:
        bench = data.benchmark.reindex(days.insert(0, base)).to_numpy(float)
        if np.isfinite(bench[0]) and bench[0] != 0:
            result["benchmark"] = _floats(GROWTH_BASE * bench / bench[0])
    inflow, outflow = daily["inflow"].to_numpy(float), daily["outflow"].to_numpy(float)
    result["flows"] = [
        {"date": d, "amount": _value(i - o), "growth": _value(g)}
        for d, i, o, g in zip(_dates(days), inflow, outflow, line[1:], strict=True)
        if i != 0 or o != 0
    ]
    return result


def money(data: PortfolioData) -> dict[str, Any]:
    """Market value beside net invested capital (running sum of inflow - outflow)."""
    daily = data.daily
    net = np.cumsum(daily["inflow"].to_numpy(float) - daily["outflow"].to_numpy(float))
    return {
        "dates": _dates(daily["date"]),
        "market_value": _floats(daily["market_value"]),
        "net_invested": _floats(net),
    }


def drawdown_episodes(dates: list[str], index: np.ndarray) -> list[dict[str, Any]]:
    """Every fall below a running high of `index` (its first point is the base, I = 1): the
    peak (last day at the high), trough (first day of the lowest point), recovery (first day
    back at the high, None if not yet), depth (1 - trough / peak, positive), and calendar
    days from peak to trough and from trough to recovery. Deepest first."""
    high = np.maximum.accumulate(index)
    under = index < high * (1 - 1e-12)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], under, [False]]).astype(np.int8)))
    days = np.asarray(dates, dtype="datetime64[D]")
    episodes = []
    for start, stop in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
        peak, trough = start - 1, start + int(np.argmin(index[start:stop]))
        recovery = stop if stop < len(index) else None
        episodes.append(
            {
                "peak": dates[peak],
                "trough": dates[trough],
                "recovery": dates[recovery] if recovery is not None else None,
                "depth": float(1 - index[trough] / index[peak]),
                "days_to_trough": int((days[trough] - days[peak]).astype(int)),
                "days_to_recover": (
                    int((days[recovery] - days[trough]).astype(int))
                    if recovery is not None
                    else None
                ),
            }
        )
    return sorted(episodes, key=lambda e: -e["depth"])


def drawdowns(grown: dict[str, Any]) -> dict[str, Any]:
    """The underwater line (I / running high - 1, zero or negative) and the worst episodes."""
    index = np.asarray(grown["portfolio"], dtype=float) / GROWTH_BASE
    under = index / np.maximum.accumulate(index) - 1
    return {
        "dates": grown["dates"],
        "underwater": _floats(under),
        "current": _value(under[-1]),
        "worst": drawdown_episodes(grown["dates"], index)[:WORST_DRAWDOWNS],
    }


def by_period(metrics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A portfolio's metrics rows per period, each in calculation-date order."""
    ordered = metrics.sort_values("calculation_date", kind="stable")
    return {str(p): rows for p, rows in ordered.groupby("time_period", sort=False)}


def _last_of_each(stamps: np.ndarray, unit: str) -> np.ndarray:
    """Positions of the last of each run of equal `unit` (M, Y) among sorted dates."""
    keys = stamps.astype(f"datetime64[{unit}]")
    return np.flatnonzero(np.append(keys[1:] != keys[:-1], True))


def monthly(periods: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Monthly returns (the stored MTD TWR at each month's last calculation date: its
    month-end, or the as-of date in the current month) for portfolio and benchmark, on
    every month from the first (a month without a row is null); and the GIPS annual table:
    the year's return (stored YTD at the year's last calculation date) and the three-year
    ex-post standard deviation of the monthly returns at that month."""
    mtd = periods["MTD"]
    stamps = mtd["calculation_date"].to_numpy(dtype="datetime64[ns]")
    last = _last_of_each(stamps, "M")
    found = stamps[last].astype("datetime64[M]")
    months = np.arange(found[0], found[-1] + 1)
    where = np.searchsorted(months, found)
    twr, bench = np.full(len(months), np.nan), np.full(len(months), np.nan)
    twr[where] = mtd["twr"].to_numpy(dtype=float)[last]
    bench[where] = mtd["benchmark_twr"].to_numpy(dtype=float)[last]
    sd, bench_sd = rolling_ex_post_std_array(twr), rolling_ex_post_std_array(bench)
    ytd = periods["YTD"]
    year_end = _last_of_each(ytd["calculation_date"].to_numpy(dtype="datetime64[ns]"), "Y")
    annual = []
    for row in ytd.iloc[year_end].to_dict("records"):
        end = pd.Timestamp(row["calculation_date"])
        at = int(np.searchsorted(months, np.datetime64(end, "M")))
        annual.append(
            {
                "year": end.year,
                "end": _value(end),
                "partial": bool(row["partial_period"]) or end.month != 12,
                "twr": _value(row["twr"]),
                "twr_local": _value(row.get("twr_local")),
                "fx_effect": _value(row.get("fx_effect")),
                "benchmark_twr": _value(row["benchmark_twr"]),
                "sd_3y": _value(sd[at]) if at < len(months) else None,
                "benchmark_sd_3y": _value(bench_sd[at]) if at < len(months) else None,
            }
        )
    return {
        "months": np.datetime_as_string(months).tolist(),
        "twr": _floats(twr),
        "benchmark_twr": _floats(bench),
        "annual": annual,
    }


def rolling(periods: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """The stored 1Y rows at each calculation date with a full year: rolling 12-month
    return, volatility, Sharpe and beta."""
    one = periods.get("1Y")
    if one is None:
        one = periods["ITD"].iloc[:0]
    one = one.loc[~one["partial_period"].astype(bool).to_numpy()]
    return {
        "dates": _dates(one["calculation_date"]),
        **{name: _floats(one[name]) for name in ("twr", "volatility", "sharpe_ratio", "beta")},
    }


def holdings(data: PortfolioData) -> list[dict[str, Any]]:
    """Positions (securities, and cash as ``CASH.{currency}``) on the as-of date, by account:
    market value, weight in the portfolio's market value, price age, and the position's
    currency and its value in it (None where not stored); each account's own row (positions
    and cash) first."""
    total = float(data.daily["market_value"].iloc[-1])
    rows = data.holdings.sort_values(["account_id", "entity_type", "security_id"])
    return [
        {
            "account_id": row["account_id"],
            "security_id": row["security_id"] if row["entity_type"] in POSITION_TYPES else None,
            "market_value": _value(row["market_value"]),
            "weight": _value(row["market_value"] / total) if total else None,
            "price_age_days": _value(row["price_age_days"]),
            "currency": _value(row.get("currency")),
            "market_value_local": _value(row.get("market_value_local")),
        }
        for row in rows.to_dict("records")
    ]


def key_figures(latest: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The as-of date's headline figures, each a stored performance_metrics value."""
    itd, ytd, one, three = (latest.get(p) for p in ("ITD", "YTD", "1Y", "3Y"))

    def pick(row: dict[str, Any] | None, name: str) -> Any:
        return None if row is None else _value(row.get(name))

    return {
        "itd_twr": pick(itd, "twr"),
        "itd_twr_local": pick(itd, "twr_local"),
        "itd_fx_effect": pick(itd, "fx_effect"),
        "itd_twr_annualized": pick(itd, "twr_annualized"),
        "ytd_twr": pick(ytd, "twr"),
        "one_year_twr": pick(one, "twr"),
        "itd_mwr": pick(itd, "mwr"),
        "one_year_volatility": pick(one, "volatility"),
        "three_year_volatility": pick(three, "volatility"),
        "sharpe_ratio": pick(itd, "sharpe_ratio"),
        "max_drawdown": pick(itd, "max_drawdown"),
        "beta": pick(itd, "beta"),
        "tracking_error": pick(itd, "tracking_error"),
        "information_ratio": pick(itd, "information_ratio"),
        "one_year_var_95": pick(one, "var_95"),
        "one_year_cvar_95": pick(one, "cvar_95"),
    }


def period_table(latest: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored rows of TABLE_PERIODS at the as-of date; excess return = twr -
    benchmark_twr."""
    table = []
    for period in TABLE_PERIODS:
        row = latest.get(period)
        if row is None:
            continue
        values = {name: _value(row[name]) for name in PERIOD_FIELDS if name in row}
        twr, bench = values.get("twr"), values.get("benchmark_twr")
        values["excess_return"] = None if twr is None or bench is None else twr - bench
        table.append(
            {
                "period": period,
                "start": _value(row["start_date"]),
                "partial": bool(row["partial_period"]),
                **values,
            }
        )
    return table


def header(data: PortfolioData) -> dict[str, Any]:
    """Who and when: ids, currency, benchmark, inception, as-of date, oldest price used."""
    p = data.portfolio
    ages = data.holdings["price_age_days"].dropna()
    oldest = data.as_of - pd.Timedelta(days=float(ages.max())) if len(ages) else pd.NaT
    return {
        "portfolio_id": data.portfolio_id,
        "client_id": _value(p.get("client_id")),
        "base_currency": _value(p.get("base_currency")),
        "benchmark_id": p.get("benchmark_id") if isinstance(p.get("benchmark_id"), str) else None,
        "inception": _value(pd.Timestamp(data.daily["date"].iloc[0])),
        "as_of": _value(data.as_of),
        "oldest_price_date": _value(oldest),
    }


def report_figures(data: PortfolioData) -> dict[str, Any]:
    """Every number one report shows, JSON-ready (None for a null figure); the report embeds
    it as is, and draws its charts and tables from it."""
    grown = growth(data)
    under = drawdowns(grown)
    periods = by_period(data.metrics)
    latest = latest_rows(periods)
    worst = under["worst"][0] if under["worst"] else None
    key = key_figures(latest)
    key.update(
        max_drawdown_peak=worst["peak"] if worst else None,
        max_drawdown_trough=worst["trough"] if worst else None,
        max_drawdown_recovery=worst["recovery"] if worst else None,
        current_drawdown=under["current"],
    )
    return {
        "several_currencies": "fx_effect" in data.metrics.columns,
        "header": header(data),
        "key": key,
        "periods": period_table(latest),
        "growth": grown,
        "money": money(data),
        "drawdown": under,
        "monthly": monthly(periods),
        "rolling": rolling(periods),
        "holdings": holdings(data),
    }
