"""The SQS sensor: each message on PERF_SQS_QUEUE_URL starts one run, keyed by its message id.

Exactly once, without losing a message: on each tick, for every message received,

1. a run with run key = the message id already recorded for this sensor -> delete the message;
2. otherwise, the message parses -> ask for its run and make the message visible again after
   ``redelivery_seconds``; on that later tick the run has been recorded and step 1 deletes it;
3. a body that cannot be parsed or validated -> log the reason and make it visible again after
   ``redelivery_seconds``: after maxReceiveCount receives SQS moves it to the dead-letter queue.

A message is therefore deleted only after its run is in the instance: a crash anywhere before
that leaves the message in the queue, and its redelivery asks for the same run key, which
Dagster never starts twice. ``s3:TestEvent`` and S3 events without input files are deleted at
once (there is nothing to run).

A tick receives at most ``max_messages`` messages (long polls of ``wait_seconds``) and stops
receiving when ``time_budget_seconds`` are spent, so that an evaluation ends well inside
Dagster's 60-second limit. Every message is held from the moment it is received: the receive
itself sets its visibility timeout to ``hold_seconds`` (longer than the tick), so a queue
whose own timeout is shorter than the tick cannot hand the same message back within the tick
(each receive counts towards maxReceiveCount, and a valid message would walk into the
dead-letter queue although its run was asked for); should a message come back all the same,
the tick stops receiving. At the end of the tick each message held is deleted, or made
visible again after ``redelivery_seconds``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from perf_contract.run_config import run_request_config
from perf_contract.tags import PORTFOLIO_IDS_TAG, REQUEST_ID_TAG, START_TAG, portfolio_ids_tag
from perf_pipeline.resources.aws_clients import SQSResource
from perf_pipeline.resources.input_store import InputObject, InputStore
from perf_pipeline.sensors.messages import (
    BatchCalculation,
    InvalidMessageError,
    Message,
    PortfolioPerformance,
    S3Event,
    TransactionsFile,
    parse_message,
)
from perf_pipeline.sensors.runs import objects_run_request, request_tags, skip_reason

SQS_SENSOR_NAME = "sqs_request_sensor"
RUN_KEY_TAG = "dagster/run_key"
SENSOR_NAME_TAG = "dagster/sensor_name"
MESSAGE_TYPE_TAG = "perf/message_type"
SQS_BATCH = 10  # the most messages one ReceiveMessage / *Batch call takes


@dataclass(frozen=True)
class SqsSensorSettings:
    """Pace and bounds of the SQS sensor's ticks (seconds unless named otherwise)."""

    minimum_interval_seconds: int = 30
    max_messages: int = 100
    wait_seconds: int = 10
    time_budget_seconds: float = 30.0
    redelivery_seconds: int = 30

    @property
    def hold_seconds(self) -> int:
        """Visibility timeout set on receipt: the whole tick plus a minute to process it."""
        return int(self.time_budget_seconds) + 60


def receive(client: Any, queue_url: str, settings: SqsSensorSettings) -> list[dict[str, Any]]:
    """Up to ``max_messages`` distinct messages, long-polling until the queue answers empty, the
    time budget is spent or a message already received comes back; each is held (invisible)
    for ``hold_seconds`` from its receipt."""
    deadline = time.monotonic() + settings.time_budget_seconds
    messages: dict[str, dict[str, Any]] = {}
    while len(messages) < settings.max_messages:
        left = deadline - time.monotonic()
        if left < 1:
            break
        answer = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(SQS_BATCH, settings.max_messages - len(messages)),
            WaitTimeSeconds=min(settings.wait_seconds, int(left)),
            VisibilityTimeout=settings.hold_seconds,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        batch = answer.get("Messages", [])
        if not batch:
            break
        again = [message for message in batch if message["MessageId"] in messages]
        messages.update((message["MessageId"], message) for message in batch)
        if again:  # held for less than the tick after all: take no more
            break
    return list(messages.values())


def request_key(request: RunRequest) -> tuple[str, str] | None:
    """(request_id, portfolio ids) of a request that names both: the same request sent again."""
    request_id = request.tags.get(REQUEST_ID_TAG)
    portfolios = request.tags.get(PORTFOLIO_IDS_TAG)
    return (request_id, portfolios) if request_id and portfolios else None


def run_recorded(instance: DagsterInstance, message_id: str, request: RunRequest) -> bool:
    """True when the message's work has a run in the instance: this sensor's run for the
    message, or a run for the same request_id and portfolios (a client that sent a request
    twice; a reused request_id for other portfolios is other work)."""
    wanted = [{RUN_KEY_TAG: message_id, SENSOR_NAME_TAG: SQS_SENSOR_NAME}]
    key = request_key(request)
    if key:
        wanted.append({REQUEST_ID_TAG: key[0], PORTFOLIO_IDS_TAG: key[1]})
    return any(instance.get_runs(filters=RunsFilter(tags=tags), limit=1) for tags in wanted)


def object_at(store: InputStore, uri: str) -> InputObject:
    """The input file at ``uri``; InvalidMessageError unless it is an input file under the root."""
    root = store.root.rstrip("/") + "/"
    if not store.is_s3 or not uri.startswith(root):
        raise InvalidMessageError(f"{uri} is not under the input root {store.root}")
    try:
        obj = store.stat_s3(uri[len(root) :])
    except FileNotFoundError as exc:
        raise InvalidMessageError(str(exc)) from exc
    reason = skip_reason(obj)
    if reason:
        raise InvalidMessageError(reason)
    return obj


def event_objects(
    event: S3Event, store: InputStore, log: logging.Logger | logging.LoggerAdapter
) -> list[InputObject]:
    """The input files an S3 event notification names; other records are logged and left."""
    bucket, prefix = store.bucket_prefix() if store.is_s3 else ("", "")
    root = f"{prefix}/" if prefix else ""
    found = []
    for record in event.Records:
        key = record.s3.object.decoded_key
        if not (record.created and record.s3.bucket.name == bucket and key.startswith(root)):
            log.info(
                f"S3 event skipped: {record.eventName} s3://{record.s3.bucket.name}/{key} "
                f"is not an object created under {store.root}"
            )
            continue
        path = key[len(root) :]
        obj = InputObject(
            path,
            path.split("/", 1)[0] if "/" in path else "",
            record.s3.object.eTag,
            record.s3.object.size,
        )
        reason = skip_reason(obj)
        if reason:
            log.info(f"S3 event skipped: {reason}")
        else:
            found.append(obj)
    return found


def message_run(
    message_id: str,
    message: Message | None,
    store: InputStore,
    log: logging.Logger | logging.LoggerAdapter,
) -> RunRequest | None:
    """The run a parsed message asks for, run key = message id (None: nothing to run, as for
    ``s3:TestEvent``, parsed as None)."""
    if message is None:
        return None
    if isinstance(message, S3Event):
        objects = event_objects(message, store, log)
        return objects_run_request(objects, run_key=message_id) if objects else None
    if isinstance(message, TransactionsFile):
        return objects_run_request(
            [object_at(store, message.s3_uri)],
            run_key=message_id,
            request_id=message.request_id,
            tags={MESSAGE_TYPE_TAG: message.type},
        )
    as_of = message.as_of if isinstance(message, PortfolioPerformance) else message.end
    tags = {
        MESSAGE_TYPE_TAG: message.type,
        PORTFOLIO_IDS_TAG: portfolio_ids_tag(message.portfolio_ids),
        **request_tags(message.request_id, as_of.isoformat()),
    }
    if isinstance(message, BatchCalculation):
        tags[START_TAG] = message.start.isoformat()  # recomputed from here (stale_partitions)
    return RunRequest(
        run_key=message_id,
        tags=tags,
        run_config=run_request_config(
            as_of=as_of.isoformat(),
            portfolio_ids=message.portfolio_ids,
            request_id=message.request_id,
        ),
    )


def _batched(
    client: Any,
    method: str,
    queue_url: str,
    entries: Sequence[dict[str, Any]],
    log: logging.Logger | logging.LoggerAdapter,
) -> None:
    for start in range(0, len(entries), SQS_BATCH):
        answer = getattr(client, method)(
            QueueUrl=queue_url, Entries=list(entries[start : start + SQS_BATCH])
        )
        for failed in answer.get("Failed", []):
            log.warning(f"SQS {method} failed for {failed['Id']}: {failed.get('Message')}")


def build_sqs_sensor(
    job_name: str,
    queue_url: str | None,
    *,
    default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
    settings: SqsSensorSettings | None = None,
) -> SensorDefinition:
    """The SQS sensor on ``queue_url`` (PERF_SQS_QUEUE_URL), asking for runs of ``job_name``;
    it needs the ``sqs`` and ``input_store`` resources."""
    settings = settings or SqsSensorSettings()

    @sensor(
        name=SQS_SENSOR_NAME,
        job_name=job_name,
        minimum_interval_seconds=settings.minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Long-polls the queue PERF_SQS_QUEUE_URL: each portfolio_performance, "
            "batch_calculation or transactions message, or S3 event notification, starts one "
            "run (run key = message id); a message is deleted once its run is recorded, and one "
            "that cannot be parsed is left for the dead-letter queue. On by default when "
            "PERF_SQS_QUEUE_URL is set."
        ),
    )
    def sqs_request_sensor(
        context: SensorEvaluationContext, sqs: SQSResource, input_store: InputStore
    ):
        if not queue_url:
            return SkipReason("PERF_SQS_QUEUE_URL is not set: no queue to read")
        client = sqs.get_client()
        requests: list[RunRequest] = []
        finished: list[dict[str, Any]] = []
        pending: list[dict[str, Any]] = []
        requested_now: set[tuple[str, str]] = set()
        for received in receive(client, queue_url, settings):
            message_id = received["MessageId"]
            entry = {"Id": message_id, "ReceiptHandle": received["ReceiptHandle"]}
            later = {**entry, "VisibilityTimeout": settings.redelivery_seconds}
            try:
                request = message_run(
                    message_id, parse_message(received["Body"]), input_store, context.log
                )
            except InvalidMessageError as exc:
                count = received.get("Attributes", {}).get("ApproximateReceiveCount", "?")
                context.log.warning(
                    f"SQS message {message_id} (receive {count}) left for the "
                    f"dead-letter queue: {exc}"
                )
                pending.append(later)  # released from the hold; its receives count to the DLQ
                continue
            except (BotoCoreError, ClientError) as exc:  # S3 unreachable or refusing: retry
                context.log.warning(f"SQS message {message_id} left for a later tick: {exc}")
                pending.append(later)
                continue
            if request is None or run_recorded(context.instance, message_id, request):
                finished.append(entry)
            elif request_key(request) in requested_now:
                pending.append(later)  # the same request twice in one tick: its run first
            else:
                if request_key(request):
                    requested_now.add(request_key(request))
                requests.append(request)
                pending.append(later)
        _batched(client, "delete_message_batch", queue_url, finished, context.log)
        _batched(client, "change_message_visibility_batch", queue_url, pending, context.log)
        if not requests:
            return SkipReason(f"no new requests ({len(finished)} messages done and deleted)")
        return requests

    return sqs_request_sensor
