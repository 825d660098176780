"""End to end on the aws target, against moto's server over a real socket.

The hand-made input (handmade.py) is uploaded to S3; the pipeline runs with PERF_TARGET=aws
the way `perf-pipeline run` does (the inputs run, then the planned partition ranges, in this
process); DynamoDB is read back with Query on the table and both GSIs, and Timestream's
stored records from moto's backend (the server runs in this process).
"""

import math
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import boto3
import pandas as pd
import pytest
from handmade import AS_OF, P1_IN, P1_MV, PRICES, hand_returns, p1_itd_expected, write_input
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from perf_pipeline.cli import main
from perf_pipeline.increments import shard_of
from perf_pipeline.resources.aws_setup import create_dev_resources
from perf_pipeline.resources.deployments import aws_resources
from perf_pipeline.resources.dynamodb import query_client, query_entity, query_portfolio
from perf_pipeline.resources.parquet_store import ParquetStore

BUCKET, TABLE, TS_DB, TS_TABLE = "perf-input", "performance-metrics", "perf_db", "perf_ts"
ENTITIES = {"P1", "A1", "A2", "A1:S1", "A1:CASH.USD", "A2:CASH.USD"}
PERIODS = {"ITD", "MTD", "QTD", "YTD"}  # born 2024-01-02: no trailing period yet


@pytest.fixture
def aws_input(aws, tmp_path, monkeypatch):
    """The hand-made input on S3 and every AWS resource the pipeline needs, in moto."""
    create_dev_resources(
        bucket=BUCKET,
        table=TABLE,
        timestream_database=TS_DB,
        timestream_table=TS_TABLE,
        queue_name="perf-requests",
        region="us-east-1",
        endpoint_url=aws,
    )
    upload(aws, write_input(tmp_path / "input"))
    for name, value in {
        "PERF_TARGET": "aws",
        "PERF_INPUT": f"s3://{BUCKET}/in",
        "PERF_DYNAMODB_TABLE": TABLE,
        "PERF_TIMESTREAM_DATABASE": TS_DB,
        "PERF_TIMESTREAM_TABLE": TS_TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PERF_ASSET_STORE", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # an ephemeral instance per run
    return aws


def upload(endpoint: str, root: Path) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    for path in root.rglob("*.csv"):
        s3.upload_file(str(path), BUCKET, f"in/{path.relative_to(root).as_posix()}")


def run_aws(capsys, as_of: str = AS_OF) -> str:
    """`perf-pipeline run --as-of` in this process (it fails on a failed step or blocking
    check); its summary."""
    assert main(["run", "--as-of", as_of]) == 0
    return capsys.readouterr().out


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


def test_metrics_reach_dynamodb_and_its_indexes_with_hand_computed_values(aws_input, capsys):
    run_aws(capsys)
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
    raw = client.get_item(
        TableName=TABLE, Key={"id": {"S": "portfolio#P1"}, "sk": {"S": "2024-01-08#ITD"}}
    )["Item"]
    assert set(raw["twr"]) == {"N"} and set(raw["partial_period"]) == {"BOOL"}
    # The indexes hold every entity and period.
    by_portfolio = query_portfolio(client, TABLE, "P1", calculation_date="2024-01-08")
    keys = {(item["entity_id"], item["time_period"]) for item in by_portfolio}
    assert keys == {(entity, period) for entity in ENTITIES for period in PERIODS}
    by_client = query_client(client, TABLE, "C1", calculation_date="2024-01-08")
    assert len(by_client) == len(by_portfolio) == 24


def test_series_reach_timestream_and_tables_are_on_s3(aws_input, capsys):
    run_aws(capsys)
    daily, metrics = timestream_records("market_value"), timestream_records("twr")
    # 5 dates for P1, A1 and A1:S1, 4 for A2 (inception 01-03); 16 metric rows.
    assert len(daily) == 19 + 9 and len(metrics) == 16 + 8  # + the cash positions of A1, A2
    last_day = str(int(pd.Timestamp("2024-01-08").timestamp() * 1000))
    p1_last = next(r for r in daily if dimensions(r)["entity_id"] == "P1" and r["Time"] == last_day)
    values = {m["Name"]: m["Value"] for m in p1_last["MeasureValues"]}
    assert float(values["market_value"]) == pytest.approx(13305)
    itd = next(
        r
        for r in metrics
        if dimensions(r)["entity_id"] == "P1" and dimensions(r)["time_period"] == "ITD"
    )
    values = {m["Name"]: m["Value"] for m in itd["MeasureValues"]}
    assert float(values["twr"]) == pytest.approx(p1_itd_expected()["twr"], rel=1e-12)
    assert values["request_id"]
    # The run's tables are on S3: the input tables whole, the partitioned ones per shard
    # and month.
    pages = boto3.client("s3", endpoint_url=aws_input).get_paginator("list_objects_v2")
    stored = {
        obj["Key"][len("_perf_pipeline/assets/") :]
        for page in pages.paginate(Bucket=BUCKET, Prefix="_perf_pipeline/assets/")
        for obj in page.get("Contents", [])
    }
    assert {"transactions.parquet", "prices.parquet", "positions.parquet"} <= stored
    (shard,) = shard_of(["P1"], ParquetStore(root=".").shards)
    assert {
        f"{table}/{shard}/2024-01.parquet"
        for table in ("daily_valuations", "performance_metrics", "computed_from")
    } <= stored


def test_rerun_after_a_price_change_keeps_created_at_and_moves_updated_at(
    aws_input, tmp_path, capsys
):
    run_aws(capsys)
    client = dynamodb(aws_input)
    first = {i["sk"] + i["id"]: i for i in query_portfolio(client, TABLE, "P1")}
    assert "then 0 partition run(s)" in run_aws(capsys)  # nothing changed: nothing to do
    assert {i["sk"] + i["id"]: i for i in query_portfolio(client, TABLE, "P1")} == first
    # S1's Saturday close (it counts on Monday 01-08) moves from 106 to 107: 01-08 is stale.
    root = write_input(tmp_path / "changed")
    (root / "prices" / "2024" / "prices.csv").write_text(
        PRICES.replace("S1,2024-01-06,106", "S1,2024-01-06,107")
    )
    upload(aws_input, root)
    assert "recomputed" in run_aws(capsys)
    second = {i["sk"] + i["id"]: i for i in query_portfolio(client, TABLE, "P1")}
    assert first.keys() == second.keys() and len(second) == 24
    for key, item in second.items():
        assert item["created_at"] == first[key]["created_at"]
        assert item["updated_at"] > first[key]["updated_at"]
        assert item["request_id"] != first[key]["request_id"]  # a new run id
    # By hand: S1 40 x 107 lifts A1 and P1 by 40 on 01-08, so P1 = 11,365 + 1,980.
    returns = hand_returns([*P1_MV[:-1], 11365 + 1980], P1_IN, [0] * 5)
    assert float(second["2024-01-08#ITDportfolio#P1"]["twr"]) == pytest.approx(
        math.prod(1 + r for r in returns) - 1, rel=1e-12
    )


def test_a_later_as_of_deletes_the_superseded_latest_date(aws_input, capsys):
    """Run to Fri 01-05 (not a month end), then to Mon 01-08: 01-05 stops being a calculation
    date and leaves DynamoDB; Timestream keeps its records (it cannot delete)."""
    run_aws(capsys, "2024-01-05")
    client = dynamodb(aws_input)
    items = query_entity(client, TABLE, "portfolio", "P1", period="ITD")
    assert [i["sk"] for i in items] == ["2024-01-05#ITD"]
    run_aws(capsys)
    items = query_entity(client, TABLE, "portfolio", "P1", period="ITD")
    assert [i["sk"] for i in items] == ["2024-01-08#ITD"]
    assert len(query_portfolio(client, TABLE, "P1")) == 24  # 6 entities x 4 periods
    days = {r["Time"] for r in timestream_records("twr")}
    assert days == {
        str(int(pd.Timestamp(d).timestamp() * 1000)) for d in ("2024-01-05", "2024-01-08")
    }


def test_cli_run_with_target_aws(aws_input):
    env = {**os.environ}
    done = subprocess.run(
        [sys.executable, "-m", "perf_pipeline.cli", "run", "--target", "aws", "--as-of", AS_OF],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
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
    done = subprocess.run(
        [sys.executable, "-m", "perf_pipeline.cli", "aws-init"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
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
    done = subprocess.run(
        [sys.executable, "-m", "perf_pipeline.cli", "aws-init"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert done.returncode == 2


def test_the_input_store_builds_one_s3_client_for_all_its_calls(aws_input, monkeypatch):
    from dagster_aws.s3 import S3Resource

    from perf_pipeline.ingest import KINDS
    from perf_pipeline.resources.input_store import InputStore

    built = []
    original = S3Resource.get_client

    def counting(self):
        built.append(1)
        return original(self)

    monkeypatch.setattr(S3Resource, "get_client", counting)  # still talks to moto's server
    store = InputStore(root=f"s3://{BUCKET}/in")
    files = [store.read(obj) for kind in KINDS for obj in store.list_files(kind)]
    assert len(files) == 4 and all(files) and len(built) == 1


def test_a_failed_publication_keeps_the_metrics_and_a_retry_of_the_sink_alone_completes(
    aws_input, tmp_path, monkeypatch, capsys
):
    """DynamoDB refuses (its table is missing): the sink step fails alone, the metrics stay
    materialized and certified; running the sink step alone over the failed run's scope (what
    the UI's "Re-execute from failure" runs) publishes them and computes nothing again."""
    from dagster import AssetKey, DagsterInstance

    from perf_pipeline.definitions import build_definitions

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PERF_DYNAMODB_TABLE", "created-later")
    assert main(["run", "--as-of", AS_OF]) == 1
    err = capsys.readouterr().err
    assert "dynamodb_metrics" in err and "Re-execute from failure" in err
    s3 = boto3.client("s3", endpoint_url=aws_input)
    stored = s3.list_objects_v2(Bucket=BUCKET, Prefix="_perf_pipeline/assets/performance_metrics/")
    written = {obj["Key"]: obj["LastModified"] for obj in stored["Contents"]}
    assert written  # the metrics were stored before the sink ran

    create_dev_resources(
        bucket=BUCKET,
        table="created-later",
        timestream_database=TS_DB,
        timestream_table=TS_TABLE,
        queue_name="perf-requests-2",
        region="us-east-1",
        endpoint_url=aws_input,
    )
    with DagsterInstance.get() as instance:
        failed = next(r for r in instance.get_runs() if r.job_name == "performance_job")
        scope = {k: v for k, v in failed.tags.items() if k.startswith(("dagster/asset_", "perf/"))}
        job = build_definitions("aws").resolve_job_def("performance_job")
        retry = job.execute_in_process(
            instance=instance, tags=scope, asset_selection=[AssetKey("dynamodb_metrics")]
        )
        assert retry.success
        steps = {e.step_key for e in retry.all_events if e.is_step_success}
    assert steps == {"dynamodb_metrics"}  # nothing recomputed, the sink alone
    items = query_entity(dynamodb(aws_input), "created-later", "portfolio", "P1", period="ITD")
    assert float(items[0]["twr"]) == pytest.approx(p1_itd_expected()["twr"], rel=1e-8)
    again = s3.list_objects_v2(Bucket=BUCKET, Prefix="_perf_pipeline/assets/performance_metrics/")
    assert {obj["Key"]: obj["LastModified"] for obj in again["Contents"]} == written
    assert "then 0 partition run(s)" in run_aws_output(capsys)  # and certified: nothing stale


def run_aws_output(capsys) -> str:
    capsys.readouterr()
    main(["run", "--as-of", AS_OF])
    return capsys.readouterr().out
