"""Which ranged runs of performance_job bring the stored partitions up to date."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from perf_pipeline.calc.calendar import previous_business_day
from perf_pipeline.increments import DIGEST_COLUMNS, PlannedRun, plan_runs, stale_ranges
from perf_pipeline.resources.duckdb_catalog import OldLayoutError
from perf_pipeline.resources.partition_store import PartitionStore


class PlanError(ValueError):
    """The input cannot be partitioned as configured (the message says what to change)."""


def as_of_day(day: pd.Timestamp) -> pd.Timestamp:
    """The business day a run up to `day` values last: `day`, or the Friday before a weekend."""
    return pd.Timestamp(previous_business_day(pd.Timestamp(day).normalize() + pd.Timedelta(days=1)))


def default_as_of(transactions: pd.DataFrame, prices: pd.DataFrame) -> pd.Timestamp | None:
    """The last business day on or before the latest input date (None without input)."""
    latest = pd.concat([transactions["trade_date"], prices["date"]]).max()
    return None if pd.isna(latest) else as_of_day(latest)


def plan(
    digests: pd.DataFrame,
    store: PartitionStore,
    as_of: pd.Timestamp,
    shards: Sequence[str] | None = None,
) -> list[PlannedRun]:
    """The runs that recompute exactly the stale partitions of `shards` (default: all) up to
    `as_of` (rolled back to a business day), or up to a shard's last computed day when that
    is later: per shard, from the first business day whose input changed since it was
    computed (increments.stale_ranges). A PlanError when a transaction is dated before the
    first partition or `as_of` is past the last one."""
    as_of = as_of_day(as_of)
    today = pd.Timestamp.now().normalize()
    if as_of > today:
        raise PlanError(f"as-of {as_of:%Y-%m-%d} is in the future (today is {today:%Y-%m-%d})")
    first, start = digests["date"].min(), store.start
    if pd.notna(first) and first < start:
        raise PlanError(
            f"a transaction is dated {first:%Y-%m-%d}, before the first partition "
            f"{start:%Y-%m-%d}: set PERF_PARTITION_START earlier"
        )
    try:
        store.check_layout()
    except OldLayoutError as error:
        raise PlanError(str(error)) from error
    every = store.shard_names()
    computed = store.read("computed_from", every, columns=DIGEST_COLUMNS)
    idle = set(every) - set(digests["shard"]) - set(computed["shard"])
    chosen = list(shards) if shards else every
    computed = computed.loc[computed["shard"].isin(chosen)]
    ranges = stale_ranges(digests.loc[digests["shard"].isin(chosen)], computed, as_of)
    fresh = set(chosen) - set(computed["shard"])
    return plan_runs(ranges, every, fresh=fresh, idle=idle)


def last_computed(store: PartitionStore, shards: Sequence[str]) -> pd.Series:
    """The last business day computed per shard (shards never computed are absent)."""
    computed = store.read("computed_from", shards, columns=["shard", "date"])
    return computed.groupby("shard")["date"].max()
