"""The Dagster code location: every asset, check and job, with the target's resources."""

from __future__ import annotations

import os

from dagster import AssetSelection, Definitions, define_asset_job, definitions

from perf_pipeline.assets.inputs import inputs
from perf_pipeline.assets.performance import performance_metrics
from perf_pipeline.assets.valuation import valuations
from perf_pipeline.resources.deployments import resources_for

PERFORMANCE_JOB = "performance_job"

performance_job = define_asset_job(
    PERFORMANCE_JOB,
    selection=AssetSelection.all(),
    description="Input files to performance_metrics: everything the input needs.",
)


def build_definitions(target: str) -> Definitions:
    """Definitions for a target (local or aws)."""
    return Definitions(
        assets=[inputs, valuations, performance_metrics],
        jobs=[performance_job],
        resources=resources_for(target),
    )


@definitions
def defs() -> Definitions:
    """Loaded by `dagster dev` and the webserver: the target comes from PERF_TARGET."""
    return build_definitions(os.environ.get("PERF_TARGET", "local"))
