"""The store of the partitioned tables: rows of some shards over a range of business days.

The partitioned assets (daily_valuations, performance_metrics and the digests
they were computed from) write and read through this interface rather than an IO manager:
one ranged run covers many (day, shard) partitions, and its later steps read history from
before its range (the opening state, the windows of the period metrics), which an IO
manager's load of the run's own partitions cannot give.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field

from perf_pipeline.calc.performance import METRIC_COLUMNS
from perf_pipeline.calc.valuation import VALUATION_COLUMNS
from perf_pipeline.increments import shard_names, shard_of

DATE_COLUMNS = {
    "daily_valuations": "date",
    "performance_metrics": "calculation_date",
    "valued_from": "date",
    "computed_from": "date",
    "superseded_metrics": "calculation_date",
}
"""The day column of each partitioned table: the date dimension of its partitions."""
TABLE_COLUMNS = {
    "daily_valuations": VALUATION_COLUMNS,
    "performance_metrics": METRIC_COLUMNS,
}
"""The columns calc gives each table of figures: a stored file without one of them was written
by an earlier version (check_layout refuses it rather than read it)."""


@dataclass(frozen=True)
class Slice:
    """The rows of `shards` whose day is in start..end (either open when None), plus the rows
    of `extra_days` (a superseded calculation date just before the range)."""

    shards: tuple[str, ...]
    start: dt.date | None = None
    end: dt.date | None = None
    extra_days: tuple[dt.date, ...] = ()


class PartitionStore(ConfigurableResource):
    """Where the partitioned tables live; every table has a ``shard`` column and the day
    column of DATE_COLUMNS. Its layout: the number of portfolio shards and the first day
    of the partitions, which decide every stored row's place (changing either means
    recomputing everything)."""

    shards: int = Field(default=8, description="Portfolio shards (PERF_SHARDS), at least 1.")
    first_day: str = Field(
        default="2015-01-01",
        description="First day of the partitions (PERF_PARTITION_START): closes before it "
        "only seed the first day; a transaction before it is an error.",
    )

    def shard_names(self) -> list[str]:
        """s00, s01, ... (increments.shard_names)."""
        return shard_names(self.shards)

    def shard_of(self, portfolio_ids: Iterable[str]) -> np.ndarray:
        """The shard of each portfolio id (increments.shard_of)."""
        return shard_of(portfolio_ids, self.shards)

    def check_layout(self) -> None:
        """Raise OldLayoutError when the store was written by an earlier layout."""

    @property
    def start(self) -> pd.Timestamp:
        """first_day as a Timestamp."""
        return pd.Timestamp(self.first_day)

    def location(self, table: str) -> tuple[str, str | None]:
        """Where `table` is stored, for the UI: the URI of its files, and the name of the
        view a user queries it by (None when there is none)."""
        raise NotImplementedError

    def replace(
        self, table: str, frame: pd.DataFrame, where: Slice, keep_created_at: Sequence[str] = ()
    ) -> int:
        """Replace the rows of `where` by `frame` (whose rows all lie in it), atomically per
        table; a row rewritten under the same `keep_created_at` key keeps its created_at.
        Returns the rows the table holds afterwards."""
        raise NotImplementedError

    def read(
        self,
        table: str,
        shards: Sequence[str],
        start: dt.date | None = None,
        end: dt.date | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of `shards` with day in start..end, ordered by day (empty when the table
        does not exist yet)."""
        raise NotImplementedError
