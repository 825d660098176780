"""The one place that chooses resources per target (PERF_TARGET): the same keys in each.

Settings come through ``EnvVar`` so the UI shows where each value is from; a variable that
is not set falls back to the default of data.md ("Configuration").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dagster import EnvVar
from dagster_aws.s3 import S3PickleIOManager, S3Resource

from perf_pipeline.resources.aws_clients import (
    SQSResource,
)
from perf_pipeline.resources.duckdb_store import DuckDBIOManager, DuckDBStore
from perf_pipeline.resources.ingest_cache import IngestCache, beside
from perf_pipeline.resources.input_store import InputStore
from perf_pipeline.resources.s3_partition_store import S3PartitionStore
from perf_pipeline.resources.settings import CalculationSettings, RunRequest

TARGETS = ("local", "aws")
DEFAULTS = {
    "PERF_INPUT": "data/input",
    "PERF_STORE": "data/perf.duckdb",
    "PERF_RISK_FREE_RATE": "0",
    "PERF_DYNAMODB_TABLE": "performance-metrics",
    "PERF_TIMESTREAM_DATABASE": "investment_performance",
    "PERF_TIMESTREAM_TABLE": "performance_metrics",
    "PERF_SQS_QUEUE_URL": None,
    "AWS_ENDPOINT_URL": None,
    "PERF_SHARDS": "8",
    "PERF_PARTITION_START": "2015-01-01",
    "PERF_INGEST_CACHE": None,  # local: beside PERF_STORE; aws: <asset store>/_ingest_cache
}
ASSET_STORE_PREFIX = "_perf_pipeline/assets"


def setting(name: str) -> Any:
    """EnvVar(name) when the variable is set, else its documented default."""
    return EnvVar(name) if name in os.environ else DEFAULTS[name]


def configured(name: str) -> str | None:
    """The variable's value now, else its default: for choices made while loading (which
    sensors start on), not for settings, which go through `setting`."""
    return os.environ.get(name) or DEFAULTS[name]


def asset_store() -> tuple[str, str]:
    """(bucket, prefix) for the pipeline's own tables on S3: PERF_ASSET_STORE, else a prefix
    beside the input in the input root's bucket."""
    uri = os.environ.get("PERF_ASSET_STORE") or os.environ.get("PERF_INPUT", "")
    if not uri.startswith("s3://"):
        raise ValueError(
            "PERF_TARGET=aws needs PERF_INPUT (or PERF_ASSET_STORE) to be an "
            f"s3:// URI, not {uri!r}"
        )
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if "PERF_ASSET_STORE" in os.environ:
        return bucket, prefix.strip("/")
    return bucket, ASSET_STORE_PREFIX


def common_resources() -> dict[str, Any]:
    """Resources every target shares: where the input is and how to calculate."""
    return {
        "input_store": InputStore(root=setting("PERF_INPUT")),
        "calculation_settings": CalculationSettings(risk_free_rate=setting("PERF_RISK_FREE_RATE")),
        "run_request": RunRequest(),
        "sqs": SQSResource(endpoint_url=setting("AWS_ENDPOINT_URL")),
    }


def local_resources() -> dict[str, Any]:
    """Everything in one DuckDB file (PERF_STORE)."""
    store = DuckDBStore(path=setting("PERF_STORE"))
    return {
        **common_resources(),
        "io_manager": DuckDBIOManager(store=store),
        "partition_store": store,
        "ingest_cache": IngestCache(
            root=setting("PERF_INGEST_CACHE") or beside(configured("PERF_STORE"))
        ),
    }


def aws_resources() -> dict[str, Any]:
    """S3 for the pipeline's own tables, so every run worker can load them: the input tables
    through S3PickleIOManager, the partitioned ones through S3PartitionStore, which also
    publishes them (daily series to Timestream, metrics to DynamoDB and Timestream).

    Timestream clients get the endpoint URL explicitly: boto3's endpoint discovery would
    otherwise leave an emulator for the real AWS host (data.md, Configuration).
    """
    bucket, prefix = asset_store()
    endpoint = setting("AWS_ENDPOINT_URL")
    store = S3PartitionStore(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=endpoint,
        dynamodb_table=setting("PERF_DYNAMODB_TABLE"),
        timestream_database=setting("PERF_TIMESTREAM_DATABASE"),
        timestream_table=setting("PERF_TIMESTREAM_TABLE"),
    )
    return {
        **common_resources(),
        "io_manager": S3PickleIOManager(
            s3_resource=S3Resource(endpoint_url=endpoint), s3_bucket=bucket, s3_prefix=prefix
        ),
        "partition_store": store,
        "ingest_cache": IngestCache(
            root=setting("PERF_INGEST_CACHE") or f"s3://{bucket}/{prefix}/_ingest_cache",
            endpoint_url=endpoint,
        ),
    }


RESOURCES: dict[str, Callable[[], dict[str, Any]]] = {
    "local": local_resources,
    "aws": aws_resources,
}


def resources_for(target: str) -> dict[str, Any]:
    """The resources dict of a target; a clear error for an unknown one."""
    if target not in RESOURCES:
        raise ValueError(f"PERF_TARGET must be one of {', '.join(TARGETS)}, not {target!r}")
    return RESOURCES[target]()
