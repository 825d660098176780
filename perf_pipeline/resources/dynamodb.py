"""performance_metrics in DynamoDB: frame <-> items, bounded concurrent writes and deletes,
paginated readers.

Item layout (docs/data.md, DynamoDB): partition key ``id`` = ``{entity_type}#{entity_id}``, sort key
``sk`` = ``{calculation_date}#{time_period}``; every performance_metrics column as an attribute;
dates as ``YYYY-MM-DD`` strings; numbers as DynamoDB numbers (``Decimal(repr(float))``, so the
shortest decimal that round-trips the float, never a float or a string); ``partial_period`` as
BOOL; null values (None, NaN, NaT) left out.

Non-finite policy: NaN is the package's null and is left out like any null. ``inf`` (which the
calc package never produces) and finite numbers outside DynamoDB's range (|x| > 9.99e125 or
0 < |x| < 1e-130) raise ``NumberOutOfRangeError`` naming the row and column: nothing is
written, rather than a silently altered figure.
"""

import datetime as dt
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from perf_pipeline.calc.performance import METRIC_COLUMNS as CALCULATED_COLUMNS
from perf_pipeline.resources.aws_clients import (
    Backoff,
    WriteReport,
    attempts_made,
    is_transient,
)

STRING_COLUMNS = (
    "id",
    "entity_type",
    "entity_id",
    "portfolio_id",
    "client_id",
    "time_period",
    "benchmark_id",
    "calculation_method",
    "request_id",
    "created_at",
    "updated_at",
)
DATE_COLUMNS = ("calculation_date", "start_date", "end_date")
BOOL_COLUMNS = ("partial_period",)
METRIC_COLUMNS = (
    *CALCULATED_COLUMNS,
    "request_id",
    "created_at",
    "updated_at",
)
NUMBER_COLUMNS = tuple(
    name for name in METRIC_COLUMNS if name not in (*STRING_COLUMNS, *DATE_COLUMNS, *BOOL_COLUMNS)
)
"""performance_metrics columns in the order of docs/data.md."""

_STAMPS = ("created_at", "updated_at")
REQUIRED_COLUMNS = ("entity_type", "entity_id", "calculation_date", "time_period")
PORTFOLIO_INDEX = "PortfolioIndex"
CLIENT_INDEX = "ClientIndex"
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
_MAX_ABS = Decimal("9.99e125")
_MIN_ABS = Decimal("1e-130")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

Item = dict[str, Any]
Key = tuple[str, str]


class NumberOutOfRangeError(ValueError):
    """A number DynamoDB cannot store (inf, or outside 1e-130 .. 9.99e125 in magnitude)."""


class DynamoDBWriteError(RuntimeError):
    """Items not written (or deleted) before the deadline; ``unwritten_keys`` lists their
    (id, sk) keys."""

    def __init__(
        self,
        table: str,
        unwritten_keys: Sequence[Key],
        total: int,
        deadline_s: float,
        action: str = "written to",
    ):
        self.table = table
        self.unwritten_keys = list(unwritten_keys)
        shown = ", ".join(f"{pk}/{sk}" for pk, sk in self.unwritten_keys[:20])
        more = len(self.unwritten_keys) - 20
        super().__init__(
            f"{len(self.unwritten_keys)} of {total} items not {action} DynamoDB table "
            f"{table!r} within {deadline_s:g} s (still throttled or unprocessed): {shown}"
            + (f" and {more} more" if more > 0 else "")
        )


class DynamoDBTableNotFoundError(RuntimeError):
    """The table does not exist at the client's endpoint and region."""


# --- frame -> items ---------------------------------------------------------------------------


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _iso_date(value: Any) -> str:
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10]).isoformat()
    return pd.Timestamp(value).date().isoformat()


def _number(value: Any, row: int, column: str) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | np.integer):
        number = Decimal(int(value))
    else:
        as_float = float(value)
        if not math.isfinite(as_float):
            raise NumberOutOfRangeError(f"row {row}, column {column!r}: {as_float} is not finite")
        number = Decimal(repr(as_float))
    if number != 0 and not _MIN_ABS <= abs(number) <= _MAX_ABS:
        raise NumberOutOfRangeError(
            f"row {row}, column {column!r}: {number} is outside DynamoDB's number range"
        )
    return number


def _attribute(value: Any, row: int, column: str) -> Any:
    if column in DATE_COLUMNS:
        return _iso_date(value)
    if column in BOOL_COLUMNS:
        return bool(value)
    if column in STRING_COLUMNS:
        return str(value)
    return _number(value, row, column)


def item_key(entity_type: str, entity_id: str, calculation_date: Any, time_period: str) -> Key:
    """(id, sk) of a performance_metrics row: ``{entity_type}#{entity_id}``,
    ``{YYYY-MM-DD}#{time_period}``."""
    return f"{entity_type}#{entity_id}", f"{_iso_date(calculation_date)}#{time_period}"


def metric_keys(frame: pd.DataFrame) -> list[Key]:
    """The (id, sk) key of every row of a performance_metrics frame (``REQUIRED_COLUMNS``)."""
    return [item_key(*row) for row in frame[list(REQUIRED_COLUMNS)].itertuples(index=False)]


def metrics_to_items(frame: pd.DataFrame, now: str) -> list[Item]:
    """One item (plain Python values, Decimal numbers) per performance_metrics row.

    ``id`` and ``sk`` are derived from entity_type, entity_id, calculation_date and time_period
    (an ``id`` column that disagrees raises ValueError); ``created_at`` and ``updated_at`` are
    both set to ``now`` (``write_metrics`` then keeps the stored ``created_at``); columns not in
    ``METRIC_COLUMNS`` are not written. Null values are left out; see the module docstring for
    non-finite numbers. A missing key column raises ValueError.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"performance_metrics frame lacks key columns {missing}")
    columns = [c for c in METRIC_COLUMNS if c in frame.columns and c not in _STAMPS]
    items: list[Item] = []
    for row, record in enumerate(frame[columns].to_dict("records")):
        item: Item = {}
        for column in columns:
            value = record[column]
            if not _is_null(value):
                item[column] = _attribute(value, row, column)
        null_keys = [c for c in REQUIRED_COLUMNS if c not in item]
        if null_keys:
            raise ValueError(f"row {row}: key columns {null_keys} are null")
        key_id, sk = item_key(*(item[c] for c in REQUIRED_COLUMNS))
        if item.setdefault("id", key_id) != key_id:
            raise ValueError(f"row {row}: id {item['id']!r} is not {key_id!r}")
        item["sk"] = sk
        item["created_at"] = now
        item["updated_at"] = now
        items.append(item)
    return items


# --- batched, concurrent, deadline-bounded writes --------------------------------------------


@dataclass
class _Tally:
    api_calls: int = 0
    retried_items: int = 0
    found: list[Item] = field(default_factory=list)


def _request_size(request_items: Mapping[str, Any]) -> int:
    return sum(len(v["Keys"]) if isinstance(v, Mapping) else len(v) for v in request_items.values())


def _send_until_done(
    call: Callable[..., Mapping[str, Any]],
    request_items: dict[str, Any],
    leftover_field: str,
    deadline: float,
) -> tuple[_Tally, dict[str, Any]]:
    """Call ``call(RequestItems=...)`` and resend its leftovers (UnprocessedKeys/Items, or the
    whole request after a transient error) with backoff until none are left or the deadline
    passes. Returns the tally and what is still left ({} when everything went through)."""
    tally = _Tally()
    backoff = Backoff(deadline)
    pending = request_items
    while True:
        try:
            response = call(RequestItems=pending)
        except (ClientError, BotoCoreError) as exc:
            if not is_transient(exc):
                raise
            tally.api_calls += attempts_made(exc)
            leftover = pending
        else:
            tally.api_calls += attempts_made(response)
            for items in response.get("Responses", {}).values():
                tally.found.extend(items)
            leftover = response.get(leftover_field) or {}
        if not leftover or not backoff.wait():
            return tally, leftover
        tally.retried_items += _request_size(leftover)
        pending = leftover


def _chunks(seq: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


def _run_batches(
    client: Any,
    table: str,
    operation: str,
    requests: Iterable[dict[str, Any]],
    leftover_field: str,
    threads: int,
    deadline: float,
) -> list[tuple[_Tally, dict[str, Any]]]:
    call = getattr(client, operation)
    try:
        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            futures = [
                pool.submit(_send_until_done, call, request, leftover_field, deadline)
                for request in requests
            ]
            return [future.result() for future in futures]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise DynamoDBTableNotFoundError(
                f"DynamoDB table {table!r} not found at {client.meta.endpoint_url} "
                f"({client.meta.region_name})"
            ) from exc
        raise


def _existing_created_at(
    client: Any, table: str, keys: list[Key], threads: int, deadline: float
) -> tuple[dict[Key, str], _Tally, list[Key]]:
    requests = [
        {
            table: {
                "Keys": [{"id": {"S": pk}, "sk": {"S": sk}} for pk, sk in chunk],
                "ProjectionExpression": "#id, #sk, #created",
                "ExpressionAttributeNames": {"#id": "id", "#sk": "sk", "#created": "created_at"},
            }
        }
        for chunk in _chunks(keys, BATCH_GET_LIMIT)
    ]
    results = _run_batches(
        client, table, "batch_get_item", requests, "UnprocessedKeys", threads, deadline
    )
    created: dict[Key, str] = {}
    total = _Tally()
    unread: list[Key] = []
    for tally, leftover in results:
        total.api_calls += tally.api_calls
        total.retried_items += tally.retried_items
        for found in tally.found:
            if "created_at" in found:
                created[(found["id"]["S"], found["sk"]["S"])] = found["created_at"]["S"]
        for request in leftover.values():
            unread.extend((k["id"]["S"], k["sk"]["S"]) for k in request["Keys"])
    return created, total, unread


def write_metrics(
    client: Any,
    table: str,
    frame: pd.DataFrame,
    now: str,
    threads: int = 4,
    deadline_s: float = 120.0,
) -> WriteReport:
    """Upsert one item per performance_metrics row; returns what it cost.

    1. BatchGetItem the keys (100 per call, projection id, sk, created_at) so an existing
       item keeps its ``created_at``; ``updated_at`` = ``now`` (ISO-8601 UTC) on every item.
    2. BatchWriteItem in batches of at most 25 puts.
    Both steps run on ``threads`` workers sharing ``client`` (low-level clients are thread-safe;
    give the client a pool of at least ``threads`` connections). UnprocessedKeys/UnprocessedItems
    and transient errors (throttling, 5xx, broken connections, after botocore's own retries)
    are resent with exponential backoff and full jitter until ``deadline_s`` seconds after the
    start; whatever is left then raises ``DynamoDBWriteError`` naming the keys (the items that
    were written stay written: a rerun completes the data, keys make it idempotent).
    Duplicate keys in the frame raise ValueError (BatchWriteItem rejects them).
    """
    started = time.monotonic()
    deadline = started + deadline_s
    items = metrics_to_items(frame, now)
    keys = [(item["id"], item["sk"]) for item in items]
    dupes = sorted(key for key, count in Counter(keys).items() if count > 1)
    if dupes:
        raise ValueError(f"{len(dupes)} duplicate (id, sk) keys in the frame: {dupes[:20]}")
    created, get_tally, unread = _existing_created_at(client, table, keys, threads, deadline)
    if unread:
        raise DynamoDBWriteError(table, unread, len(items), deadline_s)
    for item, key in zip(items, keys, strict=True):
        item["created_at"] = created.get(key, now)
    writes = [{"PutRequest": {"Item": _serialize(item)}} for item in items]
    unwritten, api_calls, retried = _write_batches(client, table, writes, threads, deadline)
    if unwritten:
        raise DynamoDBWriteError(table, unwritten, len(items), deadline_s)
    return WriteReport(
        items=len(items),
        api_calls=get_tally.api_calls + api_calls,
        retried_items=get_tally.retried_items + retried,
        seconds=time.monotonic() - started,
    )


def delete_metrics(
    client: Any,
    table: str,
    keys: Iterable[Key],
    threads: int = 4,
    deadline_s: float = 120.0,
) -> WriteReport:
    """Delete the items of (id, sk) ``keys`` (duplicates sent once; a key with no item is not
    an error); returns what it cost.

    BatchWriteItem DeleteRequests, 25 per call, on ``threads`` workers, unprocessed items and
    transient errors resent as in ``write_metrics`` until ``deadline_s``; what is left then
    raises ``DynamoDBWriteError`` naming the keys (a rerun deletes them: deletes are
    idempotent).
    """
    started = time.monotonic()
    unique = list(dict.fromkeys(keys))
    writes = [{"DeleteRequest": {"Key": {"id": {"S": pk}, "sk": {"S": sk}}}} for pk, sk in unique]
    unwritten, api_calls, retried = _write_batches(
        client, table, writes, threads, started + deadline_s
    )
    if unwritten:
        raise DynamoDBWriteError(table, unwritten, len(unique), deadline_s, "deleted from")
    return WriteReport(
        items=len(unique),
        api_calls=api_calls,
        retried_items=retried,
        seconds=time.monotonic() - started,
    )


def _write_batches(
    client: Any, table: str, writes: Sequence[dict[str, Any]], threads: int, deadline: float
) -> tuple[list[Key], int, int]:
    """BatchWriteItem ``writes`` (PutRequest or DeleteRequest entries) in batches of 25 until
    done or ``deadline``: (keys left unprocessed, api calls, items resent)."""
    requests = [{table: list(chunk)} for chunk in _chunks(writes, BATCH_WRITE_LIMIT)]
    results = _run_batches(
        client, table, "batch_write_item", requests, "UnprocessedItems", threads, deadline
    )
    unwritten = [
        _write_key(write)
        for _, leftover in results
        for batch in leftover.values()
        for write in batch
    ]
    return (
        unwritten,
        sum(t.api_calls for t, _ in results),
        sum(t.retried_items for t, _ in results),
    )


def _write_key(write: Mapping[str, Any]) -> Key:
    key = write["PutRequest"]["Item"] if "PutRequest" in write else write["DeleteRequest"]["Key"]
    return key["id"]["S"], key["sk"]["S"]


def _serialize(item: Item) -> dict[str, Any]:
    return {name: _serializer.serialize(value) for name, value in item.items()}


def _deserialize(item: Mapping[str, Any]) -> Item:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


# --- paginated readers ------------------------------------------------------------------------


def _paginate(client: Any, operation: str, page_size: int | None, **kwargs: Any) -> list[Item]:
    config = {"PageSize": page_size} if page_size else {}
    pages = client.get_paginator(operation).paginate(PaginationConfig=config, **kwargs)
    return [_deserialize(item) for page in pages for item in page.get("Items", [])]


def _key_condition(
    partition: str, value: str, sk_equals: str | None = None, sk_prefix: str | None = None
) -> dict[str, Any]:
    names = {"#pk": partition}
    values: dict[str, Any] = {":pk": {"S": value}}
    condition = "#pk = :pk"
    if sk_equals is not None or sk_prefix is not None:
        names["#sk"] = "sk"
        if sk_equals is not None:
            values[":sk"] = {"S": sk_equals}
            condition += " AND #sk = :sk"
        else:
            values[":sk"] = {"S": sk_prefix}
            condition += " AND begins_with(#sk, :sk)"
    return {
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def query_entity(
    client: Any,
    table: str,
    entity_type: str,
    entity_id: str,
    date: str | dt.date | None = None,
    period: str | None = None,
    page_size: int | None = None,
) -> list[Item]:
    """Items of one entity, all pages: ``sk = "{date}#{period}"`` when both are given,
    ``begins_with(sk, "{date}#")`` for a date alone, a filter on time_period for a period alone.
    ``page_size`` sets Query's Limit per page (None: DynamoDB's 1 MB pages)."""
    day = _iso_date(date) if date is not None else None
    kwargs = _key_condition(
        "id",
        f"{entity_type}#{entity_id}",
        sk_equals=f"{day}#{period}" if day and period else None,
        sk_prefix=f"{day}#" if day and not period else None,
    )
    if period and not day:
        kwargs["FilterExpression"] = "#period = :period"
        kwargs["ExpressionAttributeNames"]["#period"] = "time_period"
        kwargs["ExpressionAttributeValues"][":period"] = {"S": period}
    return _paginate(client, "query", page_size, TableName=table, **kwargs)


def _query_index(
    client: Any,
    table: str,
    index: str,
    partition: str,
    value: str,
    calculation_date: str | dt.date | None,
    page_size: int | None,
) -> list[Item]:
    prefix = f"{_iso_date(calculation_date)}#" if calculation_date is not None else None
    kwargs = _key_condition(partition, value, sk_prefix=prefix)
    return _paginate(client, "query", page_size, TableName=table, IndexName=index, **kwargs)


def query_portfolio(
    client: Any,
    table: str,
    portfolio_id: str,
    calculation_date: str | dt.date | None = None,
    page_size: int | None = None,
) -> list[Item]:
    """Everything of one portfolio (GSI PortfolioIndex), optionally on one calculation date."""
    return _query_index(
        client, table, PORTFOLIO_INDEX, "portfolio_id", portfolio_id, calculation_date, page_size
    )


def query_client(
    client: Any,
    table: str,
    client_id: str,
    calculation_date: str | dt.date | None = None,
    page_size: int | None = None,
) -> list[Item]:
    """Everything of one client (GSI ClientIndex), optionally on one calculation date."""
    return _query_index(
        client, table, CLIENT_INDEX, "client_id", client_id, calculation_date, page_size
    )


def scan_items(client: Any, table: str, page_size: int | None = None) -> list[Item]:
    """Every item of the table, all pages (a full Scan: for loading the whole asset)."""
    return _paginate(client, "scan", page_size, TableName=table)


def items_to_frame(items: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """performance_metrics-shaped frame (``METRIC_COLUMNS``, in order) from stored items.

    Numbers -> float64 (missing -> NaN); dates -> datetime64 (missing -> NaT);
    partial_period -> object of True/False/None; strings -> object (missing -> None).
    Other attributes (``sk``) are dropped.
    """
    frame = pd.DataFrame.from_records(
        [{c: item.get(c) for c in METRIC_COLUMNS} for item in items], columns=list(METRIC_COLUMNS)
    )
    for column in NUMBER_COLUMNS:
        frame[column] = pd.to_numeric(
            frame[column].map(lambda v: math.nan if v is None else float(v)), errors="raise"
        ).astype("float64")
    for column in DATE_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], format="%Y-%m-%d")
    for column in (*STRING_COLUMNS, *BOOL_COLUMNS):
        frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame
