"""What a report is drawn from: the stored outputs of one shard, read in one place.

`read_stored` is the only function of the report package that reads the partitioned tables
(through `PartitionStore.read`); `shard_for` the only one that locates a portfolio. The
inputs (portfolios, benchmarks) come from their assets' IO manager.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from perf_pipeline.increments import shard_of
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
VALUATION_FIELDS = [
    "date",
    "entity_type",
    "portfolio_id",
    "account_id",
    "security_id",
    "market_value",
    "inflow",
    "outflow",
    "twr_index",
    "price_age_days",
]
"""The daily_valuations columns a report shows."""


def read_stored(
    store: PartitionStore, table: str, shard: str, as_of: dt.date | None, columns: Sequence[str]
) -> pd.DataFrame:
    """Rows of one shard of a stored table up to `as_of` (all when None): the report
    package's only read of the partitioned tables."""
    return store.read(table, [shard], end=as_of, columns=list(columns))


def shard_for(portfolio_ids: Sequence[str], shard_count: int) -> list[str]:
    """The shard holding each portfolio's rows."""
    return [str(s) for s in shard_of(portfolio_ids, shard_count)]


@dataclass(frozen=True)
class PortfolioData:
    """Everything stored about one portfolio that its report shows.

    `portfolio`: its row of the portfolios input; `metrics`: its portfolio-level
    performance_metrics rows (every calculation date and period); `daily`: its portfolio
    rows of daily_valuations; `holdings`: its account and security rows on the as-of date;
    `benchmark`: closes of its benchmark (benchmark_id, date, close), possibly empty."""

    portfolio: dict
    metrics: pd.DataFrame
    daily: pd.DataFrame
    holdings: pd.DataFrame
    benchmark: pd.DataFrame

    @property
    def portfolio_id(self) -> str:
        return str(self.portfolio["portfolio_id"])

    @property
    def as_of(self) -> pd.Timestamp:
        """The latest day valued (the report's as-of date)."""
        return pd.Timestamp(self.daily["date"].max())


def shard_metrics(store: PartitionStore, shard: str, as_of: dt.date | None) -> pd.DataFrame:
    """The portfolio-level performance_metrics rows of a shard up to `as_of`."""
    rows = read_stored(store, "performance_metrics", shard, as_of, METRIC_FIELDS)
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
    valued = read_stored(store, "daily_valuations", shard, as_of, VALUATION_FIELDS)
    valued = valued.loc[valued["portfolio_id"].isin(list(wanted))]
    described = portfolios.set_index("portfolio_id")
    by_portfolio = dict(tuple(valued.groupby("portfolio_id", sort=True)))
    metrics_of = dict(tuple(metrics.groupby("entity_id", sort=False)))
    for pid in sorted(wanted):
        rows = by_portfolio.get(pid)
        if rows is None or pid not in metrics_of or pid not in described.index:
            continue
        daily = rows.loc[rows["entity_type"] == "portfolio"].sort_values("date")
        last = daily["date"].max()
        holdings = rows.loc[(rows["date"] == last) & (rows["entity_type"] != "portfolio")]
        row = {"portfolio_id": pid, **described.loc[pid].to_dict()}
        bench_id = row.get("benchmark_id")
        bench = (
            benchmarks.loc[benchmarks["benchmark_id"] == bench_id]
            if isinstance(bench_id, str)
            else benchmarks.iloc[:0]
        )
        yield PortfolioData(
            portfolio=row,
            metrics=metrics_of[pid].sort_values(["calculation_date", "time_period"]),
            daily=daily.reset_index(drop=True),
            holdings=holdings.reset_index(drop=True),
            benchmark=bench[["benchmark_id", "date", "close"]],
        )
