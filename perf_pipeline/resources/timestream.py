"""Time series of daily_valuations and performance_metrics in Amazon Timestream (LiveAnalytics).

Records (docs/data.md, "Timestream") are MULTI-measure records, time in epoch milliseconds:
- ``metrics``: one per performance_metrics row at calculation_date 00:00 UTC; dimensions
  entity_type, entity_id, calculation_method, time_period; measures twr, twr_local,
  fx_effect, mwr, volatility, sharpe_ratio, max_drawdown (DOUBLE) and request_id (VARCHAR).
- ``daily``: one per daily_valuations row at date 00:00 UTC; dimensions entity_type,
  entity_id; measures market_value, daily_return, twr_index, market_value_local,
  daily_return_local, fx_return, fx_rate (DOUBLE) and currency (VARCHAR).
A null (None/NaN) measure is left out of the record (Timestream rejects empty values); a
record left with no measure is skipped and counted (``RecordList.skipped``); a missing
column is an error. DOUBLEs are sent
as ``repr(float)`` (shortest round-trip string). A non-finite DOUBLE is not null: it reaches
``validate_records``, which refuses the batch.

Writes carry ``Version`` = epoch ms of the write (the caller's ``version``: the aws target's
S3PartitionStore takes the clock once per store call), so a rerun (a later write) replaces
records with the same dimensions, time and measure name instead of being rejected as a
duplicate. Timestream cannot delete a record: a series point the pipeline stops producing
(a superseded calculation date) stays until its retention expires.

Performance history is older than any memory-store retention, so the table needs
magnetic-store writes enabled (``aws_setup`` and template.yaml do so); without them Timestream
rejects every record older than the memory-store retention.

AWS closed Timestream for LiveAnalytics to new customers on 2025-06-20. The pipeline therefore
only depends on ``TimeSeriesSink`` (write_metrics / write_daily); ``TimestreamSink`` is one
implementation, and another store (e.g. Timestream for InfluxDB) can replace it without
touching the assets.
"""

import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from perf_pipeline.resources.aws_clients import (
    Backoff,
    WriteReport,
    attempts_made,
    is_transient,
)

METRICS_MEASURE = "metrics"
METRICS_DIMENSIONS = ("entity_type", "entity_id", "calculation_method", "time_period")
METRICS_DOUBLES = (
    "twr",
    "twr_local",
    "fx_effect",
    "mwr",
    "volatility",
    "sharpe_ratio",
    "max_drawdown",
)
METRICS_VARCHARS = ("request_id",)
DAILY_MEASURE = "daily"
DAILY_DIMENSIONS = ("entity_type", "entity_id")
DAILY_DOUBLES = (
    "market_value",
    "daily_return",
    "twr_index",
    "market_value_local",
    "daily_return_local",
    "fx_return",
    "fx_rate",
)
DAILY_VARCHARS = ("currency",)
DAILY_COLUMNS = ("date", *DAILY_DIMENSIONS, *DAILY_DOUBLES, *DAILY_VARCHARS)
"""The daily_valuations columns ``daily_records`` reads (what the publication loads)."""

MAX_RECORDS_PER_REQUEST = 100
MAX_RECORD_BYTES = 2048
MAX_SERIES_BYTES = 2048
MAX_DIMENSION_VALUE_BYTES = 2048
MAX_DIMENSION_NAME_BYTES = 60
MAX_MEASURE_NAME_BYTES = 256
MAX_MEASURES_PER_RECORD = 256
MAX_VARCHAR_BYTES = 2048
MAX_FUTURE_MS = 15 * 60 * 1000
MAX_AGE_MS = 73000 * 86_400_000
"""Timestream's longest magnetic-store retention (200 years): older records are rejected."""
RESERVED_NAMES = frozenset({"measure_name", "measure_value", "time"})
MEASURE_TYPES = frozenset({"DOUBLE", "BIGINT", "VARCHAR", "BOOLEAN", "TIMESTAMP"})
COMMON_KEYS = ("MeasureName", "MeasureValueType", "TimeUnit")
_EPOCH = pd.Timestamp("1970-01-01")
Record = dict[str, Any]


class RecordList(list[Record]):
    """Records built from a frame; ``skipped`` counts rows left with no measure."""

    skipped: int = 0


class RecordValidationError(ValueError):
    """Records Timestream would reject; the message names each (index, dimensions, time)."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        more = len(self.problems) - 20
        super().__init__(
            f"{len(self.problems)} invalid Timestream record(s): "
            + "; ".join(self.problems[:20])
            + (f"; and {more} more" if more > 0 else "")
        )


@dataclass(frozen=True)
class RejectedRecord:
    """One record Timestream refused, as RejectedRecordsException reported it."""

    dimensions: dict[str, str]
    time_ms: int
    measure_name: str
    reason: str
    existing_version: int | None


class TimestreamRejectedError(RuntimeError):
    """WriteRecords refused records (the rest of each batch was written)."""

    def __init__(self, rejected: Sequence[RejectedRecord], report: WriteReport):
        self.rejected = list(rejected)
        self.report = report
        lines = [
            f"{r.measure_name} {r.dimensions} at {r.time_ms}: {r.reason}"
            + (
                f" (existing version {r.existing_version})"
                if r.existing_version is not None
                else ""
            )
            for r in self.rejected[:20]
        ]
        more = len(self.rejected) - 20
        super().__init__(
            f"Timestream rejected {len(self.rejected)} record(s): "
            + "; ".join(lines)
            + (f"; and {more} more" if more > 0 else "")
        )


class TimestreamWriteError(RuntimeError):
    """Batches still throttled or failing when the deadline passed."""


# --- frames -> records ------------------------------------------------------------------------


def _epoch_ms(value: Any) -> int:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int((stamp.normalize() - _EPOCH) // pd.Timedelta(milliseconds=1))


def _is_null(value: Any) -> bool:
    """None, NaN (any float type), pd.NA and NaT (pandas' or numpy's) are null."""
    return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))


def _records(
    frame: pd.DataFrame,
    measure_name: str,
    time_column: str,
    dimensions: Sequence[str],
    doubles: Sequence[str],
    varchars: Sequence[str] = (),
) -> RecordList:
    needed = [time_column, *dimensions, *doubles, *varchars]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks columns {missing} for {measure_name!r} records")
    out = RecordList()
    for row in frame[needed].to_dict("records"):
        measures = [
            {"Name": name, "Value": repr(float(row[name])), "Type": "DOUBLE"}
            for name in doubles
            if not _is_null(row[name])
        ] + [
            {"Name": name, "Value": str(row[name]), "Type": "VARCHAR"}
            for name in varchars
            if not _is_null(row[name])
        ]
        if not measures:
            out.skipped += 1
            continue
        out.append(
            {
                "Dimensions": [
                    {
                        "Name": name,
                        "Value": "" if _is_null(row[name]) else str(row[name]),
                        "DimensionValueType": "VARCHAR",
                    }
                    for name in dimensions
                ],
                "MeasureName": measure_name,
                "MeasureValueType": "MULTI",
                "MeasureValues": measures,
                "Time": str(_epoch_ms(row[time_column])),
                "TimeUnit": "MILLISECONDS",
            }
        )
    return out


def metrics_records(frame: pd.DataFrame) -> RecordList:
    """One ``metrics`` MULTI record per performance_metrics row (see the module docstring)."""
    return _records(
        frame,
        METRICS_MEASURE,
        "calculation_date",
        METRICS_DIMENSIONS,
        METRICS_DOUBLES,
        METRICS_VARCHARS,
    )


def daily_records(frame: pd.DataFrame) -> RecordList:
    """One ``daily`` MULTI record per daily_valuations row (see the module docstring)."""
    return _records(frame, DAILY_MEASURE, "date", DAILY_DIMENSIONS, DAILY_DOUBLES, DAILY_VARCHARS)


# --- validation -------------------------------------------------------------------------------


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def _name_problems(kind: str, name: Any, limit: int) -> list[str]:
    if not isinstance(name, str) or not name:
        return [f"empty {kind} name"]
    problems = []
    if _nbytes(name) > limit:
        problems.append(f"{kind} name {name[:40]!r} longer than {limit} bytes")
    if name in RESERVED_NAMES or name.startswith(("ts_", "measure_value")) or ":" in name:
        problems.append(f"{kind} name {name!r} is reserved or contains ':'")
    return problems


def _measure_problems(measure: Mapping[str, Any]) -> list[str]:
    name, value, kind = measure.get("Name"), measure.get("Value"), measure.get("Type")
    problems = _name_problems("measure", name, MAX_MEASURE_NAME_BYTES)
    if kind not in MEASURE_TYPES:
        problems.append(f"measure {name!r} has type {kind!r}")
    if not isinstance(value, str) or not value:
        return [*problems, f"measure {name!r} has an empty value"]
    if kind == "DOUBLE":
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            problems.append(f"measure {name!r} = {value!r} is not a finite DOUBLE")
    elif kind == "VARCHAR" and _nbytes(value) > MAX_VARCHAR_BYTES:
        problems.append(f"measure {name!r} longer than {MAX_VARCHAR_BYTES} bytes")
    return problems


def _record_problems(
    record: Mapping[str, Any], common: Mapping[str, Any], now_ms: int
) -> list[str]:
    merged = {**common, **record}
    problems: list[str] = []
    dimensions = merged.get("Dimensions") or []
    names = [d.get("Name") for d in dimensions]
    if len(set(names)) != len(names):
        problems.append("duplicate dimension names")
    for dimension in dimensions:
        problems += _name_problems("dimension", dimension.get("Name"), MAX_DIMENSION_NAME_BYTES)
        value = dimension.get("Value")
        if not isinstance(value, str) or not value:
            problems.append(f"dimension {dimension.get('Name')!r} has an empty value")
        elif _nbytes(value) > MAX_DIMENSION_VALUE_BYTES:
            problems.append(f"dimension {dimension.get('Name')!r} longer than 2 KB")
    series_bytes = sum(
        _nbytes(str(d.get("Name", ""))) + _nbytes(str(d.get("Value", ""))) for d in dimensions
    )
    if series_bytes > MAX_SERIES_BYTES:
        problems.append(f"dimensions take {series_bytes} bytes (> {MAX_SERIES_BYTES})")
    problems += _name_problems("measure", merged.get("MeasureName"), MAX_MEASURE_NAME_BYTES)
    measures = merged.get("MeasureValues") or []
    if merged.get("MeasureValueType") != "MULTI":
        problems.append(f"MeasureValueType {merged.get('MeasureValueType')!r} is not MULTI")
    elif not measures:
        problems.append("MULTI record without measures")
    if len(measures) > MAX_MEASURES_PER_RECORD:
        problems.append(f"{len(measures)} measures (> {MAX_MEASURES_PER_RECORD})")
    measure_names = [m.get("Name") for m in measures]
    if len(set(measure_names)) != len(measure_names) or set(measure_names) & set(names):
        problems.append("measure names repeat or clash with dimension names")
    for measure in measures:
        problems += _measure_problems(measure)
    size = series_bytes + sum(
        _nbytes(str(m.get("Name", ""))) + _nbytes(str(m.get("Value", ""))) for m in measures
    )
    if size > MAX_RECORD_BYTES:
        problems.append(f"record takes {size} bytes (> {MAX_RECORD_BYTES})")
    if merged.get("TimeUnit") != "MILLISECONDS":
        problems.append(f"TimeUnit {merged.get('TimeUnit')!r} is not MILLISECONDS")
    time_text = str(merged.get("Time", ""))
    if not time_text.isdigit():
        problems.append(f"Time {time_text!r} is not epoch milliseconds")
    elif not now_ms - MAX_AGE_MS <= int(time_text) <= now_ms + MAX_FUTURE_MS:
        problems.append(f"Time {time_text} outside [now - 73000 days, now + 15 min]")
    return problems


def _describe(record: Mapping[str, Any]) -> str:
    dims = {d.get("Name"): d.get("Value") for d in record.get("Dimensions") or []}
    return f"{dims} at {record.get('Time')}"


def validate_records(
    records: Sequence[Record],
    common: Mapping[str, Any] | None = None,
    now_ms: int | None = None,
) -> None:
    """Check one WriteRecords request's records as Timestream would (moto checks none of this).

    At most 100 records; dimension names 1..60 bytes, not reserved, unique; dimension values
    non-empty and <= 2 KB, all dimensions of a series <= 2 KB; measure names 1..256 bytes;
    MULTI with 1..256 uniquely named measures; DOUBLE values string-encoded and finite; VARCHAR
    values non-empty and <= 2 KB; record <= 2 KB; Time in epoch ms within [now - 73000 days,
    now + 15 min]. ``common`` are the request's CommonAttributes (merged under each record).
    Raises RecordValidationError naming every bad record by index, dimensions and time.
    """
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    problems: list[str] = []
    if len(records) > MAX_RECORDS_PER_REQUEST:
        problems.append(f"{len(records)} records in one request (> {MAX_RECORDS_PER_REQUEST})")
    for index, record in enumerate(records):
        found = _record_problems(record, common or {}, now)
        if found:
            problems.append(f"record {index} {_describe(record)}: " + ", ".join(found))
    if problems:
        raise RecordValidationError(problems)


# --- writes -----------------------------------------------------------------------------------


def _request(records: Sequence[Record], version: int) -> tuple[dict[str, Any], list[Record]]:
    common: dict[str, Any] = {"Version": version}
    for key in COMMON_KEYS:
        values = {record.get(key) for record in records}
        if len(values) == 1 and None not in values:
            common[key] = values.pop()
    stripped = [{k: v for k, v in record.items() if k not in common} for record in records]
    return common, stripped


@dataclass
class _BatchResult:
    written: int = 0
    api_calls: int = 0
    retried: int = 0
    rejected: tuple[RejectedRecord, ...] = ()
    gave_up: str | None = None


def _send_batch(
    client: Any,
    database: str,
    table: str,
    common: dict[str, Any],
    records: list[Record],
    deadline: float,
) -> _BatchResult:
    result = _BatchResult()
    backoff = Backoff(deadline)
    while True:
        try:
            response = client.write_records(
                DatabaseName=database, TableName=table, CommonAttributes=common, Records=records
            )
        except client.exceptions.RejectedRecordsException as exc:
            result.api_calls += attempts_made(exc)
            result.rejected = tuple(
                RejectedRecord(
                    dimensions={
                        d["Name"]: d["Value"] for d in records[r["RecordIndex"]]["Dimensions"]
                    },
                    time_ms=int(records[r["RecordIndex"]]["Time"]),
                    measure_name=common.get("MeasureName")
                    or records[r["RecordIndex"]].get("MeasureName", ""),
                    reason=r.get("Reason", ""),
                    existing_version=r.get("ExistingVersion"),
                )
                for r in exc.response.get("RejectedRecords", [])
            )
            result.written = len(records) - len(result.rejected)
            return result
        except (ClientError, BotoCoreError) as exc:
            if not is_transient(exc):
                raise
            result.api_calls += attempts_made(exc)
            if not backoff.wait():
                result.gave_up = str(exc)
                return result
            result.retried += len(records)
        else:
            result.api_calls += attempts_made(response)
            result.written = len(records)
            return result


def write_records(
    client: Any,
    database: str,
    table: str,
    records: Sequence[Record],
    version: int,
    threads: int = 4,
    deadline_s: float = 120.0,
) -> WriteReport:
    """Write records in WriteRecords batches of at most 100, ``threads`` batches at a time.

    Per batch, the attributes all its records share (MeasureName, MeasureValueType, TimeUnit)
    go to CommonAttributes together with ``Version`` = ``version`` (epoch ms of the write).
    Every batch is validated (``validate_records``) before anything is sent.
    Throttling, internal errors and broken connections are resent with exponential backoff and
    full jitter until ``deadline_s`` seconds after the start (then TimestreamWriteError).
    RejectedRecordsException is not retried: after all batches, TimestreamRejectedError lists
    every rejected record (dimensions, time, Reason, ExistingVersion); the other records of
    those batches were written.
    """
    started = time.monotonic()
    requests = [
        _request(records[i : i + MAX_RECORDS_PER_REQUEST], version)
        for i in range(0, len(records), MAX_RECORDS_PER_REQUEST)
    ]
    for offset, (common, batch) in enumerate(requests):
        try:
            validate_records(batch, common)
        except RecordValidationError as exc:
            raise RecordValidationError(
                [f"batch {offset} (records {offset * 100}..): {p}" for p in exc.problems]
            ) from None
    deadline = started + deadline_s
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        futures = [
            pool.submit(_send_batch, client, database, table, common, batch, deadline)
            for common, batch in requests
        ]
        results = [future.result() for future in futures]
    report = WriteReport(
        items=sum(r.written for r in results),
        api_calls=sum(r.api_calls for r in results),
        retried_items=sum(r.retried for r in results),
        seconds=time.monotonic() - started,
    )
    failed = [r for r in results if r.gave_up]
    if failed:
        raise TimestreamWriteError(
            f"{len(failed)} of {len(requests)} WriteRecords batches to {database}.{table} "
            f"({sum(len(b) for (_, b), r in zip(requests, results, strict=True) if r.gave_up)}"
            f" records) still failing after {deadline_s:g} s: {failed[0].gave_up}"
        )
    rejected = [record for r in results for record in r.rejected]
    if rejected:
        raise TimestreamRejectedError(rejected, report)
    return report


# --- the sink interface -----------------------------------------------------------------------


class TimeSeriesSink(Protocol):
    """Where the pipeline publishes its time series; ``version`` = epoch ms of the write."""

    def write_metrics(self, frame: pd.DataFrame, version: int) -> WriteReport: ...

    def write_daily(self, frame: pd.DataFrame, version: int) -> WriteReport: ...


@dataclass(frozen=True)
class TimestreamSink:
    """TimeSeriesSink on Timestream for LiveAnalytics."""

    client: Any
    database: str
    table: str
    threads: int = 4
    deadline_s: float = 120.0

    def _write(self, records: Sequence[Record], version: int) -> WriteReport:
        return write_records(
            self.client, self.database, self.table, records, version, self.threads, self.deadline_s
        )

    def write_metrics(self, frame: pd.DataFrame, version: int) -> WriteReport:
        """Publish performance_metrics rows as ``metrics`` records."""
        return self._write(metrics_records(frame), version)

    def write_daily(self, frame: pd.DataFrame, version: int) -> WriteReport:
        """Publish daily_valuations rows as ``daily`` records."""
        return self._write(daily_records(frame), version)
