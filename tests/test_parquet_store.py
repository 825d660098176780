"""ParquetStore in a local folder and on S3 (moto's server, real HTTP): one Parquet file per
table, shard and month; and the publication of what it holds through MetricsSink (DynamoDB
read back with Query, Timestream from moto's backend, in process)."""

from __future__ import annotations

import datetime as dt
import time

import boto3
import pandas as pd
import pyarrow.parquet as pq
import pytest
from botocore_calls import RecordedCalls
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from perf_pipeline.assets.performance import superseded_rows
from perf_pipeline.resources.aws_setup import create_dev_resources
from perf_pipeline.resources.dynamodb import metric_keys, query_entity, scan_items
from perf_pipeline.resources.parquet_store import ParquetStore
from perf_pipeline.resources.partition_store import Slice
from perf_pipeline.resources.sinks import MetricsSink

BUCKET, PREFIX, TABLE, TS_DB, TS_TABLE = "perf", "assets", "metrics-t", "perf_db", "perf_ts"
METRIC_KEY = ["id", "calculation_date", "time_period"]
D = dt.date


@pytest.fixture
def s3_store(aws) -> ParquetStore:
    create_dev_resources(
        bucket=BUCKET,
        table=TABLE,
        timestream_database=TS_DB,
        timestream_table=TS_TABLE,
        queue_name="q",
        region="us-east-1",
        endpoint_url=aws,
    )
    return ParquetStore(
        root=f"s3://{BUCKET}/{PREFIX}", endpoint_url=aws, threads=3
    ).process_config_and_initialize()  # as the CLI initializes it


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> ParquetStore:
    if request.param == "s3":
        return request.getfixturevalue("s3_store")
    return ParquetStore(root=str(tmp_path / "tables"))


@pytest.fixture
def sink(aws, s3_store) -> MetricsSink:
    return MetricsSink(
        endpoint_url=aws,
        dynamodb_table=TABLE,
        timestream_database=TS_DB,
        timestream_table=TS_TABLE,
        threads=3,
    )


def keys(store: ParquetStore) -> list[str]:
    return sorted(store.blobs.list(""))


def publish(store: ParquetStore, sink: MetricsSink, frame: pd.DataFrame, where: Slice) -> None:
    """What performance_metrics and then dynamodb_metrics do with one chunk's rows."""
    gone = superseded_rows(store, frame, where)
    store.replace("performance_metrics", frame, where, keep_created_at=METRIC_KEY)
    sink.publish_metrics(frame, metric_keys(gone) if len(gone) else [])


def daily(days: list[str], shard: str = "s01", entity: str = "P1", value: float = 1.0):
    return pd.DataFrame(
        {
            "date": pd.to_datetime(days),
            "entity_type": "portfolio",
            "entity_id": entity,
            "portfolio_id": entity,
            "currency": "EUR",
            "market_value": value,
            "market_value_local": value,
            "daily_return": 0.0,
            "daily_return_local": 0.0,
            "fx_return": 0.0,
            "fx_rate": 1.0,
            "twr_index": 1.0,
            "shard": shard,
        }
    )


def metrics(days: list[str], created: str, entity: str = "P1", periods=("ITD", "MTD")):
    rows = [
        {
            "id": f"portfolio#{entity}",
            "calculation_date": pd.Timestamp(day),
            "entity_type": "portfolio",
            "entity_id": entity,
            "portfolio_id": entity,
            "client_id": "C1",
            "time_period": period,
            "twr": 0.01 * (i + 1),
            "twr_local": 0.01 * (i + 1),  # a single-currency book: no currency part
            "fx_effect": 0.0,
            "mwr": 0.02,
            "volatility": 0.1,
            "sharpe_ratio": 1.5,
            "max_drawdown": 0.05,
            "calculation_method": "daily",
            "request_id": created,
            "created_at": created,
            "updated_at": created,
            "shard": "s01",
        }
        for i, day in enumerate(days)
        for period in periods
    ]
    return pd.DataFrame(rows)


def test_round_trip_across_a_month_boundary_one_file_per_month(store):
    frame = pd.concat(
        [
            daily(["2024-01-30", "2024-01-31", "2024-02-01"]),
            daily(["2024-01-31"], shard="s02", entity="P2", value=2.0),
        ]
    )
    store.replace("daily_valuations", frame, Slice(("s01", "s02"), D(2024, 1, 30), D(2024, 2, 1)))
    assert keys(store) == [
        "daily_valuations/s01/2024-01.parquet",
        "daily_valuations/s01/2024-02.parquet",
        "daily_valuations/s02/2024-01.parquet",
    ]
    data = store.blobs.get("daily_valuations/s01/2024-01.parquet")
    assert data[:4] == b"PAR1"  # Parquet, read here by pyarrow alone
    january = pq.read_table(pa_buffer(data)).to_pandas()
    assert list(january["date"]) == list(pd.to_datetime(["2024-01-30", "2024-01-31"]))
    back = store.read("daily_valuations", ["s01", "s02"], D(2024, 1, 31), D(2024, 2, 1))
    assert list(back["date"]) == list(pd.to_datetime(["2024-01-31", "2024-01-31", "2024-02-01"]))
    assert sorted(back.loc[back["date"] == "2024-01-31", "market_value"]) == [1.0, 2.0]
    only = store.read("daily_valuations", ["s02"], columns=["entity_id", "date"])
    assert list(only.columns) == ["entity_id", "date"] and list(only["entity_id"]) == ["P2"]


def test_partial_month_replace_keeps_the_other_rows(store):
    days = ["2024-03-01", "2024-03-04", "2024-03-05", "2024-03-06"]
    store.replace("daily_valuations", daily(days), Slice(("s01",), D(2024, 3, 1), D(2024, 3, 6)))
    store.replace(
        "daily_valuations",
        daily(["2024-03-05"], value=9.0),
        Slice(("s01",), D(2024, 3, 5), D(2024, 3, 6)),
    )
    back = store.read("daily_valuations", ["s01"])
    assert list(back["date"].dt.strftime("%m-%d")) == ["03-01", "03-04", "03-05"]
    assert list(back["market_value"]) == [1.0, 1.0, 9.0]  # 03-06 dropped: in the slice


def test_a_file_left_empty_is_deleted_and_reads_are_empty(store):
    store.replace("daily_valuations", daily(["2024-03-01"]), Slice(("s01",), D(2024, 3, 1)))
    store.replace("daily_valuations", daily([]).iloc[:0], Slice(("s01",), D(2024, 3, 1)))
    assert keys(store) == []
    assert store.read("daily_valuations", ["s01"], columns=["date"]).empty


def test_rows_outside_the_slice_are_refused(store):
    with pytest.raises(ValueError, match="outside the slice"):
        store.replace(
            "daily_valuations", daily(["2024-03-08"]), Slice(("s01",), D(2024, 3, 1), D(2024, 3, 6))
        )


def test_reading_a_range_gets_only_its_months(s3_store):
    store = s3_store
    days = pd.bdate_range("2024-01-01", "2024-06-28").strftime("%Y-%m-%d").tolist()
    store.replace("daily_valuations", daily(days), Slice(("s01",), D(2024, 1, 1)))
    gets = RecordedCalls(store.blobs.client, "s3.GetObject")
    back = store.read("daily_valuations", ["s01"], D(2024, 3, 15), D(2024, 4, 2))
    assert sorted(p["Key"] for p in gets.params) == [
        "assets/daily_valuations/s01/2024-03.parquet",
        "assets/daily_valuations/s01/2024-04.parquet",
    ]
    assert back["date"].min() == pd.Timestamp("2024-03-15")
    assert back["date"].max() == pd.Timestamp("2024-04-02") and len(back) == 13


def test_whole_months_are_rewritten_without_reading_them(s3_store):
    store = s3_store
    days = pd.bdate_range("2024-01-01", "2024-02-29").strftime("%Y-%m-%d").tolist()
    store.replace("daily_valuations", daily(days), Slice(("s01",), D(2024, 1, 1)))
    gets = RecordedCalls(store.blobs.client, "s3.GetObject")
    store.replace(
        "daily_valuations",
        daily(days[-5:], value=3.0),
        Slice(("s01",), D(2024, 2, 1), D(2024, 2, 29)),
    )
    assert gets.params == []
    back = store.read("daily_valuations", ["s01"], D(2024, 2, 1))
    assert list(back["market_value"]) == [3.0] * 5


def test_metrics_keep_created_at_and_delete_superseded_items(s3_store, sink, aws):
    """Run 1 ends on Tue 2024-02-06; run 2 covers 02-07..02-09 and supersedes 02-06."""
    store = s3_store
    publish(
        store,
        sink,
        metrics(["2024-01-31", "2024-02-06"], created="T1"),
        Slice(("s01",), D(2024, 1, 1), D(2024, 2, 6)),
    )
    client = boto3.client("dynamodb", endpoint_url=aws)
    assert len(scan_items(client, TABLE)) == 4

    again = Slice(("s01",), D(2024, 2, 7), D(2024, 2, 9), extra_days=(D(2024, 2, 6),))
    publish(store, sink, metrics(["2024-02-09"], created="T2"), again)
    back = store.read("performance_metrics", ["s01"])
    assert sorted(back["calculation_date"].dt.strftime("%m-%d").unique()) == ["01-31", "02-09"]
    stored = {i["sk"] for i in scan_items(client, TABLE)}
    assert stored == {"2024-01-31#ITD", "2024-01-31#MTD", "2024-02-09#ITD", "2024-02-09#MTD"}

    # A rerun of run 2 keeps created_at in the store and in DynamoDB; updated_at moves there.
    before = query_entity(client, TABLE, "portfolio", "P1", date="2024-02-09", period="ITD")[0]
    publish(store, sink, metrics(["2024-02-09"], created="T3"), again)
    rows = store.read("performance_metrics", ["s01"], D(2024, 2, 9))
    assert set(rows["created_at"]) == {"T2"} and set(rows["request_id"]) == {"T3"}
    after = query_entity(client, TABLE, "portfolio", "P1", date="2024-02-09", period="ITD")[0]
    assert after["created_at"] == before["created_at"]
    assert after["updated_at"] > before["updated_at"]


def test_in_range_dates_no_longer_computed_leave_dynamodb(s3_store, sink, aws):
    """Run 1 ended on Wed 02-07; a rerun from Mon 02-05 (input changed) ends on Fri 02-09:
    02-07 is inside its range and not a calculation date any more."""
    publish(
        s3_store,
        sink,
        metrics(["2024-02-07"], created="T1"),
        Slice(("s01",), D(2024, 2, 1), D(2024, 2, 7)),
    )
    publish(
        s3_store,
        sink,
        metrics(["2024-02-09"], created="T2"),
        Slice(("s01",), D(2024, 2, 5), D(2024, 2, 9), extra_days=(D(2024, 2, 2),)),
    )
    client = boto3.client("dynamodb", endpoint_url=aws)
    assert {i["sk"] for i in scan_items(client, TABLE)} == {"2024-02-09#ITD", "2024-02-09#MTD"}


def test_timestream_gets_daily_and_metrics_records_with_a_later_version(sink):
    versions: list[int] = []
    sink._client("timestream").meta.events.register(
        "before-parameter-build.timestream-write.WriteRecords",
        lambda params, **_: versions.append(params["CommonAttributes"]["Version"]),
    )
    started = time.time_ns() // 1_000_000
    assert sink.publish_daily(daily(["2024-02-05", "2024-02-06"])) == {
        "timestream_daily_records": 2
    }
    time.sleep(0.01)
    counts = sink.publish_metrics(metrics(["2024-02-06"], created="T1"), [])
    assert counts["dynamodb_items"] == 2 and counts["timestream_metrics_records"] == 2
    backend = get_backend("timestream-write")[DEFAULT_ACCOUNT_ID]["us-east-1"]
    records = backend.databases[TS_DB].tables[TS_TABLE].records
    measures = [{m["Name"] for m in r["MeasureValues"]} for r in records]
    assert sum("market_value" in m for m in measures) == 2
    assert sum("twr" in m for m in measures) == 2
    assert len(versions) == 2 and started <= versions[0] < versions[1]
    assert versions[1] <= time.time_ns() // 1_000_000


def pa_buffer(data: bytes):
    import pyarrow as pa

    return pa.BufferReader(data)
