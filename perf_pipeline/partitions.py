"""The partitions of the assets from valuations on: one per calendar month.

A month is what a person reads in the UI and what Dagster carries cheaply: ten years are 120
partitions per asset. Portfolio shards are not partitions: they are the store's unit of
storage and of parallelism inside a run. A run covers a range of months, and within it the
business days and shards its tags name (``perf/range_start``, ``perf/range_end``,
``perf/range_shards``, set by the planner); without them (a materialization from the UI)
it covers every business day of its months up to the latest input date, for every shard.
The current month is re-materialized each night, from the first day whose input changed.
"""

from __future__ import annotations

import pandas as pd
from dagster import MonthlyPartitionsDefinition

MONTH_FORMAT = "%Y-%m"
START_TAG, END_TAG, SHARDS_TAG = "perf/range_start", "perf/range_end", "perf/range_shards"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def monthly_partitions(start: str | pd.Timestamp) -> MonthlyPartitionsDefinition:
    """Months from the month of `start` through the current one (which exists from its first
    day, for a run after each close)."""
    first = pd.Timestamp(start).to_period("M").to_timestamp()
    return MonthlyPartitionsDefinition(
        start_date=first.to_pydatetime(), fmt=MONTH_FORMAT, end_offset=1
    )


def month_key(day: pd.Timestamp) -> str:
    """The partition key of the month holding `day`."""
    return f"{pd.Timestamp(day):{MONTH_FORMAT}}"


def scope_tags(shards: tuple[str, ...], start: pd.Timestamp, end: pd.Timestamp) -> dict[str, str]:
    """The tags of a run over business days start..end of `shards`: Dagster's partition range
    (the months) and the exact days and shards."""
    return {
        RANGE_START_TAG: month_key(start),
        RANGE_END_TAG: month_key(end),
        START_TAG: f"{start:%Y-%m-%d}",
        END_TAG: f"{end:%Y-%m-%d}",
        SHARDS_TAG: ",".join(shards),
    }


def run_scope(
    tags: dict[str, str], months: tuple[str, str], shards: list[str], latest: pd.Timestamp | None
) -> tuple[tuple[str, ...], pd.Timestamp, pd.Timestamp]:
    """(shards, first day, last day) of a run: from its tags when the planner set them, else
    every shard over its months (first and last partition keys), ending no later than
    `latest` (the latest input date)."""
    if tags.get(START_TAG) and tags.get(END_TAG):
        chosen = tuple(tags[SHARDS_TAG].split(",")) if tags.get(SHARDS_TAG) else tuple(shards)
        return chosen, pd.Timestamp(tags[START_TAG]), pd.Timestamp(tags[END_TAG])
    start = pd.Timestamp(f"{months[0]}-01")
    end = pd.Timestamp(f"{months[1]}-01") + pd.offsets.MonthEnd(0)
    if latest is not None and pd.notna(latest):
        end = min(end, pd.Timestamp(latest).normalize())
    return tuple(shards), start, max(start, end)
