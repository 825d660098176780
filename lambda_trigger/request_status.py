"""The status of a whole calculation request: its inputs run plus the partition runs that
Dagster's stale_partitions sensor starts for it.

The sensor tags each partition run ``perf/parent_run`` = the inputs run's id, and tags the
inputs run ``perf/partition_runs`` = how many it asked for (``perf/plan_error`` when the
input could not be planned). Until that tag is there, or while fewer partition runs exist
than it promises, the request is still in progress.
"""

from __future__ import annotations

from collections.abc import Sequence

from lambda_trigger.dagster_client import DagsterClient, RunInfo
from perf_contract.tags import PARENT_RUN_TAG, PARTITION_RUNS_TAG, PLAN_ERROR_TAG

IN_PROGRESS = "STARTED"
"""Reported while the inputs run is done and partition runs are still to come or to finish."""
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


def promised_runs(parent: RunInfo) -> int | None:
    """The number of partition runs the sensor asked for (None: not planned yet)."""
    value = parent.tags.get(PARTITION_RUNS_TAG, "")
    return int(value) if value.isdigit() else None


def combined_status(parent: RunInfo, children: Sequence[RunInfo]) -> str:
    """The request's status from its inputs run and partition runs.

    The inputs run's own status until it succeeds; then FAILURE when planning failed,
    STARTED while partition runs are not all asked for, created and finished, else FAILURE
    if any failed, CANCELED if any was canceled, SUCCESS when all succeeded."""
    if parent.status != "SUCCESS":
        return parent.status
    if PLAN_ERROR_TAG in parent.tags:
        return "FAILURE"
    promised = promised_runs(parent)
    statuses = {child.status for child in children}
    if promised is None or len(children) < promised or not statuses <= set(FINISHED):
        return IN_PROGRESS
    for status in ("FAILURE", "CANCELED"):
        if status in statuses:
            return status
    return "SUCCESS"


def request_status(client: DagsterClient, run: RunInfo, inputs_job: str) -> str:
    """The status of the request `run` started: combined over its partition runs when it is
    a run of `inputs_job` that succeeded and was planned, else the run's own status. At most
    one more GraphQL call (the partition runs)."""
    promised = promised_runs(run)
    if run.job != inputs_job or run.status != "SUCCESS" or not promised:
        return combined_status(run, []) if run.job == inputs_job else run.status
    children = client.runs_with_tags({PARENT_RUN_TAG: run.run_id}, limit=promised)
    return combined_status(run, children)
