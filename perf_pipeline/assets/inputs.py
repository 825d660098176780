"""Input files read from the input root, validated, and split into accepted and rejected."""

import datetime as dt

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    MetadataValue,
    Output,
    RetryRequested,
    multi_asset,
)

from perf_pipeline.assets.groups import INPUTS
from perf_pipeline.assets.metadata import date_range, frame_check_metadata, preview
from perf_pipeline.increments import input_digests
from perf_pipeline.ingest import KINDS, ValidatedInputs
from perf_pipeline.ingest.incremental import validate_incrementally
from perf_pipeline.resources.ingest_cache import IngestCache
from perf_pipeline.resources.input_store import InputStore, transient_read_error
from perf_pipeline.resources.partition_store import PartitionStore
from perf_pipeline.resources.settings import CalculationSettings

DESCRIPTIONS = {
    "portfolios": "Validated portfolios, plus those inferred from transactions (inferred=true).",
    "transactions": "Validated transactions, one per transaction_id, with their source file and "
    "line.",
    "prices": "Validated security closes, one per security and date.",
    "benchmarks": "Validated benchmark index levels, one per benchmark and date.",
    "fx_rates": "Validated exchange rates (units of quote per unit of base), one per date, base "
    "and quote.",
    "rejected_rows": "Every input row that broke a rule: the row as it came, its file, line, rule "
    "and column.",
    "rejected_files": "Every input file that could not be read at all, with the reason.",
    "input_files": "Every file read: rows read, accepted, rejected and duplicates.",
    "input_digests": "Per portfolio shard and business day, a digest of every input row that "
    "moves its figures from that day on: what decides which partitions are "
    "stale (perf_pipeline.increments).",
}
DATE_COLUMNS = {
    "transactions": "trade_date",
    "prices": "date",
    "benchmarks": "date",
    "fx_rates": "date",
    "input_digests": "date",
}
RECONCILE = "rows_reconcile"
READ_RETRIES = 3
READ_RETRY_DELAY_S = 2.0
"""A transient read failure is retried READ_RETRIES times, after 2, 4, 8 seconds."""


@multi_asset(
    outs={
        name: AssetOut(description=text, group_name=INPUTS, kinds={"pandas", "parquet"})
        for name, text in DESCRIPTIONS.items()
    },
    check_specs=[
        AssetCheckSpec(
            RECONCILE,
            asset="input_files",
            blocking=True,
            description="For every file: rows read = rows accepted + rows rejected.",
        )
    ],
)
def inputs(
    context: AssetExecutionContext,
    input_store: InputStore,
    ingest_cache: IngestCache,
    calculation_settings: CalculationSettings,
    partition_store: PartitionStore,
):
    """Read every new input file and validate it (docs/data.md); rejects are kept, never dropped."""
    today = dt.datetime.now(dt.UTC).date()
    try:
        report = validate_incrementally(input_store, ingest_cache.cache(), today=today)
    except Exception as exc:  # only a transient read is retried: a bad file fails once
        if not transient_read_error(exc):
            raise
        wait = READ_RETRY_DELAY_S * 2**context.retry_number
        raise RetryRequested(max_retries=READ_RETRIES, seconds_to_wait=wait) from exc
    context.log.info(
        f"input files: {len(report.files_read)} read and validated, "
        f"{report.files_cached} from the ingest cache, {report.blobs_pruned} cache blobs pruned"
    )
    result = report.inputs
    digests = input_digests(
        result.portfolios,
        result.transactions,
        result.prices,
        result.benchmarks,
        result.fx_rates,
        shards=partition_store.shards,
        first_day=partition_store.start,
        settings=calculation_settings.fingerprint(),
    )
    for name in DESCRIPTIONS:
        frame: pd.DataFrame = digests if name == "input_digests" else getattr(result, name)
        meta: dict = {}  # the IO manager adds the location, row count and column schema
        if name in DATE_COLUMNS:
            meta |= date_range(frame[DATE_COLUMNS[name]])
        if name == "rejected_rows":
            meta["by_rule"] = preview(
                frame["rule"].value_counts().rename_axis("rule").reset_index(name="rows")
            )
            meta["preview"] = preview(frame)
        if name == "rejected_files":
            meta["preview"] = preview(frame)
        if name == "input_files":
            meta |= file_counts(result)
        if name == "fx_rates":
            meta |= fx_rates_metadata(frame, result.rejected_rows, today)
        yield Output(frame, output_name=name, metadata=meta)
    yield check_input_files_reconcile(result)


def file_counts(result: ValidatedInputs) -> dict[str, MetadataValue]:
    """What the input_files materialization plots per run: files read and rejected whole,
    rows read and rejected, and the first files as a table."""
    files = result.input_files
    return {
        "files": MetadataValue.int(len(files)),
        "files_rejected": MetadataValue.int(len(result.rejected_files)),
        "rows_read": MetadataValue.int(int(files["rows_read"].sum())),
        "rows_rejected": MetadataValue.int(len(result.rejected_rows)),
        "preview": preview(files),
    }


def rate_freshness(fx_rates: pd.DataFrame, today: dt.date) -> pd.DataFrame:
    """Per (base, quote) pair: its latest rate date and that date's age in business days
    (Monday to Friday) on ``today``, ``np.busday_count(latest, today)`` (0 for a rate dated
    tomorrow); stalest first."""
    latest = fx_rates.groupby(["base", "quote"], sort=True)["date"].max().reset_index()
    latest = latest.rename(columns={"date": "latest_date"})
    days = latest["latest_date"].to_numpy(dtype="datetime64[D]")
    ages = np.busday_count(days, np.datetime64(today, "D"))
    latest["age_business_days"] = np.maximum(ages, 0)
    return latest.sort_values(["latest_date", "base", "quote"], kind="stable").reset_index(
        drop=True
    )


def fx_rates_metadata(
    fx_rates: pd.DataFrame, rejected_rows: pd.DataFrame, today: dt.date
) -> dict[str, object]:
    """The rates' freshness for the UI: rows rejected, pairs, the age in business days of the
    stalest and of the freshest pair's latest rate (numbers, so that they plot over runs),
    and the latest date of every pair."""
    freshness = rate_freshness(fx_rates, today)
    meta: dict[str, object] = {
        "rejected": int((rejected_rows["kind"] == "fx_rates").sum()),
        "pairs": len(freshness),
        "latest_per_pair": preview(freshness),  # a table: dates shown as dates
    }
    if len(freshness):
        ages = freshness["age_business_days"]
        meta["stalest_pair_age_business_days"] = int(ages.max())
        meta["freshest_pair_age_business_days"] = int(ages.min())
        meta["stalest_pair_latest_date"] = str(freshness["latest_date"].iloc[0].date())
    return meta


def check_input_files_reconcile(result: ValidatedInputs) -> AssetCheckResult:
    """Recount each file's accepted and rejected rows from the output tables.

    Accepted rows are counted where they landed (rows whose source_file is the file, plus the
    identical re-deliveries collapsed into them); rejected rows in rejected_rows. Files
    rejected whole read no rows.
    """
    files = result.input_files.set_index("file")
    accepted = pd.Series(0, index=files.index, dtype="int64")
    for kind in KINDS:
        table: pd.DataFrame = getattr(result, kind)
        of_kind = files.loc[files["kind"] == kind]
        if "source_file" in table.columns:
            landed = table["source_file"].value_counts()
            accepted = accepted.add(landed, fill_value=0).add(of_kind["duplicates"], fill_value=0)
        else:  # portfolios carry no source file: take the validator's count, duplicates included
            accepted = accepted.add(of_kind["rows_accepted"], fill_value=0)
    rejected = result.rejected_rows["file"].value_counts().reindex(files.index, fill_value=0)
    counts = pd.DataFrame(
        {
            "file": files.index,
            "rows_read": files["rows_read"].to_numpy(),
            "accepted": accepted.reindex(files.index, fill_value=0).to_numpy(dtype="int64"),
            "rejected": rejected.to_numpy(dtype="int64"),
        }
    )
    off = counts.loc[counts["rows_read"] != counts["accepted"] + counts["rejected"]]
    return AssetCheckResult(
        check_name=RECONCILE,
        asset_key="input_files",
        passed=off.empty,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "files": MetadataValue.int(len(counts)),
            **frame_check_metadata(off),
        },
    )
