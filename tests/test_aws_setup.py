"""create_dev_resources against moto's server: everything exists, twice, with the right shape."""

from __future__ import annotations

import json

import boto3
import pytest

from perf_pipeline.resources.aws_setup import create_dev_resources

NAMES = {
    "bucket": "perf-input-dev",
    "table": "performance-metrics",
    "timestream_database": "investment_performance",
    "timestream_table": "performance_metrics",
    "queue_name": "perf-requests",
    "region": "us-east-1",
}


def _client(service: str, endpoint: str):
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)


def test_creates_everything_and_is_idempotent(aws: str) -> None:
    first = create_dev_resources(**NAMES, endpoint_url=aws)
    second = create_dev_resources(**NAMES, endpoint_url=aws)
    assert first == second

    s3 = _client("s3", aws)
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["perf-input-dev"]
    block = s3.get_public_access_block(Bucket="perf-input-dev")["PublicAccessBlockConfiguration"]
    assert all(block.values())

    table = _client("dynamodb", aws).describe_table(TableName="performance-metrics")["Table"]
    assert first["table_arn"] == table["TableArn"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [
        ("id", "HASH"),
        ("sk", "RANGE"),
    ]
    gsis = {
        g["IndexName"]: [(k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]]
        for g in table["GlobalSecondaryIndexes"]
    }
    assert gsis == {
        "PortfolioIndex": [("portfolio_id", "HASH"), ("sk", "RANGE")],
        "ClientIndex": [("client_id", "HASH"), ("sk", "RANGE")],
    }

    ts = _client("timestream-write", aws)
    ts_table = ts.describe_table(
        DatabaseName="investment_performance", TableName="performance_metrics"
    )["Table"]
    assert ts_table["Arn"] == first["timestream_table_arn"]
    assert ts_table["MagneticStoreWriteProperties"]["EnableMagneticStoreWrites"] is True
    assert len(ts.list_databases()["Databases"]) == 1

    sqs = _client("sqs", aws)
    assert sorted(sqs.list_queues()["QueueUrls"]) == sorted([first["queue_url"], first["dlq_url"]])
    attributes = sqs.get_queue_attributes(
        QueueUrl=first["queue_url"], AttributeNames=["RedrivePolicy"]
    )["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == first["dlq_arn"]
    assert int(redrive["maxReceiveCount"]) == 5


def test_existing_table_with_other_keys_is_refused(aws: str) -> None:
    _client("dynamodb", aws).create_table(
        TableName="performance-metrics",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
    )
    with pytest.raises(ValueError, match="another key schema"):
        create_dev_resources(**NAMES, endpoint_url=aws)
