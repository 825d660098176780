"""The aws target's partition store: one pickled frame per table, shard and month on S3, and
the publication of what it stores to DynamoDB and Timestream.

Layout: ``s3://<bucket>/<prefix>/<table>/<shard>/<YYYY-MM>.pkl`` holds the rows of `shard`
whose day (``DATE_COLUMNS[table]``) falls in that month. A run's shards are disjoint from
any concurrent run's, so no two runs write one object. Objects are pickles (pyarrow is not
installed; pickles also round-trip every dtype exactly): read them with the pandas version
that wrote them, and trust the bucket as you trust the code (S3PickleIOManager does the same).

``replace`` is atomic per object (an S3 PUT is), not per table: a step that fails half-way
leaves some months rewritten. The assets write ``computed_from`` last, so the next plan
finds those partitions stale and recomputes them.
"""

from __future__ import annotations

import datetime as dt
import pickle
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dagster import get_dagster_logger
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from perf_pipeline.resources.aws_clients import DynamoDBResource, TimestreamWriteResource
from perf_pipeline.resources.dynamodb import delete_metrics, metric_keys, write_metrics
from perf_pipeline.resources.partition_store import DATE_COLUMNS, PartitionStore, Slice
from perf_pipeline.resources.timestream import TimestreamSink

SUFFIX = ".pkl"
METRICS, DAILY = "performance_metrics", "daily_valuations"


@dataclass
class _Month:
    """One month object of one shard touched by a replace: what it held (None when it does
    not exist or was not read) and the new rows that go in."""

    key: str
    label: str
    exists: bool
    old: pd.DataFrame | None
    new: pd.DataFrame


class S3PartitionStore(PartitionStore):
    """PartitionStore on S3 that also publishes: a replace of performance_metrics upserts the
    rows to DynamoDB (``write_metrics``: created_at kept, updated_at now), deletes the items
    of the rows it supersedes (every row of the slice it held before whose key the new frame
    lacks: the superseded extra_days, and in-range dates that are no longer calculation
    dates) and writes ``metrics`` records to Timestream; a replace of daily_valuations writes
    ``daily`` records to Timestream. Timestream cannot delete: records of superseded
    calculation dates stay there until the table's retention drops them, so a Timestream
    reader asks for the calculation dates it wants (month ends, the latest date) rather than
    taking every record as current.

    Order per replace: read the old month objects, publish (DynamoDB, then Timestream), then
    write S3. A failed publication leaves S3 as it was, so the retry finds the same superseded
    rows to delete; every write and delete is idempotent.

    Timestream ``Version`` is the epoch ms at the start of the replace (the time is taken once
    per call): the run's start time, which the IO manager used, is not known to a resource
    outside an output context, and any later write must win. A rerun is always later than
    the run before it, and a record is written once per run (the run's chunks are disjoint),
    so this orders writes exactly as the run's start did, given clocks that agree. (A
    ``version`` argument would need PartitionStore.replace to carry one.)
    """

    bucket: str = Field(description="Bucket of the tables.")
    prefix: str = Field(default="", description="Key prefix of the tables in the bucket.")
    endpoint_url: str | None = Field(
        default=None,
        description="Endpoint of S3, DynamoDB and Timestream (an emulator); "
        "None: AWS. Passed to every client explicitly.",
    )
    region_name: str | None = Field(default=None, description="AWS region (None: boto3's).")
    dynamodb_table: str = Field(
        default="performance-metrics", description="DynamoDB table of performance_metrics."
    )
    timestream_database: str = Field(
        default="investment_performance", description="Timestream database."
    )
    timestream_table: str = Field(default="performance_metrics", description="Timestream table.")
    threads: int = Field(default=8, description="Concurrent S3 GETs and publishing batches.")
    deadline_s: float = Field(
        default=120.0, description="Seconds a publication may spend resending throttled writes."
    )

    _clients: dict[str, Any] = PrivateAttr(default_factory=dict)

    def _client(self, service: str) -> Any:
        """One client per service for the resource's life (low-level clients are
        thread-safe), built by the project's client resources (their retry policy, timeouts
        and pool size). They are built here, not nested as resources: a resource with nested
        resources cannot be initialized outside a run (`process_config_and_initialize`, which
        the CLI uses to plan)."""
        if service not in self._clients:
            factory = {
                "s3": S3Resource,
                "dynamodb": DynamoDBResource,
                "timestream": TimestreamWriteResource,
            }[service]
            settings = {"endpoint_url": self.endpoint_url, "region_name": self.region_name}
            self._clients[service] = factory(**settings).get_client()
        return self._clients[service]

    # --- layout ---------------------------------------------------------------------------

    def _folder(self, table: str, shard: str) -> str:
        return "/".join(part for part in (self.prefix.strip("/"), table, shard) if part) + "/"

    def _months(self, table: str, shard: str, first: str | None, last: str | None) -> list[str]:
        """The months ('YYYY-MM') of the shard's objects from `first` to `last` (either open
        when None): a paginated listing that starts at `first` and stops after `last`."""
        folder = self._folder(table, shard)
        kwargs = {"Bucket": self.bucket, "Prefix": folder}
        if first is not None:
            kwargs["StartAfter"] = folder + first  # 'YYYY-MM' sorts before 'YYYY-MM.pkl'
        found = []
        for page in self._client("s3").get_paginator("list_objects_v2").paginate(**kwargs):
            for entry in page.get("Contents", []):
                name = entry["Key"][len(folder) :]
                if not name.endswith(SUFFIX) or "/" in name:
                    continue
                month = name[: -len(SUFFIX)]
                if last is not None and month > last:
                    return found
                found.append(month)
        return found

    def _get(self, key: str) -> pd.DataFrame:
        body = self._client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return pickle.loads(body)

    def _get_all(self, keys: Sequence[str]) -> list[pd.DataFrame]:
        with ThreadPoolExecutor(max_workers=max(1, self.threads)) as pool:
            return list(pool.map(self._get, keys))

    # --- the PartitionStore interface -----------------------------------------------------

    def read(
        self,
        table: str,
        shards: Sequence[str],
        start: dt.date | None = None,
        end: dt.date | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of `shards` with day in start..end, ordered by day: GETs only the month
        objects that exist in that range (one listing per shard finds them)."""
        keys = [
            self._folder(table, shard) + month + SUFFIX
            for shard in shards
            for month in self._months(table, shard, _month(start), _month(end))
        ]
        frames = [_rows(frame, table, Slice((), start, end)) for frame in self._get_all(keys)]
        if not frames:
            return pd.DataFrame(columns=list(columns or []))
        rows = pd.concat(frames, ignore_index=True)
        rows = rows.sort_values(DATE_COLUMNS[table], kind="stable", ignore_index=True)
        return rows[list(columns)] if columns else rows

    def replace(
        self, table: str, frame: pd.DataFrame, where: Slice, keep_created_at: Sequence[str] = ()
    ) -> int:
        """Rewrite the month objects the slice touches. A month the slice covers whole is
        written from `frame` alone (its old object is read only to keep created_at or, for
        performance_metrics, to find the superseded items); a partial month keeps its rows
        outside the slice. An object left empty is deleted. Returns the rows of the objects
        written (counting the whole table would read all of it)."""
        version = time.time_ns() // 1_000_000
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if (
            len(frame)
            and not (
                _in_slice(frame, table, where) & frame["shard"].isin(where.shards).to_numpy()
            ).all()
        ):
            raise ValueError(f"rows of the {table} frame lie outside the slice {where}")
        months = self._touched(table, frame, where, bool(keep_created_at) or table == METRICS)
        superseded = [
            month.old.loc[_in_slice(month.old, table, where)]
            for month in months
            if month.old is not None
        ]
        self._publish(table, frame, superseded, version, now)
        written = 0
        for month in months:
            rows = _merge(month, table, where, keep_created_at)
            if rows.empty:
                if month.exists:
                    self._client("s3").delete_object(Bucket=self.bucket, Key=month.key)
                continue
            self._client("s3").put_object(
                Bucket=self.bucket, Key=month.key, Body=pickle.dumps(rows, pickle.HIGHEST_PROTOCOL)
            )
            written += len(rows)
        return written

    def _touched(
        self, table: str, frame: pd.DataFrame, where: Slice, read_full: bool
    ) -> list[_Month]:
        """Every month object of the slice's shards that holds rows of the slice or receives
        rows of `frame`, with its old rows when they are needed: always for a partial month,
        for a whole one when `read_full`."""
        day = DATE_COLUMNS[table]
        new_months = _month_labels(frame[day]) if len(frame) else np.array([], dtype=str)
        shard_of_row = frame["shard"].to_numpy() if len(frame) else np.array([], dtype=str)
        extra = sorted(_month(d) for d in where.extra_days)
        months: list[_Month] = []
        for shard in where.shards:
            existing = set(self._months(table, shard, _month(where.start), _month(where.end)))
            if extra:
                existing |= set(self._months(table, shard, extra[0], extra[-1])) & set(extra)
            mine = shard_of_row == shard
            for label in sorted(set(new_months[mine]) | existing):
                months.append(
                    _Month(
                        key=self._folder(table, shard) + label + SUFFIX,
                        label=label,
                        exists=label in existing,
                        old=None,
                        new=frame.loc[mine & (new_months == label)],
                    )
                )
        wanted = [m for m in months if m.exists and (read_full or not _covers(where, m.label))]
        for month, old in zip(wanted, self._get_all([m.key for m in wanted]), strict=True):
            month.old = old
        return months

    def _publish(
        self,
        table: str,
        frame: pd.DataFrame,
        superseded: list[pd.DataFrame],
        version: int,
        now: str,
    ) -> None:
        """DynamoDB and Timestream for performance_metrics, Timestream for daily_valuations."""
        log = get_dagster_logger()
        if table not in (METRICS, DAILY):
            return
        sink = TimestreamSink(
            self._client("timestream"),
            self.timestream_database,
            self.timestream_table,
            self.threads,
            self.deadline_s,
        )
        if table == DAILY:
            if len(frame):
                report = sink.write_daily(frame, version)
                log.info(f"Timestream: {report.items} daily records, version {version}")
            return
        ddb = self._client("dynamodb")
        gone = set().union(*(metric_keys(old) for old in superseded if len(old))) - set(
            metric_keys(frame)
        )
        if gone:
            report = delete_metrics(
                ddb, self.dynamodb_table, sorted(gone), self.threads, self.deadline_s
            )
            log.info(f"DynamoDB: deleted {report.items} superseded items")
        if len(frame):
            report = write_metrics(
                ddb, self.dynamodb_table, frame, now, self.threads, self.deadline_s
            )
            log.info(f"DynamoDB: {report.items} items in {report.api_calls} calls")
            report = sink.write_metrics(frame, version)
            log.info(f"Timestream: {report.items} metrics records, version {version}")


def _month(day: dt.date | None) -> str | None:
    return None if day is None else f"{day:%Y-%m}"


def _month_labels(days: pd.Series) -> np.ndarray:
    """'YYYY-MM' of each day."""
    months = pd.to_datetime(days).to_numpy().astype("datetime64[M]")
    return np.datetime_as_string(months, unit="M")


def _covers(where: Slice, label: str) -> bool:
    """Whether start..end spans the whole month `label`."""
    first = pd.Timestamp(f"{label}-01")
    last = first + pd.offsets.MonthEnd(0)
    return (where.start is None or pd.Timestamp(where.start) <= first) and (
        where.end is None or pd.Timestamp(where.end) >= last
    )


def _in_slice(frame: pd.DataFrame, table: str, where: Slice) -> np.ndarray:
    """Which rows have their day in the slice's range or extra days (the shard is the
    object's)."""
    if frame.empty:
        return np.zeros(len(frame), dtype=bool)
    days = pd.to_datetime(frame[DATE_COLUMNS[table]])
    inside = np.ones(len(frame), dtype=bool)
    if where.start is not None:
        inside &= (days >= pd.Timestamp(where.start)).to_numpy()
    if where.end is not None:
        inside &= (days <= pd.Timestamp(where.end)).to_numpy()
    if where.extra_days:
        inside |= days.isin(pd.to_datetime(list(where.extra_days))).to_numpy()
    return inside


def _rows(frame: pd.DataFrame, table: str, where: Slice) -> pd.DataFrame:
    return frame.loc[_in_slice(frame, table, where)]


def _merge(month: _Month, table: str, where: Slice, keep_created_at: Sequence[str]) -> pd.DataFrame:
    """The month's rows after the replace: its old rows outside the slice and the new rows,
    these keeping the created_at of an old row with the same `keep_created_at` key."""
    new = month.new
    if month.old is None or month.old.empty:
        return new.reset_index(drop=True)
    if keep_created_at and len(new) and "created_at" in month.old:
        prior = (
            month.old[[*keep_created_at, "created_at"]]
            .drop_duplicates(keep_created_at)
            .rename(columns={"created_at": "_prior"})
        )
        found = (
            new[list(keep_created_at)]
            .merge(prior, on=list(keep_created_at), how="left")["_prior"]
            .to_numpy()
        )
        new = new.assign(created_at=np.where(pd.isna(found), new["created_at"].to_numpy(), found))
    kept = month.old.loc[~_in_slice(month.old, table, where)]
    parts = [part for part in (kept, new) if len(part)]
    if not parts:
        return new.iloc[:0]
    rows = pd.concat(parts, ignore_index=True)
    return rows.sort_values(DATE_COLUMNS[table], kind="stable", ignore_index=True)
