"""The one place that chooses resources per target (PERF_TARGET): the same keys in each.

Settings come through ``EnvVar`` so the UI shows where each value is from; a variable that
is not set falls back to its default (docs/data.md, "Configuration").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dagster import EnvVar

from perf_pipeline.resources.aws_clients import SQSResource
from perf_pipeline.resources.ingest_cache import IngestCache
from perf_pipeline.resources.input_store import InputStore
from perf_pipeline.resources.parquet_io_manager import ParquetIOManager
from perf_pipeline.resources.parquet_store import ParquetStore
from perf_pipeline.resources.settings import CalculationSettings, RunRequest
from perf_pipeline.resources.sinks import MetricsSink

TARGETS = ("local", "aws")
DEFAULTS = {
    "PERF_INPUT": "data/input",
    "PERF_STORE": "data/perf.duckdb",
    "PERF_TABLES": None,
    "PERF_ASSET_STORE": None,
    "PERF_RISK_FREE_RATE": "0",
    "PERF_FX_PIVOT": "USD",
    "PERF_DYNAMODB_TABLE": "performance-metrics",
    "PERF_TIMESTREAM_DATABASE": "investment_performance",
    "PERF_TIMESTREAM_TABLE": "performance_metrics",
    "PERF_SQS_QUEUE_URL": None,
    "AWS_ENDPOINT_URL": None,
    "PERF_SHARDS": "8",
    "PERF_PARTITION_START": "2015-01-01",
    "PERF_STEP_EXECUTOR": "multiprocess",
    "PERF_INGEST_CACHE": None,  # default: _ingest_cache in the tables root
}
ASSET_STORE_PREFIX = "_perf_pipeline/assets"


def setting(name: str) -> Any:
    """EnvVar(name) when the variable is set, else its documented default."""
    return EnvVar(name) if name in os.environ else DEFAULTS[name]


def configured(name: str) -> str | None:
    """The variable's value now, else its default: for choices made while loading (which
    sensors start on, the partitions' first month), not for settings, which go through
    `setting`."""
    return os.environ.get(name) or DEFAULTS[name]


def local_tables() -> str:
    """The folder of the local target's Parquet tables: PERF_TABLES, else a folder beside
    the DuckDB file (``data/perf.duckdb`` -> ``data/perf_tables``)."""
    if configured("PERF_TABLES"):
        return configured("PERF_TABLES")
    store = Path(configured("PERF_STORE"))
    return str(store.with_name(f"{store.stem}_tables"))


def asset_store() -> str:
    """``s3://bucket/prefix`` of the pipeline's own tables on the aws target:
    PERF_ASSET_STORE, else a prefix beside the input in the input root's bucket."""
    uri = configured("PERF_ASSET_STORE") or configured("PERF_INPUT") or ""
    if not uri.startswith("s3://"):
        raise ValueError(
            "PERF_TARGET=aws needs PERF_INPUT (or PERF_ASSET_STORE) to be an "
            f"s3:// URI, not {uri!r}"
        )
    if configured("PERF_ASSET_STORE"):
        return uri.rstrip("/")
    bucket = uri[len("s3://") :].partition("/")[0]
    return f"s3://{bucket}/{ASSET_STORE_PREFIX}"


def layout() -> dict[str, Any]:
    """The store's layout settings, the same on every target."""
    shards = (
        EnvVar.int("PERF_SHARDS") if "PERF_SHARDS" in os.environ else int(DEFAULTS["PERF_SHARDS"])
    )
    return {"shards": shards, "first_day": setting("PERF_PARTITION_START")}


def common_resources() -> dict[str, Any]:
    """Resources every target shares: where the input is and how to calculate."""
    return {
        "input_store": InputStore(root=setting("PERF_INPUT")),
        "calculation_settings": CalculationSettings(
            risk_free_rate=setting("PERF_RISK_FREE_RATE"), fx_pivot=setting("PERF_FX_PIVOT")
        ),
        "run_request": RunRequest(),
        "sqs": SQSResource(endpoint_url=setting("AWS_ENDPOINT_URL")),
    }


def local_resources() -> dict[str, Any]:
    """Parquet tables in a local folder, each a view in one DuckDB file (PERF_STORE) for the
    user to query; no publication."""
    root, catalog = local_tables(), setting("PERF_STORE")
    return {
        **common_resources(),
        "io_manager": ParquetIOManager(root=root, catalog=catalog),
        "partition_store": ParquetStore(root=root, catalog=catalog, **layout()),
        "metrics_sink": MetricsSink(enabled=False),
        "ingest_cache": IngestCache(root=setting("PERF_INGEST_CACHE") or f"{root}/_ingest_cache"),
    }


def aws_resources() -> dict[str, Any]:
    """Parquet tables under an S3 prefix (every run worker reads them), published by the
    sink assets: metrics to DynamoDB, metrics and daily series to Timestream.

    Timestream clients get the endpoint URL explicitly: boto3's endpoint discovery would
    otherwise leave an emulator for the real AWS host.
    """
    root, endpoint = asset_store(), setting("AWS_ENDPOINT_URL")
    return {
        **common_resources(),
        "io_manager": ParquetIOManager(root=root, endpoint_url=endpoint),
        "partition_store": ParquetStore(root=root, endpoint_url=endpoint, **layout()),
        "metrics_sink": MetricsSink(
            enabled=True,
            endpoint_url=endpoint,
            dynamodb_table=setting("PERF_DYNAMODB_TABLE"),
            timestream_database=setting("PERF_TIMESTREAM_DATABASE"),
            timestream_table=setting("PERF_TIMESTREAM_TABLE"),
        ),
        "ingest_cache": IngestCache(
            root=setting("PERF_INGEST_CACHE") or f"{root}/_ingest_cache", endpoint_url=endpoint
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
