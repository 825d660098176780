"""DynamoDB sink against moto's server (real HTTP). Faults moto cannot make (throttling,
UnprocessedItems, a dropped connection) are injected with botocore event hooks on the client;
each such test says so."""

from __future__ import annotations

import math
import threading
import time
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError
from fx_outputs import fx_metrics

from perf_pipeline.resources.aws_clients import DynamoDBResource
from perf_pipeline.resources.aws_setup import ensure_metrics_table
from perf_pipeline.resources.dynamodb import (
    NUMBER_COLUMNS,
    DynamoDBTableNotFoundError,
    DynamoDBWriteError,
    NumberOutOfRangeError,
    delete_metrics,
    items_to_frame,
    metric_keys,
    metrics_to_items,
    query_client,
    query_entity,
    query_portfolio,
    scan_items,
    write_metrics,
)

TABLE = "performance-metrics"
PERIODS = ["MTD", "QTD", "YTD", "1M", "3M", "6M", "1Y", "3Y", "5Y", "10Y", "ITD"]
NOW_1 = "2024-07-01T06:00:00.000Z"
NOW_2 = "2024-07-02T06:00:00.000Z"


def metrics_frame(n_portfolios: int, n_dates: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic performance_metrics: n_portfolios x n_dates x 11 periods, some nulls."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-31", periods=n_dates, freq="BME")
    rows = []
    for p in range(n_portfolios):
        for date in dates:
            for period in PERIODS:
                row = {
                    "calculation_date": date,
                    "entity_type": "portfolio",
                    "entity_id": f"P{p:04d}",
                    "portfolio_id": f"P{p:04d}",
                    "client_id": f"C{p % 3}",
                    "time_period": period,
                    "start_date": date - pd.Timedelta(days=30),
                    "end_date": date,
                    "partial_period": bool(rng.integers(0, 2)),
                    "benchmark_id": None if p % 2 else "SPX",
                    "calculation_method": "daily",
                    "request_id": "run-1",
                }
                for column in NUMBER_COLUMNS:
                    row[column] = float(rng.normal(0, 0.2)) if rng.random() > 0.15 else math.nan
                rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture
def ddb(aws: str):
    """A client (one attempt per call) on a fresh metrics table in moto."""
    client = DynamoDBResource(
        region_name="us-east-1", endpoint_url=aws, max_attempts=1
    ).get_client()
    ensure_metrics_table(client, TABLE)
    return client


def count_items(client) -> int:
    pages = client.get_paginator("scan").paginate(TableName=TABLE, Select="COUNT")
    return sum(page["Count"] for page in pages)


def assert_item_matches_row(item: dict, row: pd.Series) -> None:
    """item: low-level (typed) attributes read from the server."""
    assert item["id"] == {"S": f"portfolio#{row.entity_id}"}
    assert item["sk"] == {"S": f"{row.calculation_date:%Y-%m-%d}#{row.time_period}"}
    assert item["calculation_date"] == {"S": row.calculation_date.strftime("%Y-%m-%d")}
    assert item["start_date"] == {"S": row.start_date.strftime("%Y-%m-%d")}
    assert item["partial_period"] == {"BOOL": bool(row.partial_period)}
    for column in ("portfolio_id", "client_id", "time_period", "calculation_method"):
        assert item[column] == {"S": row[column]}
    if pd.isna(row.benchmark_id):
        assert "benchmark_id" not in item
    else:
        assert item["benchmark_id"] == {"S": row.benchmark_id}
    for column in NUMBER_COLUMNS:
        if math.isnan(row[column]):
            assert column not in item, column
        else:
            assert set(item[column]) == {"N"}, column
            assert float(item[column]["N"]) == row[column], column


def test_items_typed_and_equal_to_the_frame(ddb) -> None:
    frame = metrics_frame(2, 2)
    report = write_metrics(ddb, TABLE, frame, NOW_1)
    assert report.items == len(frame) == 44
    assert count_items(ddb) == 44
    for index in (0, 7, 21, 43):
        row = frame.iloc[index]
        key = {
            "id": {"S": f"portfolio#{row.entity_id}"},
            "sk": {"S": f"{row.calculation_date:%Y-%m-%d}#{row.time_period}"},
        }
        item = ddb.get_item(TableName=TABLE, Key=key)["Item"]
        assert_item_matches_row(item, row)
        assert item["created_at"] == item["updated_at"] == {"S": NOW_1}


def test_metrics_to_items_numbers_and_errors() -> None:
    frame = metrics_frame(1, 1).iloc[:2].copy()
    frame["twr"] = [np.float64(0.1), 1e-140]
    frame["mwr"] = [np.int64(3), math.nan]
    with pytest.raises(NumberOutOfRangeError, match=r"row 1, column 'twr'"):
        metrics_to_items(frame, NOW_1)
    frame["twr"] = [np.float64(0.1), math.inf]
    with pytest.raises(NumberOutOfRangeError, match="not finite"):
        metrics_to_items(frame, NOW_1)
    frame["twr"] = [np.float64(0.1), -0.0]
    items = metrics_to_items(frame, NOW_1)
    assert items[0]["twr"] == Decimal("0.1") and items[1]["twr"] == 0
    assert items[0]["mwr"] == Decimal(3) and "mwr" not in items[1]
    assert all(not isinstance(v, float) for item in items for v in item.values())
    frame.loc[1, "time_period"] = frame.loc[0, "time_period"]
    with pytest.raises(ValueError, match="duplicate"):
        write_metrics(None, TABLE, frame, NOW_1)


class CallCounter:
    """Counts calls of one operation (after-call hook), thread-safe."""

    def __init__(self, client, operation: str):
        self.calls = 0
        self._lock = threading.Lock()
        client.meta.events.register(f"after-call.dynamodb.{operation}", self)

    def __call__(self, **_: object) -> None:
        with self._lock:
            self.calls += 1


def test_queries_paginate_on_table_and_both_indexes(ddb) -> None:
    frame = metrics_frame(3, 4)  # C0 has P0000 only, 44 items
    write_metrics(ddb, TABLE, frame, NOW_1)
    queries = CallCounter(ddb, "Query")

    entity = query_entity(ddb, TABLE, "portfolio", "P0001", page_size=5)
    assert len(entity) == 44 and queries.calls == 9  # 8 full pages + 1 of 4 (+ none empty)
    assert {i["entity_id"] for i in entity} == {"P0001"}
    assert [i["sk"] for i in entity] == sorted(i["sk"] for i in entity)

    day = frame.calculation_date.iloc[-1].date()
    assert {i["time_period"] for i in query_entity(ddb, TABLE, "portfolio", "P0001", day)} == set(
        PERIODS
    )
    one = query_entity(ddb, TABLE, "portfolio", "P0001", day.isoformat(), "1Y")
    assert [i["sk"] for i in one] == [f"{day}#1Y"]
    yearly = query_entity(ddb, TABLE, "portfolio", "P0001", period="1Y", page_size=3)
    assert len(yearly) == 4 and {i["time_period"] for i in yearly} == {"1Y"}

    queries.calls = 0
    portfolio = query_portfolio(ddb, TABLE, "P0002", page_size=10)
    assert len(portfolio) == 44 and queries.calls == 5
    on_day = query_portfolio(ddb, TABLE, "P0002", calculation_date=day)
    assert len(on_day) == 11 and {i["calculation_date"] for i in on_day} == {day.isoformat()}

    client_items = query_client(ddb, TABLE, "C0", page_size=7)
    assert len(client_items) == 44 and {i["portfolio_id"] for i in client_items} == {"P0000"}
    assert len(query_client(ddb, TABLE, "C1", calculation_date=day)) == 11


def test_rewrite_keeps_created_at_and_moves_updated_at(ddb) -> None:
    frame = metrics_frame(2, 2)
    write_metrics(ddb, TABLE, frame.iloc[:30], NOW_1)
    changed = frame.copy()
    changed["twr"] = 0.5
    report = write_metrics(ddb, TABLE, changed, NOW_2)
    assert report.items == 44 and count_items(ddb) == 44
    items = {(i["id"], i["sk"]): i for i in scan_items(ddb, TABLE)}
    created = sorted((i["created_at"], i["updated_at"], float(i["twr"])) for i in items.values())
    assert created.count((NOW_1, NOW_2, 0.5)) == 30
    assert created.count((NOW_2, NOW_2, 0.5)) == 14


def test_items_to_frame_round_trip(ddb) -> None:
    frame = metrics_frame(2, 2)
    write_metrics(ddb, TABLE, frame, NOW_1)
    back = items_to_frame(scan_items(ddb, TABLE, page_size=9))
    back = back.sort_values(["entity_id", "calculation_date", "time_period"], ignore_index=True)
    expected = frame.sort_values(
        ["entity_id", "calculation_date", "time_period"], ignore_index=True
    )
    for column in NUMBER_COLUMNS:
        np.testing.assert_array_equal(back[column].to_numpy(), expected[column].to_numpy())
    assert back["calculation_date"].tolist() == expected["calculation_date"].tolist()
    assert back["partial_period"].tolist() == expected["partial_period"].tolist()
    expected_benchmarks = [None if pd.isna(b) else b for b in expected["benchmark_id"]]
    assert back["benchmark_id"].tolist() == expected_benchmarks
    assert back["id"].tolist() == ("portfolio#" + expected["entity_id"]).tolist()
    assert set(back["created_at"]) == {NOW_1}


def test_ten_thousand_items_with_threads(ddb, record_property) -> None:
    frame = metrics_frame(35, 26)  # 10,010 rows
    started = time.perf_counter()
    report = write_metrics(ddb, TABLE, frame, NOW_1, threads=8)
    elapsed = time.perf_counter() - started
    assert report.items == 10_010 and count_items(ddb) == 10_010
    assert report.api_calls == 101 + 401  # ceil(10,010 / 100) gets + ceil(10,010 / 25) writes
    assert report.retried_items == 0
    record_property("items_per_second", round(report.items / elapsed))
    record_property("api_calls_per_item", report.api_calls_per_item)
    print(
        f"\n10,010 items, 8 threads, moto server: {report.items / elapsed:.0f} items/s, "
        f"{report.api_calls_per_item:.3f} API calls/item, {elapsed:.1f} s"
    )


# --- faults: injected with botocore event hooks (moto never throttles, never returns
# UnprocessedItems and never drops a connection) ----------------------------------------------


THROTTLED = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"


def _put_key(put: dict) -> tuple[str, str]:
    item = put["PutRequest"]["Item"]
    return item["id"]["S"], item["sk"]["S"]


class Fault:
    """Event hooks on one client that spoil BatchWriteItem calls.

    kind "throttle" / "reset": the first ``times`` calls fail (HTTP 400 throughput exceeded /
    connection closed) without reaching the server. kind "unprocessed": in the first ``times``
    calls only the first ``keep`` puts reach the server, the rest come back as
    UnprocessedItems. ``stuck``: puts of these (id, sk) keys never reach the server and always
    come back as UnprocessedItems (a call made only of them is answered without the server,
    as DynamoDB rejects an empty batch).
    """

    def __init__(
        self,
        client,
        kind: str,
        aws_error_response,
        times: int = 0,
        keep: int = 20,
        stuck: frozenset[tuple[str, str]] = frozenset(),
    ):
        self.kind, self.left, self.keep, self.stuck = kind, times, keep, stuck
        self.error_response = aws_error_response
        self.injected = 0
        self._lock = threading.Lock()
        events = client.meta.events
        events.register("before-parameter-build.dynamodb.BatchWriteItem", self.hold_back)
        events.register("before-call.dynamodb.BatchWriteItem", self.answer_if_empty)
        events.register("before-send.dynamodb.BatchWriteItem", self.break_send)
        events.register("after-call.dynamodb.BatchWriteItem", self.report_held_back)

    def _take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            self.left -= 1
            self.injected += 1
            return True

    def hold_back(self, params, context, **_):
        ((table, puts),) = params["RequestItems"].items()
        if self.kind == "unprocessed" and self._take():
            sent, held = puts[: self.keep], puts[self.keep :]
        elif self.kind == "stuck":
            sent = [p for p in puts if _put_key(p) not in self.stuck]
            held = [p for p in puts if _put_key(p) in self.stuck]
        else:
            return
        if held:
            context["held"] = {table: held}
        if sent:
            params["RequestItems"] = {table: sent}
        else:
            context["nothing_sent"] = True

    def answer_if_empty(self, params, context, **_):
        if context.get("nothing_sent"):
            http = AWSResponse(params["url"], 200, {}, None)
            return http, {"UnprocessedItems": {}, "ResponseMetadata": {"HTTPStatusCode": 200}}
        return None

    def report_held_back(self, parsed, context, **_):
        if "held" in context:
            parsed["UnprocessedItems"] = context["held"]

    def break_send(self, request, **_):
        if self.kind == "throttle" and self._take():
            return self.error_response(request, 400, THROTTLED)
        if self.kind == "reset" and self._take():
            raise ConnectionClosedError(endpoint_url=request.url)
        return None


@pytest.mark.parametrize("kind", ["throttle", "unprocessed", "reset"])
def test_transient_faults_are_resent_and_a_rerun_adds_no_duplicates(
    ddb, aws, aws_error_response, kind
) -> None:
    frame = metrics_frame(5, 2)  # 110 rows: 5 write batches
    faulty = DynamoDBResource(region_name="us-east-1", endpoint_url=aws, max_attempts=1)
    client = faulty.get_client()
    fault = Fault(client, kind, aws_error_response, times=3)
    report = write_metrics(client, TABLE, frame, NOW_1, threads=3, deadline_s=30)
    assert fault.injected == 3
    assert count_items(ddb) == 110
    per_fault = {"throttle": 25, "unprocessed": 5, "reset": 25}[kind]
    assert report.retried_items == 3 * per_fault
    assert report.api_calls == 2 + 5 + 3  # gets + writes + the three resends
    rerun = write_metrics(ddb, TABLE, frame, NOW_2)
    assert rerun.items == 110 and count_items(ddb) == 110
    sample = frame.iloc[57]
    item = ddb.get_item(
        TableName=TABLE,
        Key={
            "id": {"S": f"portfolio#{sample.entity_id}"},
            "sk": {"S": f"{sample.calculation_date:%Y-%m-%d}#{sample.time_period}"},
        },
    )["Item"]
    assert_item_matches_row(item, sample)
    assert (item["created_at"]["S"], item["updated_at"]["S"]) == (NOW_1, NOW_2)


def test_botocore_retries_are_counted_as_api_calls(ddb, aws, aws_error_response) -> None:
    """Throttling injected by hook; botocore's own retries (max_attempts=3) absorb it."""
    frame = metrics_frame(1, 1)
    client = DynamoDBResource(
        region_name="us-east-1", endpoint_url=aws, max_attempts=3
    ).get_client()
    Fault(client, "throttle", aws_error_response, times=2)
    report = write_metrics(client, TABLE, frame, NOW_1)
    assert report.api_calls == 1 + 3 and report.retried_items == 0
    assert count_items(ddb) == 11


def test_unprocessed_forever_raises_naming_the_keys(ddb, aws, aws_error_response) -> None:
    """UnprocessedItems injected by hook on every call for the tail of each batch."""
    frame = metrics_frame(1, 3)  # 33 rows: batches of 25 and 8
    items = metrics_to_items(frame, NOW_1)
    stuck = frozenset((i["id"], i["sk"]) for i in items[20:25])
    client = DynamoDBResource(region_name="us-east-1", endpoint_url=aws).get_client()
    Fault(client, "stuck", aws_error_response, stuck=stuck)
    with pytest.raises(DynamoDBWriteError, match=r"5 of 33 items not written") as caught:
        write_metrics(client, TABLE, frame, NOW_1, deadline_s=0.5)
    assert sorted(caught.value.unwritten_keys) == sorted(stuck)
    assert items[21]["sk"] in str(caught.value)
    assert count_items(ddb) == 28
    write_metrics(ddb, TABLE, frame, NOW_2)
    assert count_items(ddb) == 33


def test_metric_keys_are_id_and_date_period() -> None:
    frame = metrics_frame(1, 1).iloc[[0, 10]]
    assert metric_keys(frame) == [
        ("portfolio#P0000", "2020-01-31#MTD"),
        ("portfolio#P0000", "2020-01-31#ITD"),
    ]


@pytest.mark.parametrize("kind", ["none", "throttle"])
def test_delete_metrics_removes_exactly_the_keys(ddb, aws_error_response, kind) -> None:
    frame = metrics_frame(3, 2)  # 66 rows; dates 2020-01-31 and 2020-02-28
    write_metrics(ddb, TABLE, frame, NOW_1)
    january = frame.loc[frame["calculation_date"] == "2020-01-31"]
    keys = [
        (f"portfolio#{e}", f"2020-01-31#{p}")
        for e, p in zip(january["entity_id"], january["time_period"], strict=True)
    ]
    fault = Fault(ddb, kind, aws_error_response, times=1) if kind == "throttle" else None
    report = delete_metrics(ddb, TABLE, [*keys, keys[0], ("portfolio#NONE", "2020-01-31#ITD")])
    assert report.items == 34  # 33 distinct keys + one that has no item
    assert fault is None or fault.injected == 1
    left = items_to_frame(scan_items(ddb, TABLE))
    assert len(left) == 33 and set(left["calculation_date"]) == {pd.Timestamp("2020-02-28")}


def test_delete_metrics_names_the_keys_it_could_not_delete(ddb, aws_error_response) -> None:
    Fault(ddb, "throttle", aws_error_response, times=10_000)
    with pytest.raises(DynamoDBWriteError, match="not deleted from DynamoDB table") as raised:
        delete_metrics(ddb, TABLE, [("portfolio#P1", "2020-01-31#ITD")], deadline_s=0.2)
    assert raised.value.unwritten_keys == [("portfolio#P1", "2020-01-31#ITD")]


def test_missing_table_is_a_domain_error_naming_it(ddb) -> None:
    with pytest.raises(DynamoDBTableNotFoundError, match="'no-such-table' not found at http"):
        write_metrics(ddb, "no-such-table", metrics_frame(1, 1), NOW_1)


def test_fx_metrics_are_stored_and_a_null_one_is_absent(ddb) -> None:
    """twr_local and fx_effect (several currencies) land as numbers on the item of every
    entity type, cash included; a null one is left out, never stored as 0."""
    frame = fx_metrics()
    write_metrics(ddb, TABLE, frame, NOW_1)
    stored = {item["id"]: item for item in scan_items(ddb, TABLE)}
    assert set(stored) == {"portfolio#P1", "cash#A1:CASH.USD", "security#A1:S1", "cash#A1:CASH.GBP"}
    portfolio = stored["portfolio#P1"]
    assert (portfolio["twr"], portfolio["twr_local"], portfolio["fx_effect"]) == (
        Decimal("0.875"),
        Decimal("0.25"),
        Decimal("0.5"),
    )
    usd = stored["cash#A1:CASH.USD"]
    assert (usd["twr_local"], usd["fx_effect"], usd["twr"]) == (0, Decimal("0.02"), Decimal("0.02"))
    assert usd["sk"] == "2024-06-28#ITD" and usd["portfolio_id"] == "P1"
    for item in stored.values():
        if "twr" in item:  # (1 + twr) = (1 + twr_local)(1 + fx_effect), as stored
            product = (1 + float(item["twr_local"])) * (1 + float(item["fx_effect"]))
            assert 1 + float(item["twr"]) == pytest.approx(product, rel=1e-12)
    gbp = stored["cash#A1:CASH.GBP"]
    assert gbp["twr_local"] == 0
    assert "fx_effect" not in gbp and "twr" not in gbp
    back = items_to_frame(list(stored.values())).set_index("entity_id")
    assert back.loc["A1:CASH.USD", "fx_effect"] == 0.02
    assert math.isnan(back.loc["A1:CASH.GBP", "fx_effect"])
    assert back.loc["A1:CASH.GBP", "twr_local"] == 0.0
