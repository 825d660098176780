"""The partitions of the assets from valuations on: business day x portfolio shard.

PERF_SHARDS (default 8) portfolio shards by a stable hash of portfolio_id, and one partition
per business day from PERF_PARTITION_START (default 2015-01-01) to the current day. Both are
read when the code location loads: they shape the partitions, so changing either means
recomputing everything. Keep shards x business days well under Dagster's advice of 100,000
partitions per asset: 8 shards over 12 years is about 25,000. Dagster records every
partition a run materializes (about 2.4 ms each on a 2-core machine, whatever its size), so
more shards buy parallelism and smaller corrections at that price."""

import pandas as pd
from dagster import (
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionsDefinition,
)

from perf_pipeline.increments import shard_names
from perf_pipeline.resources.deployments import configured

DATE, SHARD = "date", "shard"
SHARD_COUNT = int(configured("PERF_SHARDS"))
PARTITION_START = pd.Timestamp(configured("PERF_PARTITION_START"))
SHARDS = shard_names(SHARD_COUNT)

business_days_partitions = TimeWindowPartitionsDefinition(
    start=PARTITION_START.to_pydatetime(),
    cron_schedule="0 0 * * 1-5",
    fmt="%Y-%m-%d",
    end_offset=1,  # today's partition exists today, for a run after the close
)
daily_shards = MultiPartitionsDefinition(
    {
        DATE: business_days_partitions,
        SHARD: StaticPartitionsDefinition(SHARDS),
    }
)


def partition_scope(keys: list[str]) -> tuple[tuple[str, ...], pd.Timestamp, pd.Timestamp]:
    """(shards, first day, last day) of a run's partition keys ('date|shard', a 2-D range)."""
    pairs = [str(key).split("|") for key in keys]  # dimensions in name order: date, shard
    days = sorted({day for day, _ in pairs})
    shards = tuple(sorted({shard for _, shard in pairs}))
    return shards, pd.Timestamp(days[0]), pd.Timestamp(days[-1])
