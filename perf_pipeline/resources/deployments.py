"""The one place that chooses resources per target (PERF_TARGET): the same keys in each.

Settings come through ``EnvVar`` so the UI shows where each value is from; a variable that
is not set falls back to the default of data.md ("Configuration").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from dagster import EnvVar

from perf_pipeline.resources.duckdb_store import DuckDBIOManager, DuckDBStore
from perf_pipeline.resources.input_store import InputStore
from perf_pipeline.resources.settings import CalculationSettings, RunRequest

TARGETS = ("local", "aws")
DEFAULTS = {
    "PERF_INPUT": "data/input",
    "PERF_STORE": "data/perf.duckdb",
    "PERF_RISK_FREE_RATE": "0",
}


def setting(name: str) -> Any:
    """EnvVar(name) when the variable is set, else its documented default."""
    return EnvVar(name) if name in os.environ else DEFAULTS[name]


def common_resources() -> dict[str, Any]:
    """Resources every target shares: where the input is and how to calculate."""
    return {
        "input_store": InputStore(root=setting("PERF_INPUT")),
        "calculation_settings": CalculationSettings(
            risk_free_rate=setting("PERF_RISK_FREE_RATE")),
        "run_request": RunRequest(),
    }


def local_resources() -> dict[str, Any]:
    """Everything in one DuckDB file (PERF_STORE)."""
    store = DuckDBStore(path=setting("PERF_STORE"))
    io_manager = DuckDBIOManager(store=store)
    return {**common_resources(), "io_manager": io_manager, "metrics_io_manager": io_manager}


def aws_resources() -> dict[str, Any]:
    """S3 for the pipeline's own tables, DynamoDB and Timestream for what it publishes."""
    raise NotImplementedError(
        "PERF_TARGET=aws is not wired yet: the DynamoDB and Timestream IO managers land with "
        "the aws-target issue; use PERF_TARGET=local")


RESOURCES: dict[str, Callable[[], dict[str, Any]]] = {
    "local": local_resources,
    "aws": aws_resources,
}


def resources_for(target: str) -> dict[str, Any]:
    """The resources dict of a target; a clear error for an unknown one."""
    if target not in RESOURCES:
        raise ValueError(f"PERF_TARGET must be one of {', '.join(TARGETS)}, not {target!r}")
    return RESOURCES[target]()
