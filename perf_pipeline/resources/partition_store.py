"""The store of the partitioned tables: rows of some shards over a range of business days.

The partitioned assets (positions, daily_valuations, performance_metrics and the digests
they were computed from) write and read through this interface rather than an IO manager:
one ranged run covers many (day, shard) partitions, and its later steps read history from
before its range (the opening state, the windows of the period metrics), which an IO
manager's load of the run's own partitions cannot give.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from dagster import ConfigurableResource

DATE_COLUMNS = {
    "daily_valuations": "date",
    "performance_metrics": "calculation_date",
    "valued_from": "date",
    "computed_from": "date",
}
"""The day column of each partitioned table: the date dimension of its partitions."""


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
    column of DATE_COLUMNS."""

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
