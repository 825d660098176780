"""The SQS sensor against moto's server (queue + dead-letter queue) and a real Dagster instance.

"Recording" a run stands for what the sensor daemon does with a tick's run requests: it creates
a run tagged with the sensor name and the run key unless one with that run key exists.
"""

import hashlib
import json
import time
import uuid

import boto3
import pytest
from dagster import DagsterInstance, DagsterRun, RunsFilter, build_sensor_context, instance_for_test
from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

from perf_contract.tags import REQUEST_ID_TAG as REQUEST_TAG
from perf_pipeline.definitions import PERFORMANCE_JOB
from perf_pipeline.resources.aws_clients import SQSResource
from perf_pipeline.resources.aws_setup import MAX_RECEIVE_COUNT
from perf_pipeline.resources.input_store import InputStore
from perf_pipeline.sensors import sqs as sqs_sensor
from perf_pipeline.sensors.runs import DIGEST_TAG, KEYS_TAG, OBJECTS_TAG
from perf_pipeline.sensors.s3 import build_s3_sensor
from perf_pipeline.sensors.sqs import SQS_SENSOR_NAME, SqsSensorSettings, build_sqs_sensor

BUCKET, PREFIX = "perf-input", "in"
ROOT = f"s3://{BUCKET}/{PREFIX}"
SETTINGS = SqsSensorSettings(wait_seconds=1, time_budget_seconds=5, redelivery_seconds=1)


@pytest.fixture
def queue(aws):
    """A queue with a 1-second visibility timeout and its dead-letter queue (maxReceiveCount 5),
    plus the input bucket."""
    sqs = boto3.client("sqs", endpoint_url=aws)
    dlq = sqs.create_queue(QueueName="perf-requests-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName="perf-requests",
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
            ),
        },
    )["QueueUrl"]
    boto3.client("s3", endpoint_url=aws).create_bucket(Bucket=BUCKET)
    return {"sqs": sqs, "url": url, "dlq": dlq, "endpoint": aws}


@pytest.fixture
def instance():
    with instance_for_test() as temporary:
        yield temporary


def evaluate(instance: DagsterInstance, queue: dict, settings: SqsSensorSettings = SETTINGS):
    sensor = build_sqs_sensor(PERFORMANCE_JOB, queue["url"], settings=settings)
    resources = {
        "sqs": SQSResource(endpoint_url=queue["endpoint"]),
        "input_store": InputStore(root=ROOT),
    }
    with build_sensor_context(
        instance=instance, sensor_name=sensor.name, resources=resources
    ) as context:
        return sensor.evaluate_tick(context)


def record(instance: DagsterInstance, run_requests) -> None:
    """What the daemon does: one run per run key for this sensor."""
    for request in run_requests:
        existing = instance.get_runs(
            filters=RunsFilter(
                tags={RUN_KEY_TAG: request.run_key, SENSOR_NAME_TAG: SQS_SENSOR_NAME}
            )
        )
        if not existing:
            instance.add_run(
                DagsterRun(
                    job_name=PERFORMANCE_JOB,
                    run_id=str(uuid.uuid4()),
                    run_config=request.run_config,
                    tags={
                        **request.tags,
                        RUN_KEY_TAG: request.run_key,
                        SENSOR_NAME_TAG: SQS_SENSOR_NAME,
                    },
                )
            )


def in_queue(queue: dict, url_key: str = "url") -> int:
    """Visible + in-flight messages."""
    attributes = queue["sqs"].get_queue_attributes(
        QueueUrl=queue[url_key],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def send(queue: dict, body: object) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return queue["sqs"].send_message(QueueUrl=queue["url"], MessageBody=text)["MessageId"]


def evaluate_after_redelivery(instance, queue):
    time.sleep(1.1)  # the visibility timeout the sensor set (redelivery_seconds = 1)
    return evaluate(instance, queue)


def test_tag_names_match_dagster():
    assert (sqs_sensor.RUN_KEY_TAG, sqs_sensor.SENSOR_NAME_TAG) == (RUN_KEY_TAG, SENSOR_NAME_TAG)


def test_portfolio_request_is_deleted_only_after_its_run_is_recorded(instance, queue):
    message_id = send(
        queue,
        {
            "type": "portfolio_performance",
            "portfolio_ids": ["P1", "P2"],
            "as_of": "2024-06-28",
            "request_id": "req-1",
        },
    )
    first = evaluate(instance, queue)
    [run] = first.run_requests
    assert run.run_key == message_id
    assert run.tags[REQUEST_TAG] == "req-1"
    assert run.tags["perf/portfolio_ids"] == "P1,P2"  # what GET /runs/{id} authorizes against
    assert run.tags["perf/as_of"] == "2024-06-28"  # what the stale_partitions sensor plans to
    assert run.run_config == {
        "resources": {
            "run_request": {
                "config": {
                    "as_of": "2024-06-28",
                    "portfolio_ids": ["P1", "P2"],
                    "request_id": "req-1",
                }
            }
        }
    }
    assert in_queue(queue) == 1

    # Crash: the run request was never recorded. The message comes back, same run key.
    second = evaluate_after_redelivery(instance, queue)
    assert [request.run_key for request in second.run_requests] == [message_id]
    assert in_queue(queue) == 1

    record(instance, second.run_requests)
    third = evaluate_after_redelivery(instance, queue)
    assert third.run_requests == []
    assert in_queue(queue) == 0
    assert in_queue(queue, "dlq") == 0


def test_duplicate_delivery_starts_one_run(instance, queue):
    message_id = send(
        queue,
        {
            "type": "batch_calculation",
            "portfolio_ids": ["P1"],
            "start": "2024-01-01",
            "end": "2024-06-28",
            "request_id": "req-3",
        },
    )
    first = evaluate(instance, queue)
    duplicate = evaluate_after_redelivery(instance, queue)  # delivered again before recording
    assert [r.run_key for r in first.run_requests + duplicate.run_requests] == [message_id] * 2
    record(instance, first.run_requests)
    record(instance, duplicate.run_requests)
    runs = instance.get_runs(filters=RunsFilter(tags={SENSOR_NAME_TAG: SQS_SENSOR_NAME}))
    assert len(runs) == 1
    assert runs[0].run_config["resources"]["run_request"]["config"]["as_of"] == "2024-06-28"
    assert runs[0].tags["perf/start"] == "2024-01-01"
    assert runs[0].tags["perf/as_of"] == "2024-06-28"
    assert runs[0].tags[REQUEST_TAG] == "req-3"
    assert evaluate_after_redelivery(instance, queue).run_requests == []
    assert in_queue(queue) == 0


def test_a_request_id_already_run_starts_nothing_more(instance, queue):
    body = {
        "type": "portfolio_performance",
        "portfolio_ids": ["P1"],
        "as_of": "2024-06-28",
        "request_id": "req-twice",
    }
    send(queue, body)
    record(instance, evaluate(instance, queue).run_requests)
    send(queue, body)  # the client sent the same request again: a new message, a new id
    again = evaluate_after_redelivery(instance, queue)
    assert again.run_requests == []
    assert len(instance.get_runs(filters=RunsFilter(tags={REQUEST_TAG: "req-twice"}))) == 1
    assert in_queue(queue) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"type": "portfolio_performance", "portfolio_ids": [], "as_of": "2024-06-28"},
        {"type": "portfolio_performance", "portfolio_ids": ["P1"], "as_of": "2024-13-01"},
        {
            "type": "batch_calculation",
            "portfolio_ids": ["P1"],
            "start": "2024-02-01",
            "end": "2024-01-31",
        },
        {"type": "transactions", "s3_uri": "s3://elsewhere/transactions/x.csv"},
        {"type": "transactions", "s3_uri": f"{ROOT}/transactions/missing.csv"},
        {"type": "unknown"},
        ["a", "list"],
    ],
)
def test_invalid_message_is_logged_and_left_in_the_queue(instance, queue, body, capfd):
    message_id = send(queue, body)
    assert evaluate(instance, queue).run_requests == []
    assert in_queue(queue) == 1
    err = capfd.readouterr().err
    assert f"SQS message {message_id} (receive 1) left for the dead-letter queue" in err


def test_poison_message_ends_in_the_dead_letter_queue(instance, queue, capfd):
    message_id = send(queue, "not json")
    deadline = time.monotonic() + 30
    evaluations = 0
    while in_queue(queue, "dlq") == 0 and time.monotonic() < deadline:
        assert evaluate(instance, queue).run_requests == []  # long-polls past the 1-s timeout
        evaluations += 1
    moved = queue["sqs"].receive_message(
        QueueUrl=queue["dlq"], MessageSystemAttributeNames=["ApproximateReceiveCount"]
    )
    [dead] = moved["Messages"]
    assert dead["MessageId"] == message_id
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= MAX_RECEIVE_COUNT
    assert evaluations >= MAX_RECEIVE_COUNT
    assert in_queue(queue) == 0
    err = capfd.readouterr().err
    assert f"SQS message {message_id} (receive {MAX_RECEIVE_COUNT}) left for the dead-letter" in err
    assert "not JSON" in err


def s3_event(key: str, etag: str, size: int, name: str = "ObjectCreated:Put") -> dict:
    """An S3 event notification as S3 sends it to SQS (key URL-encoded)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventTime": "2024-06-28T18:00:00.000Z",
                "eventName": name,
                "userIdentity": {"principalId": "AWS:EXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {
                    "x-amz-request-id": "C3D13FE58DE4C810",
                    "x-amz-id-2": "FMyUVURI",
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "perf-input-created",
                    "bucket": {
                        "name": BUCKET,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{BUCKET}",
                    },
                    "object": {
                        "key": key.replace(" ", "+"),
                        "size": size,
                        "eTag": etag,
                        "sequencer": "0055AED6DCD90281E5",
                    },
                },
            }
        ]
    }


def test_s3_notification_through_sqs_starts_the_s3_sensor_run(instance, queue):
    s3 = boto3.client("s3", endpoint_url=queue["endpoint"])
    body = b"a,b\n1,2\n"
    etag = s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/transactions/batch 7.csv", Body=body)[
        "ETag"
    ].strip('"')
    message_id = send(queue, s3_event(f"{PREFIX}/transactions/batch 7.csv", etag, len(body)))
    [run] = evaluate(instance, queue).run_requests
    expected = hashlib.sha256(f"transactions/batch 7.csv@{etag}".encode()).hexdigest()
    assert run.run_key == message_id
    assert (run.tags[DIGEST_TAG], run.tags[OBJECTS_TAG], run.tags[KEYS_TAG]) == (
        expected,
        "1",
        "transactions/batch 7.csv",
    )

    s3_sensor = build_s3_sensor(PERFORMANCE_JOB)
    with build_sensor_context(
        instance=instance,
        sensor_name=s3_sensor.name,
        resources={"input_store": InputStore(root=ROOT)},
    ) as context:
        [same] = s3_sensor.evaluate_tick(context).run_requests
    assert same.run_config == run.run_config
    assert {k: same.tags[k] for k in (DIGEST_TAG, OBJECTS_TAG, KEYS_TAG)} == {
        k: run.tags[k] for k in (DIGEST_TAG, OBJECTS_TAG, KEYS_TAG)
    }


def test_transactions_message_runs_the_object_it_names(instance, queue):
    s3 = boto3.client("s3", endpoint_url=queue["endpoint"])
    etag = s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/transactions/x.csv", Body=b"a\n1\n")[
        "ETag"
    ].strip('"')
    send(
        queue,
        {"type": "transactions", "s3_uri": f"{ROOT}/transactions/x.csv", "request_id": "req-2"},
    )
    [run] = evaluate(instance, queue).run_requests
    assert run.tags[DIGEST_TAG] == hashlib.sha256(f"transactions/x.csv@{etag}".encode()).hexdigest()
    assert run.tags[REQUEST_TAG] == "req-2"
    assert run.run_config["resources"]["run_request"]["config"] == {"request_id": "req-2"}


def test_test_event_and_events_outside_the_root_are_deleted_without_a_run(instance, queue):
    send(
        queue,
        {
            "Service": "Amazon S3",
            "Event": "s3:TestEvent",
            "Time": "2024-06-28T18:00:00Z",
            "Bucket": BUCKET,
            "RequestId": "5582815E1AEA5ADF",
            "HostId": "8cLeGAmw",
        },
    )
    send(queue, s3_event("elsewhere/transactions/x.csv", "abc", 3))
    send(queue, s3_event(f"{PREFIX}/transactions/x.csv", "abc", 3, "ObjectRemoved:Delete"))
    result = evaluate(instance, queue)
    assert result.run_requests == []
    assert "3 messages done and deleted" in result.skip_message
    assert in_queue(queue) == 0
    assert in_queue(queue, "dlq") == 0


def test_a_tick_takes_a_bounded_batch(instance, queue):
    for n in range(25):
        send(
            queue,
            {"type": "portfolio_performance", "portfolio_ids": [f"P{n}"], "as_of": "2024-06-28"},
        )
    sensor = build_sqs_sensor(
        PERFORMANCE_JOB,
        queue["url"],
        settings=SqsSensorSettings(
            max_messages=12, wait_seconds=1, time_budget_seconds=5, redelivery_seconds=60
        ),
    )
    resources = {
        "sqs": SQSResource(endpoint_url=queue["endpoint"]),
        "input_store": InputStore(root=ROOT),
    }
    with build_sensor_context(
        instance=instance, sensor_name=sensor.name, resources=resources
    ) as context:
        assert len(sensor.evaluate_tick(context).run_requests) == 12


@pytest.mark.parametrize("poison", ["[" * 1000 + "]" * 1000, '{"n": ' + "9" * 5000 + "}"])
def test_a_poison_body_beside_valid_ones_costs_them_nothing(instance, queue, poison, capfd):
    # Review finding: RecursionError / int-digits ValueError escaped and failed the whole tick.
    send(queue, poison)
    good = send(
        queue,
        {
            "type": "portfolio_performance",
            "portfolio_ids": ["P1"],
            "as_of": "2024-06-28",
            "request_id": "req-good",
        },
    )
    result = evaluate(instance, queue)
    assert [request.run_key for request in result.run_requests] == [good]
    assert "left for the dead-letter queue: not parseable" in capfd.readouterr().err


def test_a_request_id_reused_for_other_portfolios_is_other_work(instance, queue):
    send(
        queue,
        {
            "type": "portfolio_performance",
            "portfolio_ids": ["P1"],
            "as_of": "2024-06-28",
            "request_id": "req-reused",
        },
    )
    record(instance, evaluate(instance, queue).run_requests)
    other = send(
        queue,
        {
            "type": "portfolio_performance",
            "portfolio_ids": ["P9"],
            "as_of": "2024-06-28",
            "request_id": "req-reused",
        },
    )
    again = evaluate_after_redelivery(instance, queue)
    assert [request.run_key for request in again.run_requests] == [other]


def test_the_same_request_twice_in_one_tick_asks_for_one_run(instance, queue):
    body = {
        "type": "portfolio_performance",
        "portfolio_ids": ["P1"],
        "as_of": "2024-06-28",
        "request_id": "req-same-tick",
    }
    send(queue, body)
    send(queue, body)
    first = evaluate(instance, queue)
    assert len(first.run_requests) == 1
    record(instance, first.run_requests)
    time.sleep(1.1)
    assert evaluate(instance, queue).run_requests == []
    assert in_queue(queue) == 0


def test_a_valid_message_is_held_through_a_tick_longer_than_the_queue_timeout(aws, instance):
    """Issue 14: a queue whose visibility timeout (1 s) is shorter than the tick (5 s of long
    polls) and maxReceiveCount 2. The message received first must not be received again within
    the tick, or its receive count walks it into the dead-letter queue although its run was
    asked for."""
    sqs = boto3.client("sqs", endpoint_url=aws)
    dlq = sqs.create_queue(QueueName="short-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = sqs.create_queue(
        QueueName="short", Attributes={"VisibilityTimeout": "1", "RedrivePolicy": redrive}
    )["QueueUrl"]
    queue = {"sqs": sqs, "url": url, "dlq": dlq, "endpoint": aws}
    boto3.client("s3", endpoint_url=aws).create_bucket(Bucket=BUCKET)
    message_id = send(
        queue, {"type": "portfolio_performance", "portfolio_ids": ["P1"], "as_of": "2024-06-28"}
    )
    # long polls of 3 s, as the default of 10 s within 30: each outlasts the queue's timeout
    settings = SqsSensorSettings(wait_seconds=3, time_budget_seconds=6, redelivery_seconds=1)
    started = time.monotonic()
    requests = evaluate(instance, queue, settings).run_requests
    assert time.monotonic() - started >= 3  # the tick went on polling past the 1-s timeout
    assert [request.run_key for request in requests] == [message_id]
    assert in_queue(queue, "dlq") == 0
    record(instance, requests)
    assert evaluate_after_redelivery(instance, queue).run_requests == []  # recorded: deleted
    assert in_queue(queue) == 0 and in_queue(queue, "dlq") == 0
