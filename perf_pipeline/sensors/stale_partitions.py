"""The stale_partitions sensor: after each successful inputs_job run, ranged runs of
performance_job over exactly the partitions whose input changed (perf_pipeline.planning).

For the inputs run ("parent") it reads the new ``input_digests`` through the parent's IO
manager, plans with the parent's as-of date (tag ``perf/as_of``, else run config, else the
last business day on or before the latest transaction or price date) and the shards of the
parent's portfolios (tag ``perf/portfolio_ids``; none: every shard), and asks for one run per
planned range. A request that names portfolios recomputes at least their shards' as-of day
(from ``perf/start`` when a batch calculation gives one), so its caller gets figures stamped
with its request_id even when nothing changed.

Each partition run carries the parent's request tags (perf/request_id defaults to the
parent's run id), ``perf/parent_run`` = the parent's
run id, and ``perf/exclusive`` = ``shards:<first>-<last>`` (the run queue never overlaps two
runs over the same shards). The parent is then tagged ``perf/partition_runs`` = the number
of runs asked for (``perf/plan_error`` and 0 when the input cannot be planned): the Lambda
reads both to report the status of the whole request. Before asking, it adds the months of
the runs to the partitions (partitions.extend_months). An inputs run tagged ``perf/planner``
(`perf-pipeline run`'s, which runs its own partition runs) is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    ResourceParam,
    RunRequest,
    RunStatusSensorContext,
    RunStatusSensorDefinition,
    SkipReason,
    build_input_context,
    run_status_sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from perf_contract.tags import PARENT_RUN_TAG, PARTITION_RUNS_TAG, PLAN_ERROR_TAG
from perf_contract.tags import REQUEST_ID_TAG as REQUEST_TAG
from perf_pipeline.calc.calendar import roll_to_business_day
from perf_pipeline.increments import RANGE_COLUMNS, PlannedRun, plan_runs
from perf_pipeline.partitions import extend_months, scope_tags
from perf_pipeline.planning import PlanError, as_of_day, last_computed, plan
from perf_pipeline.resources.partition_store import PartitionStore
from perf_pipeline.sensors.runs import (
    AS_OF_TAG,
    MAX_TAG_CHARS,
    PORTFOLIO_IDS_TAG,
    REQUESTED_BY_TAG,
    START_TAG,
)

STALE_PARTITIONS_SENSOR_NAME = "stale_partitions"
INHERITED_TAGS = (REQUEST_TAG, PORTFOLIO_IDS_TAG, REQUESTED_BY_TAG)
"""The parent's tags every partition run carries: who asked, for what, under which id (a
parent without a request id lends its run id, so one request's rows share one id)."""
MINIMUM_INTERVAL_SECONDS = 10
PLANNER_TAG = "perf/planner"
"""On an inputs run whose partition runs another planner starts (``cli``: `perf-pipeline
run`, which runs them itself): the sensor leaves such a run alone."""


def read_input_table(io_manager: Any, name: str) -> pd.DataFrame:
    """The unpartitioned asset `name`, loaded by the IO manager that stored it (the code
    location's ``io_manager``: Parquet in the local folder or under the S3 prefix)."""
    return io_manager.load_input(build_input_context(asset_key=AssetKey(name)))


def requested(run: DagsterRun, tag: str, field: str) -> str | None:
    """A request field of a run: its tag, else the ``run_request`` resource's run config."""
    if run.tags.get(tag):
        return run.tags[tag]
    config = ((run.run_config or {}).get("resources") or {}).get("run_request") or {}
    value = (config.get("config") or {}).get(field)
    if isinstance(value, list):
        return ",".join(value) or None
    return str(value) if value else None


def latest_input_dates(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """The ``last_date`` metadata of each asset the run materialized (inputs.py writes it for
    transactions, prices, benchmarks and input_digests), by asset name."""
    found = {}
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        last = materialization.metadata.get("last_date") if materialization else None
        if last is not None:
            found[materialization.asset_key.to_user_string()] = str(last.value)
    return found


def as_of_of(run: DagsterRun, instance: DagsterInstance) -> pd.Timestamp | None:
    """The as-of date of a request: asked for, else the latest transaction or price date the
    run read (None without input); a PlanError when the date asked for is not a date."""
    asked = requested(run, AS_OF_TAG, "as_of")
    if asked:
        try:
            return pd.Timestamp(asked)
        except ValueError as error:
            raise PlanError(f"the as-of date {asked!r} is not a date") from error
    last = latest_input_dates(instance, run.run_id)
    days = [pd.Timestamp(last[name]) for name in ("transactions", "prices") if name in last]
    return max(days) if days else None


def requested_runs(
    digests: pd.DataFrame,
    store: PartitionStore,
    as_of: pd.Timestamp,
    portfolio_ids: Sequence[str] = (),
    start: pd.Timestamp | None = None,
) -> list[PlannedRun]:
    """The ranged runs of one request: planning.plan over the portfolios' shards (all shards
    without portfolios), then every requested shard with input on or before `as_of`
    recomputes at least from `start` (default: `as_of`; never before the shard's first day
    with input) through `as_of` or its last computed day, whichever is later.

    `start` widens only requested shards: a request without portfolios gets exactly the stale
    partitions. Raises planning.PlanError as plan does."""
    as_of = pd.Timestamp(as_of).normalize()
    if not portfolio_ids:
        return plan(digests, store, as_of)
    shards = sorted(set(store.shard_of(portfolio_ids)))
    runs = plan(digests, store, as_of, shards=shards)
    planned = {shard: run.start for run in runs for shard in run.shards}
    wanted = pd.Timestamp(start).normalize() if start is not None else as_of
    first = (
        digests.loc[digests["shard"].isin(shards) & (digests["date"] <= as_of)]
        .groupby("shard")["date"]
        .min()
    )
    ends = last_computed(store, shards)
    ranges = [
        (
            shard,
            min(planned.get(shard, as_of), max(wanted, pd.Timestamp(day))),
            max(as_of, ends.get(shard, as_of)),
        )
        for shard, day in first.items()
    ]
    return plan_runs(
        pd.DataFrame(ranges, columns=RANGE_COLUMNS),
        store.shard_names(),
        idle=set(store.shard_names()) - set(digests["shard"]),
    )


def partition_request(parent: DagsterRun, run: PlannedRun, exclusive_tag: str) -> RunRequest:
    """The RunRequest of one planned range of the parent's request."""
    first, last = run.shards[0], run.shards[-1]
    inherited = {
        REQUEST_TAG: parent.run_id,
        **{tag: parent.tags[tag] for tag in INHERITED_TAGS if parent.tags.get(tag)},
    }
    return RunRequest(
        run_key=f"{parent.run_id}:{run.start:%Y-%m-%d}:{first}-{last}",
        tags={
            **scope_tags(run.shards, run.start, run.end),
            **inherited,
            PARENT_RUN_TAG: parent.run_id,
            exclusive_tag: f"shards:{first}-{last}",
        },
    )


def first_business_day(text: str | None, first_day: pd.Timestamp) -> pd.Timestamp | None:
    """A requested start date rolled forward to a business day, not before `first_day` (the
    partitions' first day)."""
    if not text:
        return None
    return max(pd.Timestamp(roll_to_business_day(pd.DatetimeIndex([text]))[0]), first_day)


def plan_request(
    parent: DagsterRun, instance: DagsterInstance, store: PartitionStore, io_manager: Any
) -> list[PlannedRun]:
    """The planned runs of a successful inputs run (its request read from its tags)."""
    as_of = as_of_of(parent, instance)
    if as_of is None:
        return []
    as_of = as_of_day(as_of)
    portfolios = requested(parent, PORTFOLIO_IDS_TAG, "portfolio_ids")
    return requested_runs(
        read_input_table(io_manager, "input_digests"),
        store,
        as_of,
        portfolio_ids=portfolios.split(",") if portfolios else (),
        start=first_business_day(requested(parent, START_TAG, "start"), store.start),
    )


def build_stale_partitions_sensor(
    monitored_job: UnresolvedAssetJobDefinition,
    request_job: UnresolvedAssetJobDefinition,
    *,
    exclusive_tag: str,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
) -> RunStatusSensorDefinition:
    """The sensor on `monitored_job`'s successful runs, asking for runs of `request_job`; it
    needs the ``partition_store`` and ``io_manager`` resources."""

    @run_status_sensor(
        name=STALE_PARTITIONS_SENSOR_NAME,
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[monitored_job],
        request_job=request_job,
        default_status=default_status,
        minimum_interval_seconds=MINIMUM_INTERVAL_SECONDS,
        description=(
            f"After each successful {monitored_job.name} run: one {request_job.name} run per "
            "range of stale business days (months in the UI) and shards up to the run's "
            "as-of date, over the shards of its portfolios; the inputs run is tagged "
            f"{PARTITION_RUNS_TAG} with the number of runs asked for."
        ),
    )
    def stale_partitions(
        context: RunStatusSensorContext,
        partition_store: PartitionStore,
        io_manager: ResourceParam[Any],
    ):
        parent = context.dagster_run
        if parent.tags.get(PLANNER_TAG):
            return SkipReason(
                f"run {parent.run_id}: its partition runs are started by {parent.tags[PLANNER_TAG]}"
            )
        try:
            runs = plan_request(parent, context.instance, partition_store, io_manager)
        except PlanError as error:
            context.log.error(f"run {parent.run_id}: no partition runs: {error}")
            context.instance.add_run_tags(
                parent.run_id, {PARTITION_RUNS_TAG: "0", PLAN_ERROR_TAG: str(error)[:MAX_TAG_CHARS]}
            )
            return SkipReason(f"run {parent.run_id}: {error}")
        extend_months(context.instance, runs)
        requests = [partition_request(parent, run, exclusive_tag) for run in runs]
        context.instance.add_run_tags(parent.run_id, {PARTITION_RUNS_TAG: str(len(requests))})
        if not requests:
            return SkipReason(f"run {parent.run_id}: every partition is up to date")
        context.log.info(f"run {parent.run_id}: {len(requests)} partition runs")
        return requests

    return stale_partitions
