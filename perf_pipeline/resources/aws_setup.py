"""Create the AWS resources of a dev/test environment (an emulator or a sandbox account).

The same resources as template.yaml (SAM) declares for production: the S3 input bucket
(encrypted, public access blocked), the DynamoDB table (``id``/``sk``, GSIs PortfolioIndex and
ClientIndex on ``sk``, on-demand, point-in-time recovery), the Timestream database and table
(magnetic-store writes on) and the SQS queue with its dead-letter queue (maxReceiveCount 5).
Every step is idempotent: a resource that already exists is kept (and brought to the settings
above where an update call exists); a DynamoDB table with a different key schema or without
the GSIs raises ``ValueError`` rather than being altered.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource

from perf_pipeline.resources.aws_clients import (
    DynamoDBResource,
    SQSResource,
    TimestreamWriteResource,
)
from perf_pipeline.resources.dynamodb import CLIENT_INDEX, PORTFOLIO_INDEX

MAX_RECEIVE_COUNT = 5
MEMORY_STORE_RETENTION_HOURS = 24
MAGNETIC_STORE_RETENTION_DAYS = 73000
"""Timestream's maximum (200 years): performance history reaches far back."""


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _ensure_bucket(s3: Any, bucket: str, region: str) -> str:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _error_code(exc) not in {"404", "NoSuchBucket", "NotFound"}:
            raise
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**kwargs)
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    return bucket


def _gsi(name: str, partition: str) -> dict[str, Any]:
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }


def ensure_metrics_table(dynamodb: Any, table: str) -> str:
    """Create (or check) the performance_metrics table with its GSIs; returns its ARN."""
    key_schema = [
        {"AttributeName": "id", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = [_gsi(PORTFOLIO_INDEX, "portfolio_id"), _gsi(CLIENT_INDEX, "client_id")]
    try:
        dynamodb.create_table(
            TableName=table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"}
                for name in ("id", "sk", "portfolio_id", "client_id")
            ],
            KeySchema=key_schema,
            GlobalSecondaryIndexes=indexes,
            SSESpecification={"Enabled": True},
        )
    except ClientError as exc:
        if _error_code(exc) != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(
        TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    description = dynamodb.describe_table(TableName=table)["Table"]
    found = {
        index["IndexName"]: index["KeySchema"]
        for index in description.get("GlobalSecondaryIndexes", [])
    }
    wanted = {index["IndexName"]: index["KeySchema"] for index in indexes}
    if description["KeySchema"] != key_schema or any(
        found.get(name) != schema for name, schema in wanted.items()
    ):
        raise ValueError(
            f"DynamoDB table {table!r} exists with another key schema or without the GSIs "
            f"{sorted(wanted)}: keys {description['KeySchema']}, GSIs {found}"
        )
    dynamodb.update_continuous_backups(
        TableName=table,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    return str(description["TableArn"])


def ensure_timestream_table(timestream: Any, database: str, table: str) -> tuple[str, str]:
    """Create (or update) the Timestream database and table; returns their ARNs."""
    try:
        database_arn = timestream.create_database(DatabaseName=database)["Database"]["Arn"]
    except ClientError as exc:
        if _error_code(exc) != "ConflictException":
            raise
        database_arn = timestream.describe_database(DatabaseName=database)["Database"]["Arn"]
    settings: dict[str, Any] = {
        "DatabaseName": database,
        "TableName": table,
        "RetentionProperties": {
            "MemoryStoreRetentionPeriodInHours": MEMORY_STORE_RETENTION_HOURS,
            "MagneticStoreRetentionPeriodInDays": MAGNETIC_STORE_RETENTION_DAYS,
        },
        "MagneticStoreWriteProperties": {"EnableMagneticStoreWrites": True},
    }
    try:
        table_arn = timestream.create_table(**settings)["Table"]["Arn"]
    except ClientError as exc:
        if _error_code(exc) != "ConflictException":
            raise
        table_arn = timestream.update_table(**settings)["Table"]["Arn"]
    return str(database_arn), str(table_arn)


def _ensure_queue(sqs: Any, queue_name: str) -> dict[str, str]:
    dlq_url = sqs.create_queue(QueueName=f"{queue_name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": json.dumps(redrive)})
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    return {"queue_url": queue_url, "queue_arn": queue_arn, "dlq_url": dlq_url, "dlq_arn": dlq_arn}


def create_dev_resources(
    *,
    bucket: str,
    table: str,
    timestream_database: str,
    timestream_table: str,
    queue_name: str,
    region: str,
    endpoint_url: str | None = None,
) -> dict[str, str]:
    """Create (or keep) every AWS resource the pipeline uses; returns their names, ARNs, URLs.

    Keys: bucket, table, table_arn, timestream_database, timestream_database_arn,
    timestream_table, timestream_table_arn, queue_url, queue_arn, dlq_url, dlq_arn.
    The dead-letter queue is named ``{queue_name}-dlq``.
    """
    settings = {"region_name": region, "endpoint_url": endpoint_url}
    s3 = S3Resource(**settings).get_client()
    dynamodb = DynamoDBResource(**settings).get_client()
    timestream = TimestreamWriteResource(**settings).get_client()
    sqs = SQSResource(**settings).get_client()
    database_arn, timestream_table_arn = ensure_timestream_table(
        timestream, timestream_database, timestream_table
    )
    return {
        "bucket": _ensure_bucket(s3, bucket, region),
        "table": table,
        "table_arn": ensure_metrics_table(dynamodb, table),
        "timestream_database": timestream_database,
        "timestream_database_arn": database_arn,
        "timestream_table": timestream_table,
        "timestream_table_arn": timestream_table_arn,
        **_ensure_queue(sqs, queue_name),
    }
