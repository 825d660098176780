"""Portfolio reports: a tearsheet per portfolio and an index, from the stored outputs.

Downstream of performance_metrics (and the portfolios and benchmarks inputs); a run reads
the stored metrics shard by shard and rebuilds only the reports of portfolios whose figures
changed since their last report (perf_pipeline/report/writer.py). Written beside the DuckDB
file on the local target (a `reports` folder), under s3://<asset bucket>/reports on the aws
target, or where the run config's `location` says.
"""

import datetime as dt
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetSelection,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
)
from pydantic import Field

from perf_pipeline.report.writer import Written, sink_for, write_reports
from perf_pipeline.resources.parquet_store import ParquetStore

REPORTS = "reports"
REPORTS_JOB = "reports_job"
BAR_WIDTH = 20


class ReportConfig(Config):
    """What to report, and where."""

    location: str = Field(
        default="",
        description="Folder or s3://bucket/prefix of the reports; empty: beside the store "
        "(a 'reports' folder beside the DuckDB file, s3://<asset bucket>/reports on aws).",
    )
    portfolio_ids: list[str] = Field(default=[], description="Only these portfolios (all: [])")
    as_of: str = Field(default="", description="Report as of this date YYYY-MM-DD (latest: '')")
    pdf: bool = Field(default=False, description="Also print each rebuilt report to PDF.")
    force: bool = Field(
        default=False, description="Rebuild even reports whose figures are unchanged."
    )


def default_location(store: ParquetStore) -> str:
    """Beside the tables: ``data/perf_tables`` -> ``data/reports``, or
    ``s3://<bucket of the tables>/reports``."""
    if store.root.startswith("s3://"):
        bucket = store.root[len("s3://") :].partition("/")[0]
        return f"s3://{bucket}/{REPORTS}"
    return str(Path(store.root).parent / REPORTS)


def summary_markdown(written: Written, rows: list[dict]) -> str:
    """Best and worst portfolios by ITD TWR, with a bar of each (Unicode blocks: Markdown in
    the Dagster UI draws no chart), and what this run rebuilt."""
    ranked = sorted((r for r in rows if r["itd_twr"] is not None), key=lambda r: -r["itd_twr"])
    shown = ranked[:5] + [r for r in ranked[-5:] if r not in ranked[:5]]
    scale = max((abs(r["itd_twr"]) for r in shown), default=0) or 1
    table = pd.DataFrame(
        {
            "portfolio": [r["portfolio_id"] for r in shown],
            "ITD TWR": [format(r["itd_twr"], "+.2%") for r in shown],
            "": [
                ("▇" if r["itd_twr"] >= 0 else "░")
                * max(1, round(BAR_WIDTH * abs(r["itd_twr"]) / scale))
                for r in shown
            ],
            "as of": [r["as_of"] for r in shown],
        }
    )
    lines = [
        f"**{len(written.rebuilt)}** report(s) rebuilt, **{len(written.unchanged)}** unchanged; "
        f"index: `{written.index}`",
        "",
        "Best and worst portfolios by ITD TWR (▇ gain, ░ loss):",
        "",
        table.to_markdown(index=False) if shown else "_no portfolio has figures yet_",
    ]
    return "\n".join(lines)


@asset(
    group_name=REPORTS,
    kinds={"html"},
    deps=["performance_metrics"],
    ins={"portfolios": AssetIn(), "benchmarks": AssetIn()},
)
def portfolio_reports(
    context: AssetExecutionContext,
    config: ReportConfig,
    portfolios: pd.DataFrame,
    benchmarks: pd.DataFrame,
    partition_store: ParquetStore,
) -> MaterializeResult:
    """A tearsheet per portfolio (HTML, PDF on request) and an index, from the stored metrics."""
    location = config.location or default_location(partition_store)
    sink = sink_for(location, getattr(partition_store, "endpoint_url", None))
    written = write_reports(
        partition_store,
        portfolios,
        benchmarks,
        sink,
        portfolio_ids=config.portfolio_ids or None,
        as_of=dt.date.fromisoformat(config.as_of) if config.as_of else None,
        force=config.force,
        pdf=config.pdf,
    )
    context.log.info(f"reports rebuilt: {', '.join(written.rebuilt[:50]) or 'none'}")
    index = written.index
    return MaterializeResult(
        metadata={
            "index": MetadataValue.url(index)
            if index.startswith("s3://")
            else MetadataValue.path(index),
            "summary": MetadataValue.md(summary_markdown(written, written.index_rows)),
            "rebuilt": len(written.rebuilt),
            "unchanged": len(written.unchanged),
            "pdfs": len(written.pdfs),
        }
    )


reports_job = define_asset_job(
    REPORTS_JOB,
    selection=AssetSelection.assets(portfolio_reports),
    description="Rebuild the reports of the portfolios whose figures changed, and the index.",
)
