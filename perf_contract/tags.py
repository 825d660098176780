"""Run tags written by one side and read by the other.

The Lambda tags the runs it launches with the request id, the caller and the portfolios;
the SQS sensor tags its runs the same way; the stale-partitions sensor tags the runs it
starts for a request with the parent run, and the parent with how many it asked for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

REQUEST_ID_TAG = "perf/request_id"
"""The API or message request id of a run (and of every run it led to)."""
REQUESTED_BY_TAG = "perf/requested_by"
"""The token subject of an API request (set by the Lambda)."""
PORTFOLIO_IDS_TAG = "perf/portfolio_ids"
"""Comma-joined portfolio ids a run was started for; GET /runs/{id} authorizes on it."""
AS_OF_TAG = "perf/as_of"
"""The as-of date (YYYY-MM-DD) a run was asked for; the stale_partitions sensor plans to it."""
START_TAG = "perf/start"
"""The first date of a batch_calculation: its portfolios are recomputed from it."""
PARENT_RUN_TAG = "perf/parent_run"
"""On a run the stale_partitions sensor starts: the id of the inputs run it follows."""
PARTITION_RUNS_TAG = "perf/partition_runs"
"""On an inputs run: how many runs the stale_partitions sensor asked for after it."""
PLAN_ERROR_TAG = "perf/plan_error"
"""On an inputs run whose follow-up runs could not be planned."""


def portfolio_ids_tag(portfolio_ids: Sequence[str]) -> str:
    """The PORTFOLIO_IDS_TAG value: the ids joined by commas (ids never contain a comma)."""
    return ",".join(portfolio_ids)


def tagged_portfolio_ids(tags: Mapping[str, str]) -> tuple[str, ...] | None:
    """The portfolio ids a run was tagged with, or None for a run without the tag."""
    value = tags.get(PORTFOLIO_IDS_TAG)
    return tuple(value.split(",")) if value else None
