"""Timestream sink against moto's server (real HTTP).

moto stores the Records of each WriteRecords request as sent (it does not merge
CommonAttributes), so stored records are read from moto's backend in this process and the
CommonAttributes from the requests, captured with an event hook. Throttling and
RejectedRecordsException are injected with a 'before-send' hook (moto never produces them);
each such test says so.
"""

import math

import boto3
import numpy as np
import pandas as pd
import pytest
from botocore_calls import RecordedCalls
from fx_outputs import fx_daily, fx_metrics
from moto.backends import get_backend
from moto.core import DEFAULT_ACCOUNT_ID

from perf_pipeline.resources.aws_clients import TimestreamWriteResource
from perf_pipeline.resources.aws_setup import ensure_timestream_table
from perf_pipeline.resources.timestream import (
    DAILY_COLUMNS,
    METRICS_DOUBLES,
    RecordValidationError,
    TimestreamRejectedError,
    TimestreamSink,
    TimestreamWriteError,
    daily_records,
    metrics_records,
    validate_records,
    write_records,
)

DB, TABLE = "investment_performance", "performance_metrics"
VERSION = 1_719_900_000_000
PREFIX = "com.amazonaws.timestream.v20181101#"


def stored_records() -> list[dict]:
    backend = get_backend("timestream-write")[DEFAULT_ACCOUNT_ID]["us-east-1"]
    return backend.databases[DB].tables[TABLE].records


def metrics_frame(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "calculation_date": pd.bdate_range("2015-01-30", periods=n),
            "entity_type": "portfolio",
            "entity_id": [f"P{i % 7}" for i in range(n)],
            "calculation_method": "daily",
            "time_period": [["1M", "1Y", "ITD"][i % 3] for i in range(n)],
            "request_id": "run-42",
        }
    )
    for column in METRICS_DOUBLES:
        values = rng.normal(0, 0.1, n)
        values[rng.random(n) < 0.2] = np.nan
        frame[column] = values
    return frame


def ms(date: pd.Timestamp) -> str:
    return str(int(pd.Timestamp(date.date()).timestamp() * 1000))


@pytest.fixture
def ts(aws: str):
    """A one-attempt client on a fresh Timestream table in moto."""
    client = TimestreamWriteResource(
        region_name="us-east-1", endpoint_url=aws, max_attempts=1
    ).get_client()
    ensure_timestream_table(client, DB, TABLE)
    return client


def test_resource_client_never_leaves_the_emulator(aws: str, ts) -> None:
    urls: list[str] = []
    ts.meta.events.register(
        "before-send.timestream-write", lambda request, **_: urls.append(request.url)
    )
    ts.describe_table(DatabaseName=DB, TableName=TABLE)
    write_records(ts, DB, TABLE, metrics_records(metrics_frame(3)), VERSION)
    assert len(urls) == 2 and all(url.startswith(aws) for url in urls)
    assert len(stored_records()) == 3


def test_plain_client_with_only_aws_endpoint_url_goes_to_real_aws(aws: str) -> None:
    """Why the resources pass endpoint_url: with AWS_ENDPOINT_URL alone, boto3 discovers the
    endpoint (DescribeEndpoints on the emulator) and sends WriteRecords to the AWS host it
    was told. The hook answers that request locally, so nothing leaves the machine."""
    client = boto3.client("timestream-write", region_name="us-east-1")
    ensure_timestream_table(
        TimestreamWriteResource(region_name="us-east-1", endpoint_url=aws).get_client(), DB, TABLE
    )
    sent: list[tuple[str, str]] = []

    def record(request, **_):
        target = request.headers.get("X-Amz-Target", b"").decode()
        sent.append((target.split(".")[-1], request.url))
        if aws not in request.url:
            raise ConnectionRefusedError("test: refused a call to real AWS")

    client.meta.events.register("before-send.timestream-write", record)
    with pytest.raises(ConnectionRefusedError):
        client.write_records(
            DatabaseName=DB, TableName=TABLE, Records=metrics_records(metrics_frame(1))
        )
    assert sent[0] == ("DescribeEndpoints", f"{aws}/")
    assert sent[1][0] == "WriteRecords"
    assert sent[1][1].startswith("https://ingest.timestream.us-east-1.amazonaws.com")


def test_metrics_records_land_in_moto_in_batches_of_100(ts) -> None:
    frame = metrics_frame(250)
    frame.loc[5, [*METRICS_DOUBLES, "request_id"]] = [np.nan] * len(METRICS_DOUBLES) + [None]
    requests = RecordedCalls(ts, "timestream-write.WriteRecords")
    records = metrics_records(frame)
    assert records.skipped == 1 and len(records) == 249
    report = TimestreamSink(ts, DB, TABLE, threads=3).write_metrics(frame, VERSION)
    assert report.items == 249 and report.api_calls == 3
    assert sorted(len(p["Records"]) for p in requests.params) == [49, 100, 100]
    for params in requests.params:
        assert params["CommonAttributes"] == {
            "Version": VERSION,
            "MeasureName": "metrics",
            "MeasureValueType": "MULTI",
            "TimeUnit": "MILLISECONDS",
        }
    stored = {(r["Time"], tuple(d["Value"] for d in r["Dimensions"])): r for r in stored_records()}
    assert len(stored) == 249
    for index in (0, 1, 77, 248, 249):
        row = frame.iloc[index]
        key = (ms(row.calculation_date), ("portfolio", row.entity_id, "daily", row.time_period))
        record = stored[key]
        assert [d["Name"] for d in record["Dimensions"]] == [
            "entity_type",
            "entity_id",
            "calculation_method",
            "time_period",
        ]
        measures = {m["Name"]: m for m in record["MeasureValues"]}
        for column in METRICS_DOUBLES:
            if math.isnan(row[column]):
                assert column not in measures
            else:
                assert measures[column]["Type"] == "DOUBLE"
                assert float(measures[column]["Value"]) == row[column]
        assert measures["request_id"] == {
            "Name": "request_id",
            "Value": "run-42",
            "Type": "VARCHAR",
        }


def test_daily_records_shape() -> None:
    frame = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-06-27", "2024-06-28"]),
            "entity_type": ["portfolio", "security"],
            "entity_id": ["P1", "S1"],
            "portfolio_id": ["P1", "P1"],
            "market_value": [1000.5, 250.0],
            "daily_return": [np.nan, 0.01],
            "twr_index": [1.0, 1.01],
            "currency": "EUR",  # a single-currency portfolio: local = base, rate 1
            "market_value_local": [1000.5, 250.0],
            "daily_return_local": [np.nan, 0.01],
            "fx_return": [np.nan, 0.0],
            "fx_rate": 1.0,
        }
    )
    records = daily_records(frame)
    assert records.skipped == 0
    assert records[0] == {
        "Dimensions": [
            {"Name": "entity_type", "Value": "portfolio", "DimensionValueType": "VARCHAR"},
            {"Name": "entity_id", "Value": "P1", "DimensionValueType": "VARCHAR"},
        ],
        "MeasureName": "daily",
        "MeasureValueType": "MULTI",
        "MeasureValues": [
            {"Name": "market_value", "Value": "1000.5", "Type": "DOUBLE"},
            {"Name": "twr_index", "Value": "1.0", "Type": "DOUBLE"},
            {"Name": "market_value_local", "Value": "1000.5", "Type": "DOUBLE"},
            {"Name": "fx_rate", "Value": "1.0", "Type": "DOUBLE"},
            {"Name": "currency", "Value": "EUR", "Type": "VARCHAR"},
        ],
        "Time": "1719446400000",  # 2024-06-27T00:00:00Z
        "TimeUnit": "MILLISECONDS",
    }
    assert records[1]["Time"] == "1719532800000"
    assert [m["Name"] for m in records[1]["MeasureValues"]] == [
        "market_value",
        "daily_return",
        "twr_index",
        "market_value_local",
        "daily_return_local",
        "fx_return",
        "fx_rate",
        "currency",
    ]


def test_nat_is_null_like_none_and_nan() -> None:
    """NaT (pandas' or numpy's, in an object column) is left out like NaN: no "NaT" string
    sent as a VARCHAR, no float(NaT) TypeError on a DOUBLE."""
    frame = metrics_frame(3).astype({"request_id": object, "twr": object})
    frame["twr"] = [0.5, pd.NaT, np.datetime64("NaT")]
    frame.loc[1, "request_id"] = pd.NaT
    frame.loc[2, "request_id"] = np.datetime64("NaT")
    records = metrics_records(frame)
    assert len(records) == 3
    names = [[m["Name"] for m in r["MeasureValues"]] for r in records]
    assert "request_id" in names[0] and "twr" in names[0]
    for later in names[1:]:
        assert "request_id" not in later
        assert "twr" not in later


def test_rejected_records_raise_with_each_reason(ts, aws_error_response) -> None:
    """RejectedRecordsException injected (before-send) for the batch holding records 100..199."""
    frame = metrics_frame(150)
    records = metrics_records(frame)

    def reject(request, **_):
        if b'"Records"' in request.body and records[103]["Time"].encode() in request.body:
            return aws_error_response(
                request,
                419,
                f"{PREFIX}RejectedRecordsException",
                RejectedRecords=[
                    {
                        "RecordIndex": 3,
                        "Reason": "A record with a higher version exists",
                        "ExistingVersion": VERSION + 5,
                    },
                    {"RecordIndex": 10, "Reason": "Record timestamp is outside retention"},
                ],
            )
        return None

    ts.meta.events.register("before-send.timestream-write.WriteRecords", reject)
    with pytest.raises(TimestreamRejectedError, match="rejected 2 record") as caught:
        write_records(ts, DB, TABLE, records, VERSION)
    first, second = caught.value.rejected
    assert first.dimensions == {
        "entity_type": "portfolio",
        "entity_id": frame.entity_id[103],
        "calculation_method": "daily",
        "time_period": frame.time_period[103],
    }
    assert first.time_ms == int(ms(frame.calculation_date[103]))
    assert (first.reason, first.existing_version) == (
        "A record with a higher version exists",
        VERSION + 5,
    )
    assert second.time_ms == int(ms(frame.calculation_date[110]))
    assert second.existing_version is None and "retention" in second.reason
    assert caught.value.report.items == 148
    assert "higher version" in str(caught.value)


def test_throttling_is_retried_then_gives_up_at_the_deadline(ts, aws_error_response) -> None:
    """ThrottlingException injected (before-send): first on 2 calls, then on every call."""
    remaining = {"throttles": 2}

    def throttle(request, **_):
        if remaining["throttles"] > 0:
            remaining["throttles"] -= 1
            return aws_error_response(request, 400, f"{PREFIX}ThrottlingException")
        return None

    ts.meta.events.register("before-send.timestream-write.WriteRecords", throttle)
    records = metrics_records(metrics_frame(120))
    report = write_records(ts, DB, TABLE, records, VERSION, threads=1)
    assert report.items == 120 and report.api_calls == 4
    assert report.retried_items == 200  # one worker: batch 0 (100 records) throttled twice
    assert len(stored_records()) == 120

    remaining["throttles"] = 10**9
    with pytest.raises(
        TimestreamWriteError, match=r"2 of 2 WriteRecords batches .*\(120 records\)"
    ):
        write_records(ts, DB, TABLE, records, VERSION + 1, deadline_s=0.3)
    assert len(stored_records()) == 120


def test_validate_records_catches_what_moto_accepts() -> None:
    records = metrics_records(metrics_frame(101, seed=3).fillna(0.5))
    validate_records(records[:100])
    with pytest.raises(RecordValidationError, match="101 records in one request"):
        validate_records(records)
    bad = [dict(r) for r in records[:3]]
    bad[1]["MeasureValues"] = [{"Name": "twr", "Value": "nan", "Type": "DOUBLE"}]
    bad[2]["Dimensions"] = [{**bad[2]["Dimensions"][0], "Value": ""}, *bad[2]["Dimensions"][1:]]
    with pytest.raises(RecordValidationError) as caught:
        validate_records(bad)
    assert len(caught.value.problems) == 2
    assert caught.value.problems[0].startswith("record 1 {'entity_type': 'portfolio'")
    assert "'twr' = 'nan' is not a finite DOUBLE" in caught.value.problems[0]
    assert "dimension 'entity_type' has an empty value" in caught.value.problems[1]
    future = [{**records[0], "Time": str(2**62)}]
    with pytest.raises(RecordValidationError, match="outside"):
        validate_records(future)
    frame = metrics_frame(2)
    frame.loc[0, "twr"] = math.inf
    with pytest.raises(RecordValidationError, match="'inf' is not a finite"):
        write_records(None, DB, TABLE, metrics_records(frame), VERSION)


def _stored_measures() -> dict[tuple[str, str, str], dict[str, dict]]:
    """(measure name, entity_type, entity_id) -> measures by name, from moto's backend (the
    measure name went in CommonAttributes: a daily record has two dimensions, metrics four)."""
    return {
        (
            "daily" if len(r["Dimensions"]) == 2 else "metrics",
            r["Dimensions"][0]["Value"],
            r["Dimensions"][1]["Value"],
        ): {m["Name"]: m for m in r["MeasureValues"]}
        for r in stored_records()
    }


def test_fx_fields_reach_timestream_and_nulls_stay_out(ts) -> None:
    """daily records carry the local value and return, fx_return, fx_rate and the currency;
    metrics records twr_local and fx_effect; a null figure (the GBP cash has no rate) is
    left out, never sent as 0."""
    sink = TimestreamSink(ts, DB, TABLE)
    assert sink.write_daily(fx_daily(), VERSION).items == 4
    assert sink.write_metrics(fx_metrics(), VERSION).items == 4
    stored = _stored_measures()

    usd = stored[("daily", "cash", "A1:CASH.USD")]
    assert {name: m["Value"] for name, m in usd.items()} == {
        "market_value": "918.0",
        "daily_return": "0.02",
        "twr_index": "1.02",
        "market_value_local": "1000.0",
        "daily_return_local": "0.0",
        "fx_return": "0.02",
        "fx_rate": "0.918",
        "currency": "USD",
    }
    assert usd["currency"]["Type"] == "VARCHAR" and usd["fx_return"]["Type"] == "DOUBLE"
    security = stored[("daily", "security", "A1:S1")]
    local, fx = (
        float(security["daily_return_local"]["Value"]),
        float(security["fx_return"]["Value"]),
    )
    assert float(security["daily_return"]["Value"]) == pytest.approx(0.0302, abs=1e-15)
    assert (1 + local) * (1 + fx) == pytest.approx(1.0302, abs=1e-15)
    gbp = stored[("daily", "cash", "A1:CASH.GBP")]
    assert set(gbp) == {"market_value_local", "daily_return_local", "currency"}
    assert gbp["currency"]["Value"] == "GBP" and gbp["market_value_local"]["Value"] == "500.0"
    portfolio = stored[("daily", "portfolio", "P1")]
    assert "market_value_local" not in portfolio
    assert float(portfolio["fx_return"]["Value"]) == pytest.approx(0.02, abs=1e-15)
    assert portfolio["currency"]["Value"] == "EUR"

    p1 = stored[("metrics", "portfolio", "P1")]
    assert [p1[name]["Value"] for name in ("twr", "twr_local", "fx_effect")] == [
        "0.875",
        "0.25",
        "0.5",
    ]
    gbp_metrics = stored[("metrics", "cash", "A1:CASH.GBP")]
    assert gbp_metrics["twr_local"]["Value"] == "0.0"
    assert "fx_effect" not in gbp_metrics and "twr" not in gbp_metrics


def test_daily_columns_are_what_daily_records_reads() -> None:
    """DAILY_COLUMNS is the publication's read: a frame of exactly those columns makes the
    same records as the full frame, and a frame without one of them is refused."""
    frame = fx_daily()
    assert daily_records(frame[list(DAILY_COLUMNS)]) == daily_records(frame)
    assert {"fx_return", "currency", "market_value_local"} <= set(DAILY_COLUMNS)
    with pytest.raises(ValueError, match=r"lacks columns \['market_value'\]"):
        daily_records(frame.drop(columns="market_value"))


def test_calc_writes_every_column_the_daily_publication_reads() -> None:
    """The timestream_daily asset loads DAILY_COLUMNS from the stored daily_valuations: calc
    must produce them all."""
    from perf_pipeline.calc.valuation import VALUATION_COLUMNS

    assert set(DAILY_COLUMNS) <= set(VALUATION_COLUMNS)
