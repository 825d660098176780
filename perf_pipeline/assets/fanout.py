"""How a run's shards fan out as steps of Dagster's executor.

daily_valuations and performance_metrics are graph-backed assets: ``run_chunks`` emits one
dynamic output per shard of the run that holds portfolios (and one for the shards that hold
none); one step per chunk does the work and returns a small summary; a last step collects
the summaries into the asset's materialization and its checks. The in-process executor runs
the chunk steps one after another (``perf-pipeline run`` with one worker, and every test),
the multiprocess executor side by side on a laptop (``--workers N``), and in production each
run is one ECS task whose executor does the same.

A chunk step's summary is JSON (counts, the first offending rows of each check), never a
frame: the rows themselves go to the partition store.
"""

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetMaterialization,
    DataVersion,
    DynamicOut,
    DynamicOutput,
    In,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Output,
    op,
)
from dagster._core.definitions.data_version import (
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
)

from perf_pipeline.assets.metadata import (
    PREVIEW_ROWS,
    check_metadata,
    location_metadata,
    partition_metadata,
    records,
    rows_by_month,
    schema_of,
    schema_pairs,
)
from perf_pipeline.partitions import run_scope
from perf_pipeline.planning import as_of_day, default_as_of
from perf_pipeline.resources.partition_store import PartitionStore


def shard_chunks(
    shards: Sequence[str], owners: pd.DataFrame
) -> Iterator[tuple[tuple[str, ...], list[str]]]:
    """One chunk per shard that holds portfolios, with their ids, then one chunk of the
    shards that hold none (their stored rows, if any, are replaced by none): a step's memory
    is bounded by its shard, whatever the number of portfolios (choose PERF_SHARDS for it);
    `owners` maps portfolio_id to shard."""
    members = owners.groupby("shard")["portfolio_id"].agg(list)
    empty = []
    for shard in shards:
        if shard in members.index:
            yield (shard,), members[shard]
        else:
            empty.append(shard)
    if empty:
        yield tuple(empty), []


def portfolio_shards(transactions: pd.DataFrame, store: PartitionStore) -> pd.DataFrame:
    """Each portfolio with transactions, and its shard."""
    ids = pd.unique(transactions["portfolio_id"])
    return pd.DataFrame({"portfolio_id": ids, "shard": store.shard_of(ids)})


def scope(
    context: OpExecutionContext,
    store: PartitionStore,
    transactions: pd.DataFrame,
    prices: pd.DataFrame,
) -> tuple[tuple[str, ...], pd.Timestamp, pd.Timestamp]:
    """(shards, first day, last day) of the run (partitions.run_scope), its last day rolled
    back to a business day."""
    months = context.partition_key_range
    shards, start, end = run_scope(
        context.run.tags,
        (months.start, months.end),
        store.shard_names(),
        default_as_of(transactions, prices),
    )
    return shards, start, as_of_day(end)


@dataclass(frozen=True)
class Chunk:
    """What one step computes: its shards, their portfolios, and the run's business days
    start..end (decided once, in run_chunks). Passed between steps as JSON (as_output)."""

    shards: tuple[str, ...]
    portfolios: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp

    def as_output(self) -> dict[str, Any]:
        return {
            "shards": list(self.shards),
            "portfolios": list(self.portfolios),
            "start": f"{self.start:%Y-%m-%d}",
            "end": f"{self.end:%Y-%m-%d}",
        }

    @classmethod
    def of(cls, output: dict[str, Any]) -> "Chunk":
        return cls(
            tuple(output["shards"]),
            tuple(output["portfolios"]),
            pd.Timestamp(output["start"]),
            pd.Timestamp(output["end"]),
        )

    def shard_column(self, frame: pd.DataFrame, store: PartitionStore) -> np.ndarray:
        """The shard of each row's portfolio_id: one CRC-32 per portfolio of the chunk, not
        per row."""
        ids = list(self.portfolios)
        return (
            frame["portfolio_id"].map(dict(zip(ids, store.shard_of(ids), strict=True))).to_numpy()
        )


@op(
    ins={"after": In(Nothing)},
    out=DynamicOut(dict),
    description="The run's shards in chunks, one step each.",
)
def run_chunks(
    context: OpExecutionContext,
    transactions: pd.DataFrame,
    prices: pd.DataFrame,
    partition_store: PartitionStore,
) -> Iterator[DynamicOutput]:
    shards, start, end = scope(context, partition_store, transactions, prices)
    context.log.info(f"{len(shards)} shards, {start:%Y-%m-%d} .. {end:%Y-%m-%d}")
    owners = portfolio_shards(transactions, partition_store)
    for chunk, members in shard_chunks(shards, owners):
        yield DynamicOutput(
            Chunk(chunk, tuple(members), start, end).as_output(),
            mapping_key=f"{chunk[0]}_{chunk[-1]}",
        )


def findings(frame: pd.DataFrame) -> dict[str, Any]:
    """A check's offending rows as a JSON summary: their count, the first PREVIEW_ROWS as
    cells, and their schema ([name, type] pairs)."""
    return {
        "rows": len(frame),
        "head": records(frame.head(PREVIEW_ROWS)),
        "schema": schema_pairs(frame),
    }


def check_result(
    asset: str,
    check: str,
    severity: AssetCheckSeverity,
    found: list[dict[str, Any]],
    limits: dict[str, float],
) -> AssetCheckResult:
    """One check's result over every chunk's findings: the offending rows observed against
    the threshold (none), the rule's `limits`, and the first offending rows as a table."""
    rows = sum(part["rows"] for part in found)
    offending = [part for part in found if part["rows"]]
    shown = [row for part in offending for row in part["head"]][:PREVIEW_ROWS]
    schema = schema_of(offending[0]["schema"]) if offending else None
    return AssetCheckResult(
        check_name=check,
        asset_key=asset,
        passed=rows == 0,
        severity=severity,
        metadata=check_metadata(rows, schema, shown, **limits),
    )


def written(part: Chunk, frame: pd.DataFrame, day: str) -> dict[str, Any]:
    """What a chunk step wrote, for its run's partition metadata: its shards, its days,
    its rows per month of the `day` column, and the columns' schema."""
    return {
        "shards": list(part.shards),
        "start": f"{part.start:%Y-%m-%d}",
        "end": f"{part.end:%Y-%m-%d}",
        "rows_by_month": rows_by_month(frame[day]),
        "schema": schema_pairs(frame),
    }


def last_day(chunks: list[dict[str, Any]]) -> dt.date | None:
    """The run's last business day (every chunk has the run's days), None without chunks."""
    return max((dt.date.fromisoformat(part["end"]) for part in chunks), default=None)


def whole_store_on_last_day(
    context: OpExecutionContext,
    store: PartitionStore,
    table: str,
    chunks: list[dict[str, Any]],
    columns: list[str],
) -> pd.DataFrame | None:
    """Every shard's rows of `table` on the run's last day, for the figures of the whole
    book; None without chunks, or (with a warning) when a run over other shards removed a
    month file while it was read: figures for the UI never fail a run."""
    day = last_day(chunks)
    if day is None:
        return None
    try:
        return store.read(table, store.shard_names(), day, day, columns)
    except FileNotFoundError as exc:
        context.log.warning(f"no {table} figures of the whole store on {day}: {exc}")
        return None


def partition_outputs(
    context: OpExecutionContext,
    store: PartitionStore,
    table: str,
    chunks: list[dict[str, Any]],
    figures: dict[str, MetadataValue],
) -> list[Output | AssetMaterialization]:
    """The done step's output, with each partition (month) the run materializes given its own
    metadata (metadata.partition_metadata, with the table's location), then the
    materialization of the run's last month with `figures` as well: a ranged run's partitions
    do not all repeat its totals. That one comes after the output because Dagster emits the
    events of a ranged run's partitions in no set order (a dynamic partition range is a set),
    and it must be the asset's latest materialization. Both carry the run id as their data
    version: the data is what this run wrote."""
    version = DataVersion(context.run_id)
    output = Output(None, "result", data_version=version)
    keys = sorted(context.partition_keys)  # "YYYY-MM": the text order is the calendar's
    if not keys:
        return [output]
    meta = partition_metadata(keys, chunks, location_metadata(*store.location(table)))
    last = keys[-1]
    asset_context = AssetExecutionContext(context)
    for key in keys[:-1]:
        asset_context.add_asset_metadata(meta[key], partition_key=key)
    latest = AssetMaterialization(
        asset_key=table,
        partition=last,
        metadata=meta[last] | figures,
        tags={DATA_VERSION_TAG: version.value, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"},
    )
    return [output, latest]
