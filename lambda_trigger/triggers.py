"""Turn a validated calculation request into a Dagster run, directly or through SQS.

GraphqlTrigger launches the inputs job; Dagster's stale_partitions sensor then starts the
partition runs (request_status.py reports on all of them).
GraphqlTrigger is idempotent per caller: a run is keyed on (request_id, the token's `sub`),
tagged `perf/request_id` and `perf/requested_by`. It first looks for a run of its job carrying
both tags (the partition runs carry them too) and returns it; only when none exists does it
launch. So a caller who repeats a request_id with the same body gets his own run back; with a
different body (portfolios or as-of) he gets a 409; another caller reusing the same
request_id gets a run of his own (never someone else's run_id).
SqsTrigger queues a `portfolio_performance` message; the request_id in the body makes the
SQS sensor's work idempotent (standard queues have no deduplication id). The message schema
is fixed by perf_contract.messages and has no requester field, so in SQS mode the key is request_id
alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from lambda_trigger.dagster_client import (
    DagsterClient,
    DagsterUnreachableError,
    JobSelector,
    LaunchRejectedError,
    RunInfo,
)
from lambda_trigger.errors import ConflictError, ServiceUnavailableError, UpstreamRejectedError
from lambda_trigger.request_status import request_status
from lambda_trigger.validation import CalculateRequest
from perf_contract.messages import portfolio_performance_body
from perf_contract.run_config import run_request_config
from perf_contract.tags import (
    AS_OF_TAG,
    PORTFOLIO_IDS_TAG,
    REQUEST_ID_TAG,
    REQUESTED_BY_TAG,
    portfolio_ids_tag,
)

NOT_LAUNCHED = "nothing was launched"


@dataclass(frozen=True)
class Submission:
    """What POST /calculate answers: run_id is None when the request was only queued."""

    request_id: str
    run_id: str | None
    status: str


class Trigger(Protocol):
    """Starts the performance calculation for one validated request."""

    def submit(self, request: CalculateRequest, requested_by: str) -> Submission:
        """Launch or queue `request` for the caller whose token subject is `requested_by`."""
        ...


def run_config(request: CalculateRequest) -> dict[str, Any]:
    """The job's run config: the `run_request` resource carries the request."""
    return run_request_config(
        as_of=request.as_of.isoformat(),
        portfolio_ids=request.portfolio_ids,
        request_id=request.request_id,
    )


def run_tags(request: CalculateRequest) -> dict[str, str]:
    """Tags that make a run findable by request id and authorizable by portfolio, and the
    as-of date Dagster's stale_partitions sensor plans the partition runs to."""
    return {
        REQUEST_ID_TAG: request.request_id,
        PORTFOLIO_IDS_TAG: portfolio_ids_tag(request.portfolio_ids),
        AS_OF_TAG: request.as_of.isoformat(),
    }


def idempotency_tags(request: CalculateRequest, requested_by: str) -> dict[str, str]:
    """The tags that identify one caller's request: its request_id and the token's subject."""
    return {REQUEST_ID_TAG: request.request_id, REQUESTED_BY_TAG: requested_by}


def same_request(run: RunInfo, request: CalculateRequest) -> bool:
    """True when `run` was launched for this very body (its portfolio ids and as-of tags)."""
    wanted = run_tags(request)
    return all(run.tags.get(tag) == wanted[tag] for tag in (PORTFOLIO_IDS_TAG, AS_OF_TAG))


def _unavailable(exc: DagsterUnreachableError, request_id: str) -> ServiceUnavailableError:
    """A 503 for a failed launch; when the launch may have happened, its details carry the
    request_id used (possibly generated here), so the caller can retry without a duplicate.
    The transport's own reason goes to the log (handler), never to the caller."""
    if exc.request_sent:
        return ServiceUnavailableError(
            "Dagster did not confirm the launch; retrying with the same request_id "
            "will not launch a second run",
            [{"request_id": request_id}],
        )
    return ServiceUnavailableError(f"Dagster is unreachable; {NOT_LAUNCHED}")


class GraphqlTrigger:
    """Launches the job through Dagster's GraphQL API, at most once per (request_id, caller)."""

    def __init__(self, client: DagsterClient, selector: JobSelector) -> None:
        self._client = client
        self._selector = selector

    def submit(self, request: CalculateRequest, requested_by: str) -> Submission:
        """This caller's existing run for this request_id (with the status of the whole
        request), or a newly launched one."""
        key = idempotency_tags(request, requested_by)
        try:
            existing = self._client.runs_with_tags(key, job=self._selector.job)
            if existing:
                run = existing[0]
                if not same_request(run, request):
                    raise ConflictError(
                        "this request_id was already used for a different request; " + NOT_LAUNCHED
                    )
                status = request_status(self._client, run, self._selector.job)
                return Submission(request.request_id, run.run_id, status)
        except DagsterUnreachableError as exc:
            raise ServiceUnavailableError(f"Dagster is unreachable; {NOT_LAUNCHED}") from exc
        try:
            run = self._client.launch_run(
                self._selector, run_config(request), {**run_tags(request), **key}
            )
        except DagsterUnreachableError as exc:
            raise _unavailable(exc, request.request_id) from exc
        except LaunchRejectedError as exc:
            raise UpstreamRejectedError(f"Dagster refused the launch; {NOT_LAUNCHED}") from exc
        return Submission(request.request_id, run.run_id, run.status)


def sqs_message(request: CalculateRequest) -> dict[str, Any]:
    """The `portfolio_performance` message of the SQS sensor (perf_contract.messages)."""
    return portfolio_performance_body(request.portfolio_ids, request.as_of, request.request_id)


class SqsTrigger:
    """Queues the request for the SQS sensor."""

    def __init__(self, sqs_client: Any, queue_url: str) -> None:
        self._sqs = sqs_client
        self._queue_url = queue_url

    def submit(self, request: CalculateRequest, requested_by: str) -> Submission:
        """Send one message; ServiceUnavailableError (nothing queued) when SQS fails.

        `requested_by` is not sent: the message schema has no field for it.
        """
        try:
            self._sqs.send_message(
                QueueUrl=self._queue_url,
                MessageBody=json.dumps(sqs_message(request), separators=(",", ":")),
            )
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailableError(
                "SQS is unavailable; nothing was queued or launched"
            ) from exc
        return Submission(request.request_id, None, "QUEUED")
