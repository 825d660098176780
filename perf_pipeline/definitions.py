"""The Dagster code location: every asset, check and job, with the target's resources."""

from __future__ import annotations

import os

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    Definitions,
    define_asset_job,
    definitions,
    map_asset_specs,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)
from dagster_aws.ecs import ecs_executor

from perf_pipeline.assets.groups import INPUTS, PERFORMANCE, PUBLICATION, VALUATION
from perf_pipeline.assets.inputs import inputs
from perf_pipeline.assets.performance import build_performance_metrics
from perf_pipeline.assets.publication import build_publication
from perf_pipeline.assets.reports import portfolio_reports, reports_job
from perf_pipeline.assets.valuation import build_daily_valuations, positions
from perf_pipeline.partitions import MONTHS
from perf_pipeline.resources.deployments import configured, resources_for
from perf_pipeline.sensors.s3 import S3SensorSettings, build_s3_sensor
from perf_pipeline.sensors.schedules import build_nightly_schedule
from perf_pipeline.sensors.sqs import SqsSensorSettings, build_sqs_sensor
from perf_pipeline.sensors.stale_partitions import build_stale_partitions_sensor

INPUTS_JOB = "inputs_job"
PERFORMANCE_JOB = "performance_job"

EXCLUSIVE_TAG = "perf/exclusive"
"""Runs with the same value of this tag never overlap (dagster.yaml: tag_concurrency_limits)."""

inputs_job = define_asset_job(
    INPUTS_JOB,
    selection=AssetSelection.groups(INPUTS),
    description="Read and validate every input file, digest what each shard and day "
    "depends on, and derive the positions; the stale partitions follow (perf-pipeline run, the "
    "stale_partitions sensor).",
    tags={EXCLUSIVE_TAG: INPUTS_JOB},
)
STEP_EXECUTORS = ("multiprocess", "ecs")
STORE_KINDS = {"local": "duckdb", "aws": "s3"}
"""The kind the UI shows on every stored table, beside pandas and parquet: where a user
finds it (a DuckDB view on the local target, an S3 prefix on aws)."""


def build_performance_job(step_executor: str = "multiprocess") -> UnresolvedAssetJobDefinition:
    """performance_job with its steps run by Dagster's default executor (in one process or
    one process per step: `perf-pipeline run --workers`) or, with "ecs", by dagster-aws's
    ecs_executor, one ECS task per shard step (it needs the EcsRunLauncher of deploy/)."""
    if step_executor not in STEP_EXECUTORS:
        raise ValueError(
            f"PERF_STEP_EXECUTOR must be one of {', '.join(STEP_EXECUTORS)}, not {step_executor!r}"
        )
    return define_asset_job(
        PERFORMANCE_JOB,
        selection=AssetSelection.groups(VALUATION, PERFORMANCE, PUBLICATION),
        description="Valuations and performance metrics of a range of months (the business "
        "days and shards its tags name), and on the aws target their publication.",
        executor_def=ecs_executor if step_executor == "ecs" else None,
    )


def _status(on: bool) -> DefaultSensorStatus:
    return DefaultSensorStatus.RUNNING if on else DefaultSensorStatus.STOPPED


def build_definitions(
    target: str,
    *,
    s3_settings: S3SensorSettings | None = None,
    sqs_settings: SqsSensorSettings | None = None,
) -> Definitions:
    """Definitions for a target (local or aws). The SQS sensor is on by default when
    PERF_SQS_QUEUE_URL is set; the S3 sensor when PERF_INPUT is an s3:// URI and no queue is
    set (with a queue, the bucket's event notifications arrive through it, as template.yaml
    wires them, and both on would process each object twice); the nightly schedule is off
    until started."""
    root, queue_url = configured("PERF_INPUT"), configured("PERF_SQS_QUEUE_URL")
    performance_job = build_performance_job(configured("PERF_STEP_EXECUTOR"))
    publication = build_publication(MONTHS) if target == "aws" else []
    resources = resources_for(target)  # first: a clear error for an unknown target
    stored = map_asset_specs(
        lambda spec: spec.merge_attributes(kinds={STORE_KINDS[target]}),
        [inputs, positions, build_daily_valuations(MONTHS), build_performance_metrics(MONTHS)],
    )
    return Definitions(
        assets=[
            *stored,
            *publication,
            portfolio_reports,
        ],
        jobs=[inputs_job, performance_job, reports_job],
        sensors=[
            build_s3_sensor(
                INPUTS_JOB,
                settings=s3_settings,
                default_status=_status(root.startswith("s3://") and not queue_url),
            ),
            build_sqs_sensor(
                INPUTS_JOB,
                queue_url,
                default_status=_status(bool(queue_url)),
                settings=sqs_settings,
            ),
            build_stale_partitions_sensor(inputs_job, performance_job, exclusive_tag=EXCLUSIVE_TAG),
        ],
        schedules=[build_nightly_schedule(INPUTS_JOB)],
        resources=resources,
    )


@definitions
def defs() -> Definitions:
    """Loaded by `dagster dev` and the webserver: the target comes from PERF_TARGET."""
    return build_definitions(os.environ.get("PERF_TARGET", "local"))
