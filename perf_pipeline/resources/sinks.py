"""Where the figures are published on the aws target: performance_metrics to DynamoDB (one
item per entity, calculation date and period) and to Timestream, daily_valuations to
Timestream. The sink assets (perf_pipeline.assets.publication) call it with rows they read
from the store, so a failed publication fails only its own step, and retrying it
recomputes nothing.

Every write and delete is idempotent: an upsert keeps an item's created_at, a delete of a
missing item is no error, and Timestream records carry ``Version`` = the epoch ms of the
publication, so a retry (a later version) replaces what an earlier attempt wrote.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pandas as pd
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from perf_pipeline.resources.aws_clients import DynamoDBResource, TimestreamWriteResource
from perf_pipeline.resources.dynamodb import Key, delete_metrics, write_metrics
from perf_pipeline.resources.timestream import TimestreamSink


class MetricsSink(ConfigurableResource):
    """DynamoDB and Timestream clients of the aws target (disabled on the local target)."""

    enabled: bool = Field(default=True, description="False on the local target.")
    endpoint_url: str | None = Field(
        default=None, description="Endpoint of DynamoDB and Timestream (an emulator); None: AWS."
    )
    region_name: str | None = Field(default=None, description="AWS region (None: boto3's).")
    dynamodb_table: str = Field(
        default="performance-metrics", description="DynamoDB table of performance_metrics."
    )
    timestream_database: str = Field(
        default="investment_performance", description="Timestream database."
    )
    timestream_table: str = Field(default="performance_metrics", description="Timestream table.")
    threads: int = Field(default=8, description="Concurrent publishing batches.")
    deadline_s: float = Field(
        default=120.0, description="Seconds a publication may spend resending throttled writes."
    )

    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)

    def _client(self, service: str) -> Any:
        """One client per service for the resource's life, built by the project's client
        resources (their retry policy, timeouts and pool size)."""
        if service not in self._clients:
            factory = {
                "s3": S3Resource,
                "dynamodb": DynamoDBResource,
                "timestream": TimestreamWriteResource,
            }[service]
            settings = {"endpoint_url": self.endpoint_url, "region_name": self.region_name}
            self._clients[service] = factory(**settings).get_client()
        return self._clients[service]

    def _timestream(self) -> TimestreamSink:
        return TimestreamSink(
            self._client("timestream"),
            self.timestream_database,
            self.timestream_table,
            self.threads,
            self.deadline_s,
        )

    def publish_metrics(self, metrics: pd.DataFrame, superseded: list[Key]) -> dict[str, int]:
        """Delete the `superseded` items, upsert `metrics` to DynamoDB, write them to
        Timestream; the counts of each."""
        ddb, counts = self._client("dynamodb"), {}
        counts["dynamodb_deleted"] = (
            delete_metrics(
                ddb, self.dynamodb_table, superseded, self.threads, self.deadline_s
            ).items
            if superseded
            else 0
        )
        if len(metrics):
            now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            written = write_metrics(
                ddb, self.dynamodb_table, metrics, now, self.threads, self.deadline_s
            )
            counts["dynamodb_items"] = written.items
            counts["timestream_metrics_records"] = (
                self._timestream().write_metrics(metrics, _version()).items
            )
        return counts

    def publish_daily(self, daily: pd.DataFrame) -> dict[str, int]:
        """Write the daily series to Timestream; the count of records."""
        if daily.empty:
            return {"timestream_daily_records": 0}
        return {"timestream_daily_records": self._timestream().write_daily(daily, _version()).items}


def _version() -> int:
    """Timestream's record version: epoch ms now (a later publication wins)."""
    return time.time_ns() // 1_000_000
