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

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DynamicOut,
    DynamicOutput,
    In,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    op,
)

from perf_pipeline.assets.metadata import PREVIEW_ROWS, preview
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
    """A check's offending rows as a summary: their count and the first PREVIEW_ROWS."""
    head = frame.head(PREVIEW_ROWS).to_json(orient="records", date_format="iso")
    return {"rows": len(frame), "head": head}


def check_result(
    asset: str,
    check: str,
    severity: AssetCheckSeverity,
    found: list[dict[str, Any]],
    metadata: dict[str, Any],
) -> AssetCheckResult:
    """One check's result over every chunk's findings: the offending row count, the
    threshold metadata, and the first offending rows."""
    rows = sum(part["rows"] for part in found)
    heads = [pd.DataFrame(json.loads(part["head"])) for part in found if part["rows"]]
    head = pd.concat(heads, ignore_index=True) if heads else pd.DataFrame()
    shown = preview(head.head(PREVIEW_ROWS))
    if rows > PREVIEW_ROWS:
        shown = MetadataValue.md(f"{shown.value}\n\n_{rows:,} rows in all_")
    return AssetCheckResult(
        check_name=check,
        asset_key=asset,
        passed=rows == 0,
        severity=severity,
        metadata={"rows": rows, **metadata, "offending_rows": shown},
    )
