"""The inputs asset retries a read that can succeed on a second try, and nothing else: a file
S3 refuses for good fails the step once, naming the file."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from dagster import DagsterEventType, materialize

from perf_pipeline.assets import inputs as inputs_module
from perf_pipeline.assets.inputs import inputs
from perf_pipeline.resources.ingest_cache import IngestCache
from perf_pipeline.resources.input_store import InputStore, transient_read_error
from perf_pipeline.resources.parquet_store import ParquetStore
from perf_pipeline.resources.settings import CalculationSettings

BUCKET = "perf-retry"
TX = (
    b"transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,price,"
    b"amount,fee,currency\nT1,P1,A1,,2024-06-03,DEPOSIT,,,100,,USD\n"
)


@pytest.fixture
def s3(aws):
    client = boto3.client("s3", endpoint_url=aws)
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="in/transactions/2024-06.csv", Body=TX)
    return client


def run(aws: str, tmp_path) -> tuple[object, int]:
    """Materialize the inputs asset; (result, number of step attempts)."""
    result = materialize(
        [inputs],
        resources={
            "input_store": InputStore(root=f"s3://{BUCKET}/in"),
            "ingest_cache": IngestCache(root=str(tmp_path / "cache")),
            "partition_store": ParquetStore(root=str(tmp_path / "tables")),
            "calculation_settings": CalculationSettings(),
        },
        raise_on_error=False,
    )
    starts = [
        e
        for e in result.all_events
        if e.event_type in (DagsterEventType.STEP_START, DagsterEventType.STEP_RESTARTED)
    ]
    return result, len(starts)


def test_an_object_s3_refuses_for_good_fails_once_naming_the_file(s3, aws, tmp_path):
    # an archived (GLACIER) object: GetObject answers InvalidObjectState, every time
    s3.put_object(
        Bucket=BUCKET, Key="in/prices/2024.csv", Body=b"security_id\n", StorageClass="GLACIER"
    )
    result, attempts = run(aws, tmp_path)
    assert not result.success
    assert attempts == 1
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    message = failure.step_failure_data.error.cause.message
    assert f"s3://{BUCKET}/in/prices/2024.csv" in message and "InvalidObjectState" in message


def test_a_dropped_connection_is_retried_and_the_run_completes(s3, aws, tmp_path, monkeypatch):
    # a connection dropped before S3 answers is a fault moto's server cannot make: the first
    # read raises it here (botocore has already spent its own retries when it reaches us)
    monkeypatch.setattr(inputs_module, "READ_RETRY_DELAY_S", 0.05)
    original, calls = InputStore.read, []

    def flaky(self: InputStore, obj) -> bytes:
        calls.append(obj.path)
        if len(calls) == 1:
            raise EndpointConnectionError(endpoint_url=aws)
        return original(self, obj)

    monkeypatch.setattr(InputStore, "read", flaky)
    result, attempts = run(aws, tmp_path)
    assert result.success
    assert attempts == 2
    assert calls == ["transactions/2024-06.csv"] * 2
    assert result.output_for_node("inputs", "transactions")["transaction_id"].tolist() == ["T1"]


def _client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (_client_error("SlowDown", 503), True),
        (_client_error("InternalError", 500), True),
        (_client_error("NoSuchKey", 404), True),  # vanished after the listing: list again
        (_client_error("InvalidObjectState", 403), False),
        (_client_error("AccessDenied", 403), False),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (TimeoutError("read timed out"), True),
        (FileNotFoundError("gone"), True),
        (PermissionError("denied"), False),
        (IsADirectoryError("a folder"), False),
        (ValueError("a bug or a bad file"), False),
    ],
)
def test_which_read_failures_are_retried(error: BaseException, retried: bool):
    assert transient_read_error(error) is retried
