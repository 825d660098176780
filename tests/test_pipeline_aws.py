"""End to end on the aws target, against moto's server over a real socket.

The hand-made input (handmade.py) is uploaded to S3; the pipeline runs with PERF_TARGET=aws;
DynamoDB is read back with Query on the table and both GSIs, and Timestream's stored records
from moto's backend (the server runs in this process).
"""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import boto3
import pandas as pd
import pytest
from dagster import materialize
from handmade import AS_OF, p1_itd_expected, write_input
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from perf_pipeline.assets.inputs import inputs
from perf_pipeline.assets.performance import performance_metrics
from perf_pipeline.assets.valuation import valuations
from perf_pipeline.resources.aws_setup import create_dev_resources
from perf_pipeline.resources.deployments import aws_resources
from perf_pipeline.resources.dynamodb import query_client, query_entity, query_portfolio

BUCKET, TABLE, TS_DB, TS_TABLE = "perf-input", "performance-metrics", "perf_db", "perf_ts"
ENTITIES = {"P1", "A1", "A2", "A1:S1"}
PERIODS = {"ITD", "MTD", "QTD", "YTD"}  # born 2024-01-02: no trailing period yet


@pytest.fixture
def aws_input(aws, tmp_path, monkeypatch):
    """The hand-made input on S3 and every AWS resource the pipeline needs, in moto."""
    create_dev_resources(bucket=BUCKET, table=TABLE, timestream_database=TS_DB,
                         timestream_table=TS_TABLE, queue_name="perf-requests",
                         region="us-east-1", endpoint_url=aws)
    root = write_input(tmp_path / "input")
    s3 = boto3.client("s3", endpoint_url=aws)
    for path in root.rglob("*.csv"):
        s3.upload_file(str(path), BUCKET, f"in/{path.relative_to(root).as_posix()}")
    for name, value in {"PERF_TARGET": "aws", "PERF_INPUT": f"s3://{BUCKET}/in",
                        "PERF_DYNAMODB_TABLE": TABLE, "PERF_TIMESTREAM_DATABASE": TS_DB,
                        "PERF_TIMESTREAM_TABLE": TS_TABLE}.items():
        monkeypatch.setenv(name, value)
    return aws


def run_aws() -> None:
    result = materialize(
        [inputs, valuations, performance_metrics], resources=aws_resources(),
        run_config={"resources": {"run_request": {"config": {"as_of": AS_OF}}}},
    )
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())


def dynamodb(endpoint: str):
    return boto3.client("dynamodb", endpoint_url=endpoint)


def timestream_records(measure: str) -> list[dict]:
    """Stored records carrying `measure` (moto keeps each request's Records only, without the
    CommonAttributes where MeasureName travels, so records are told apart by their measures)."""
    backend = get_backend("timestream-write")[DEFAULT_ACCOUNT_ID]["us-east-1"]
    records = backend.databases[TS_DB].tables[TS_TABLE].records
    return [r for r in records if measure in {m["Name"] for m in r["MeasureValues"]}]


def dimensions(record: dict) -> dict[str, str]:
    return {d["Name"]: d["Value"] for d in record["Dimensions"]}


def test_metrics_reach_dynamodb_with_hand_computed_values(aws_input):
    run_aws()
    client = dynamodb(aws_input)
    items = query_entity(client, TABLE, "portfolio", "P1", date="2024-01-08", period="ITD")
    assert len(items) == 1
    item = items[0]
    assert item["id"] == "portfolio#P1" and item["sk"] == "2024-01-08#ITD"
    assert item["client_id"] == "C1" and item["benchmark_id"] == "B1"
    assert item["start_date"] == "2024-01-01" and item["partial_period"] is False
    for name, value in p1_itd_expected().items():
        assert isinstance(item[name], Decimal), name
        assert float(item[name]) == pytest.approx(value, rel=1e-8), name
    assert "twr_annualized" not in item and "mwr_annualized" not in item  # null: left out
    raw = client.get_item(TableName=TABLE, Key={"id": {"S": "portfolio#P1"},
                                                "sk": {"S": "2024-01-08#ITD"}})["Item"]
    assert set(raw["twr"]) == {"N"} and set(raw["partial_period"]) == {"BOOL"}


def test_indexes_hold_every_entity_and_period(aws_input):
    run_aws()
    client = dynamodb(aws_input)
    by_portfolio = query_portfolio(client, TABLE, "P1", calculation_date="2024-01-08")
    keys = {(item["entity_id"], item["time_period"]) for item in by_portfolio}
    assert keys == {(entity, period) for entity in ENTITIES for period in PERIODS}
    by_client = query_client(client, TABLE, "C1", calculation_date="2024-01-08")
    assert len(by_client) == len(by_portfolio) == 16


def test_daily_and_metrics_series_reach_timestream(aws_input):
    run_aws()
    daily, metrics = timestream_records("market_value"), timestream_records("twr")
    # 5 dates for P1, A1 and A1:S1, 4 for A2 (inception 01-03); 16 metric rows.
    assert len(daily) == 19 and len(metrics) == 16
    last_day = str(int(pd.Timestamp("2024-01-08").timestamp() * 1000))
    p1_last = next(r for r in daily
                   if dimensions(r)["entity_id"] == "P1" and r["Time"] == last_day)
    values = {m["Name"]: m["Value"] for m in p1_last["MeasureValues"]}
    assert float(values["market_value"]) == pytest.approx(13305)
    itd = next(r for r in metrics
               if dimensions(r)["entity_id"] == "P1" and dimensions(r)["time_period"] == "ITD")
    values = {m["Name"]: m["Value"] for m in itd["MeasureValues"]}
    assert float(values["twr"]) == pytest.approx(p1_itd_expected()["twr"], rel=1e-12)
    assert values["request_id"]


def test_rerun_overwrites_keeps_created_at_and_moves_updated_at(aws_input):
    run_aws()
    client = dynamodb(aws_input)
    first = {i["sk"] + i["id"]: i for i in query_portfolio(client, TABLE, "P1")}
    run_aws()
    second = {i["sk"] + i["id"]: i for i in query_portfolio(client, TABLE, "P1")}
    assert first.keys() == second.keys() and len(second) == 16
    for key, item in second.items():
        assert item["created_at"] == first[key]["created_at"]
        assert item["updated_at"] > first[key]["updated_at"]
        assert item["request_id"] != first[key]["request_id"]  # a new run id


def test_intermediate_tables_are_on_s3(aws_input):
    run_aws()
    listed = boto3.client("s3", endpoint_url=aws_input).list_objects_v2(
        Bucket=BUCKET, Prefix="_perf_pipeline/assets/")
    stored = {Path(obj["Key"]).name for obj in listed.get("Contents", [])}
    assert {"transactions", "prices", "daily_valuations", "positions"} <= stored


def test_cli_run_with_target_aws(aws_input):
    env = {**os.environ}
    done = subprocess.run(
        [sys.executable, "-m", "perf_pipeline.cli", "run", "--target", "aws", "--as-of", AS_OF],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{p1_itd_expected()['twr']:+.2%}" in done.stdout
    items = query_entity(dynamodb(aws_input), TABLE, "portfolio", "P1", period="ITD")
    assert len(items) == 1


def test_aws_target_needs_an_s3_input(monkeypatch):
    monkeypatch.setenv("PERF_INPUT", "data/input")
    monkeypatch.delenv("PERF_ASSET_STORE", raising=False)
    with pytest.raises(ValueError, match="s3://"):
        aws_resources()


def test_aws_init_creates_what_the_pipeline_needs(aws, monkeypatch):
    monkeypatch.setenv("PERF_INPUT", "s3://init-bucket/in")
    monkeypatch.setenv("PERF_DYNAMODB_TABLE", "init-table")
    done = subprocess.run([sys.executable, "-m", "perf_pipeline.cli", "aws-init"],
                          capture_output=True, text=True, timeout=120, env={**os.environ})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "init-bucket" in done.stdout and "init-table" in done.stdout
    tables = boto3.client("dynamodb", endpoint_url=aws).describe_table(TableName="init-table")
    indexes = {i["IndexName"] for i in tables["Table"]["GlobalSecondaryIndexes"]}
    assert indexes == {"PortfolioIndex", "ClientIndex"}
    boto3.client("s3", endpoint_url=aws).head_bucket(Bucket="init-bucket")
    queues = boto3.client("sqs", endpoint_url=aws).list_queues()["QueueUrls"]
    assert any(url.endswith("/perf-pipeline-requests-dlq") for url in queues)


def test_aws_init_without_a_bucket_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("PERF_INPUT", "data/input")
    done = subprocess.run([sys.executable, "-m", "perf_pipeline.cli", "aws-init"],
                          capture_output=True, text=True, timeout=120, env={**os.environ})
    assert done.returncode == 2


def test_the_input_store_builds_one_s3_client_for_all_its_calls(aws_input, monkeypatch):
    from dagster_aws.s3 import S3Resource

    from perf_pipeline.assets.inputs import read_input_files
    from perf_pipeline.resources.input_store import InputStore

    built = []
    original = S3Resource.get_client

    def counting(self):
        built.append(1)
        return original(self)

    monkeypatch.setattr(S3Resource, "get_client", counting)  # still talks to moto's server
    files = read_input_files(InputStore(root=f"s3://{BUCKET}/in"))
    assert len(files) == 4 and len(built) == 1
