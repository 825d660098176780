"""The partitions of the assets from valuations on: one per calendar month.

A month is what a person reads in the UI and what Dagster carries cheaply: ten years are 120
partitions per asset. Portfolio shards are not partitions: they are the store's unit of
storage and of parallelism inside a run. A run covers a range of months, and within it the
business days and shards its tags name (``perf/range_start``, ``perf/range_end``,
``perf/range_shards``, set by the planner); without them (a materialization from the UI)
it covers every business day of its months up to the latest input date, for every shard.
The current month is re-materialized each night, from the first day whose input changed.

The months are a dynamic partition set (``months``, kept in the Dagster instance), not a
time window: they run from the month of the first day computed to the month of the latest
day computed, exactly, so the UI shows no partition before the data starts nor any after the
latest processed day. Whoever starts performance_job runs (`perf-pipeline run`, the
stale_partitions sensor) adds the months of their range first (``extend_months``): a nightly
increment that reaches a new month adds it before its run, with no reload of the code
location. A time window ending at a date computed from the data when the definitions load
would lack that month until the code location is reloaded, and its run would fail; one
ending with the current month (``end_offset``) shows every month after the data as missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd
from dagster import DynamicPartitionsDefinition

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from perf_pipeline.increments import PlannedRun

MONTH_FORMAT = "%Y-%m"
START_TAG, END_TAG, SHARDS_TAG = "perf/range_start", "perf/range_end", "perf/range_shards"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
MONTHS = DynamicPartitionsDefinition(name="months")
"""The partitions of daily_valuations, performance_metrics and the sink assets."""


def month_keys(first: pd.Timestamp, last: pd.Timestamp) -> list[str]:
    """The keys of the months from the month of `first` through the month of `last`."""
    return [f"{month:{MONTH_FORMAT}}" for month in pd.period_range(first, last, freq="M")]


def month_changes(
    existing: Sequence[str], first: pd.Timestamp, last: pd.Timestamp
) -> tuple[list[str], list[str]]:
    """(keys to delete, keys to add) that turn the `existing` keys into every month from the
    earlier of `first` and the first existing month through the later of `last` and the
    last existing month, in calendar order. Months after the existing ones are appended;
    an earlier month (input dated before everything computed so far) rebuilds the whole set,
    since Dagster orders dynamic keys by when they were added and a ranged run spans its keys
    in that order (the materializations of a deleted key come back with it)."""
    if existing:
        first = min(pd.Timestamp(first), pd.Timestamp(f"{existing[0]}-01"))
        last = max(pd.Timestamp(last), pd.Timestamp(f"{existing[-1]}-01"))
    wanted = month_keys(first, last)
    if list(existing) == wanted[: len(existing)]:
        return [], wanted[len(existing) :]
    return list(existing), wanted


def extend_months(instance: DagsterInstance, runs: Sequence[PlannedRun]) -> list[str]:
    """Add to the instance's months those the `runs` cover and it lacks (month_changes); the
    keys added."""
    if not runs:
        return []
    first, last = min(run.start for run in runs), max(run.end for run in runs)
    gone, added = month_changes(instance.get_dynamic_partitions(MONTHS.name), first, last)
    for key in gone:
        instance.delete_dynamic_partition(MONTHS.name, key)
    if added:
        instance.add_dynamic_partitions(MONTHS.name, added)
    return added


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
