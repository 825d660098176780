"""The aws target's publication, as assets of their own downstream of the figures:
``dynamodb_metrics`` (performance_metrics to DynamoDB and Timestream) and
``timestream_daily`` (daily_valuations to Timestream).

Each reads the rows its run's scope holds in the store, one shard at a time, and publishes
them through the ``metrics_sink`` resource; its materialization says how many items and
records went where. A publication that fails fails only its own step: the figures stay
materialized, and retrying the step (re-execute from failure) publishes them without
recomputing anything. Writes are idempotent (perf_pipeline.resources.sinks), and throttling
is retried inside the clients (botocore's standard mode, then the writers' own backoff up to
their deadline), so the step itself has no retry policy: what fails it fails again.
"""

from collections import Counter
from collections.abc import Callable

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    PartitionsDefinition,
    asset,
)

from perf_pipeline.assets.fanout import scope
from perf_pipeline.assets.groups import PUBLICATION
from perf_pipeline.assets.performance import SUPERSEDED, superseded_days
from perf_pipeline.resources.dynamodb import metric_keys
from perf_pipeline.resources.partition_store import PartitionStore
from perf_pipeline.resources.sinks import MetricsSink
from perf_pipeline.resources.timestream import DAILY_COLUMNS

SINKS = ("dynamodb_metrics", "timestream_daily")
"""The sink assets' names (and step keys)."""


def build_publication(partitions_def: PartitionsDefinition) -> list[AssetsDefinition]:
    """The two sink assets over `partitions_def`."""
    shared = {
        "group_name": PUBLICATION,
        "partitions_def": partitions_def,
        "backfill_policy": BackfillPolicy.single_run(),
        "ins": {"transactions": AssetIn(), "prices": AssetIn()},
    }

    @asset(deps=["performance_metrics"], kinds={"dynamodb", "timestream"}, **shared)
    def dynamodb_metrics(
        context: AssetExecutionContext,
        transactions: pd.DataFrame,
        prices: pd.DataFrame,
        partition_store: PartitionStore,
        metrics_sink: MetricsSink,
    ) -> MaterializeResult:
        """The run's performance_metrics upserted to DynamoDB (superseded items deleted) and
        written to Timestream."""

        def publish(shard: str, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, int]:
            days = [(start.date(), end.date())] + [
                (day, day) for day in superseded_days(start, partition_store.start)
            ]
            metrics = partition_store.read("performance_metrics", [shard], *days[0])
            gone = pd.concat(
                [partition_store.read(SUPERSEDED, [shard], a, b) for a, b in days],
                ignore_index=True,
            )
            return metrics_sink.publish_metrics(metrics, metric_keys(gone) if len(gone) else [])

        return by_shard(scope(context, partition_store, transactions, prices), publish)

    @asset(deps=["daily_valuations"], kinds={"timestream"}, **shared)
    def timestream_daily(
        context: AssetExecutionContext,
        transactions: pd.DataFrame,
        prices: pd.DataFrame,
        partition_store: PartitionStore,
        metrics_sink: MetricsSink,
    ) -> MaterializeResult:
        """The run's daily_valuations written to Timestream."""

        def publish(shard: str, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, int]:
            daily = partition_store.read(
                "daily_valuations", [shard], start.date(), end.date(), DAILY_COLUMNS
            )
            return metrics_sink.publish_daily(daily)

        return by_shard(scope(context, partition_store, transactions, prices), publish)

    return [dynamodb_metrics, timestream_daily]


def by_shard(
    run_scope: tuple[tuple[str, ...], pd.Timestamp, pd.Timestamp],
    publish: Callable[[str, pd.Timestamp, pd.Timestamp], dict[str, int]],
) -> MaterializeResult:
    """Publish the run's scope one shard at a time (memory follows the shard); the
    materialization counts what went where."""
    shards, start, end = run_scope
    counts: Counter[str] = Counter()
    for shard in shards:
        counts.update(publish(shard, start, end))
    return MaterializeResult(metadata={**counts, "shards": len(shards)})
