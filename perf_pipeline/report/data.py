"""What a report is drawn from: the stored outputs of one shard, read in one place.

`read_stored` is the only function of the report package that reads the partitioned tables
(through `PartitionStore.read`); `shard_for` the only one that locates a portfolio: a new
storage layout re-points these two. The
inputs (portfolios, benchmarks) come from their assets' IO manager.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from perf_pipeline.calc.calendar import business_days, previous_business_day
from perf_pipeline.calc.performance import benchmark_closes
from perf_pipeline.resources.partition_store import PartitionStore

METRIC_FIELDS = [
    "calculation_date",
    "entity_type",
    "entity_id",
    "time_period",
    "start_date",
    "end_date",
    "partial_period",
    "twr",
    "twr_local",
    "fx_effect",
    "twr_annualized",
    "mwr",
    "mwr_annualized",
    "modified_dietz",
    "volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "benchmark_twr",
    "beta",
    "alpha",
    "tracking_error",
    "information_ratio",
    "var_95",
    "cvar_95",
]
"""The performance_metrics columns a report shows or keys on."""
HISTORY_FIELDS = [
    "date",
    "portfolio_id",
    "holding",
    "market_value",
    "inflow",
    "outflow",
    "twr_index",
]
"""The daily_valuations columns of the portfolios' history. `holding` is null on portfolio
rows only (units of a position, cash of an account): it picks them out without reading the
entity_type text of every position's row, which would double the read."""
HOLDING_FIELDS = [
    "date",
    "entity_type",
    "portfolio_id",
    "account_id",
    "security_id",
    "market_value",
    "currency",
    "market_value_local",
    "price_age_days",
]
"""The daily_valuations columns of the holdings on the as-of date, a position's currency and
its value in it included."""


def read_stored(
    store: PartitionStore,
    table: str,
    shard: str,
    start: dt.date | None,
    end: dt.date | None,
    columns: Sequence[str],
) -> pd.DataFrame:
    """Rows of one shard of a stored table with day in start..end (open when None): the
    report package's only read of the partitioned tables."""
    return store.read(table, [shard], start=start, end=end, columns=list(columns))


def shard_for(store: PartitionStore, portfolio_ids: Sequence[str]) -> list[str]:
    """The shard holding each portfolio's rows (the store's PERF_SHARDS layout)."""
    return [str(s) for s in store.shard_of(portfolio_ids)]


@dataclass(frozen=True)
class PortfolioData:
    """Everything stored about one portfolio that its report shows.

    `portfolio`: its row of the portfolios input; `metrics`: its portfolio-level
    performance_metrics rows (every calculation date and period); `daily`: its portfolio
    rows of daily_valuations; `holdings`: its account, security and cash rows on the as-of
    date;
    `benchmark`: its benchmark's closes forward-filled on business days (the metrics' own
    calc.performance.benchmark_closes), None without a benchmark."""

    portfolio: dict
    metrics: pd.DataFrame
    daily: pd.DataFrame
    holdings: pd.DataFrame
    benchmark: pd.Series | None

    @property
    def portfolio_id(self) -> str:
        return str(self.portfolio["portfolio_id"])

    @property
    def as_of(self) -> pd.Timestamp:
        """The latest day valued (the report's as-of date)."""
        return pd.Timestamp(self.daily["date"].max())


def shard_metrics(store: PartitionStore, shard: str, as_of: dt.date | None) -> pd.DataFrame:
    """The portfolio-level performance_metrics rows of a shard up to `as_of`."""
    rows = read_stored(store, "performance_metrics", shard, None, as_of, METRIC_FIELDS)
    return rows.loc[rows["entity_type"] == "portfolio"].drop(columns="entity_type")


def portfolios_of_shard(
    store: PartitionStore,
    shard: str,
    metrics: pd.DataFrame,
    portfolios: pd.DataFrame,
    benchmarks: pd.DataFrame,
    wanted: Sequence[str],
    as_of: dt.date | None,
) -> Iterator[PortfolioData]:
    """PortfolioData of each portfolio of `wanted` in this shard (its metrics already read:
    `shard_metrics`), reading the shard's daily valuations once."""
    if not wanted:
        return
    history = read_stored(store, "daily_valuations", shard, None, as_of, HISTORY_FIELDS)
    history = history.loc[history["holding"].isna() & history["portfolio_id"].isin(list(wanted))]
    if history.empty:
        return
    last = pd.Timestamp(history["date"].max())
    held = read_stored(store, "daily_valuations", shard, last.date(), last.date(), HOLDING_FIELDS)
    held = held.loc[held["entity_type"] != "portfolio"]
    calendar = business_days(previous_business_day(history["date"].min()), last)
    described = portfolios.set_index("portfolio_id")
    closes = {
        bid: benchmark_closes(rows, calendar).iloc[:, 0]
        for bid, rows in benchmarks.groupby("benchmark_id")
        if bid in set(described["benchmark_id"].dropna())
    }
    daily_of = dict(tuple(history.groupby("portfolio_id", sort=True)))
    held_of = dict(tuple(held.groupby("portfolio_id", sort=False)))
    metrics_of = dict(tuple(metrics.groupby("entity_id", sort=False)))
    for pid in sorted(wanted):
        daily = daily_of.get(pid)
        if daily is None or pid not in metrics_of or pid not in described.index:
            continue
        row = {"portfolio_id": pid, **described.loc[pid].to_dict()}
        daily = daily.sort_values("date").reset_index(drop=True)
        holdings = held_of.get(pid, held.iloc[:0])
        if len(daily) and pd.Timestamp(daily["date"].iloc[-1]) != last:
            holdings = held.iloc[:0]  # valued until before the shard's last day: closed
        yield PortfolioData(
            portfolio=row,
            metrics=metrics_of[pid].sort_values(["calculation_date", "time_period"]),
            daily=daily,
            holdings=holdings.reset_index(drop=True),
            benchmark=closes.get(row.get("benchmark_id")),
        )
