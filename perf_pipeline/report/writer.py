"""Write the reports of the portfolios whose figures changed, and the index, to a sink.

Layout under the sink (a folder, or an S3 prefix):

    index.html                     every portfolio's latest report
    latest/<portfolio_id>.html     the latest report of each portfolio (stable name)
    <portfolio_id>/<as_of>.html    one file per portfolio and as-of date (and .pdf on request)
    assets/plotly.min.js, report.js, report.css, methodology.md   written once, shared
    manifest.json                  per portfolio: the fingerprint of its figures, its as-of
                                   date and its index row

A portfolio's fingerprint is a hash of its stored portfolio-level performance_metrics rows
(every calculation date and period, values only) and of REPORT_VERSION; a report is
rebuilt only when it differs from the manifest's, so reading one shard's metrics decides
which of its portfolios need their valuations read at all.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from plotly.offline import get_plotlyjs

from perf_pipeline.report.data import portfolios_of_shard, shard_for, shard_metrics
from perf_pipeline.report.figures import report_figures
from perf_pipeline.report.render import ASSETS, index_html, index_row, report_html
from perf_pipeline.resources.partition_store import PartitionStore

REPORT_VERSION = "1"  # change it when a report's content changes: every report is rebuilt
MANIFEST = "manifest.json"
INDEX = "index.html"
METHODOLOGY = Path(__file__).resolve().parents[2] / "docs" / "methodology.md"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".md": "text/markdown; charset=utf-8",
    ".pdf": "application/pdf",
}


class ReportSink(Protocol):
    """Where reports go: keys are '/'-separated paths under the sink's root."""

    def read(self, key: str) -> bytes | None: ...

    def write(self, key: str, body: bytes) -> None: ...

    def location(self, key: str) -> str: ...


@dataclass(frozen=True)
class FolderSink:
    """A local folder (beside the DuckDB file on the local target)."""

    root: Path

    def read(self, key: str) -> bytes | None:
        path = self.root / key
        return path.read_bytes() if path.exists() else None

    def write(self, key: str, body: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def location(self, key: str) -> str:
        return str((self.root / key).resolve())


@dataclass(frozen=True)
class S3Sink:
    """An S3 prefix (the aws target); `client` is a boto3 S3 client."""

    client: Any
    bucket: str
    prefix: str

    def _key(self, key: str) -> str:
        return f"{self.prefix.strip('/')}/{key}" if self.prefix.strip("/") else key

    def read(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def write(self, key: str, body: bytes) -> None:
        content_type = CONTENT_TYPES.get(Path(key).suffix, "application/octet-stream")
        self.client.put_object(
            Bucket=self.bucket, Key=self._key(key), Body=body, ContentType=content_type
        )

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


def sink_for(location: str, endpoint_url: str | None = None) -> ReportSink:
    """A FolderSink, or an S3Sink for an s3://bucket/prefix location."""
    if location.startswith("s3://"):
        import boto3

        bucket, _, prefix = location[len("s3://") :].partition("/")
        return S3Sink(boto3.client("s3", endpoint_url=endpoint_url), bucket, prefix)
    return FolderSink(Path(location))


def report_key(portfolio_id: str, as_of: str, suffix: str = ".html") -> str:
    """The key of one portfolio's report of one as-of date."""
    return f"{portfolio_id}/{as_of}{suffix}"


def latest_key(portfolio_id: str) -> str:
    """The stable key of a portfolio's latest report."""
    return f"latest/{portfolio_id}.html"


def fingerprint(metrics: pd.DataFrame) -> str:
    """A hash of one portfolio's stored metrics rows (values, in a fixed order)."""
    rows = metrics.sort_values(["calculation_date", "time_period"]).reset_index(drop=True)
    hashed = pd.util.hash_pandas_object(rows[sorted(rows.columns)], index=False)
    return f"{REPORT_VERSION}:{int(hashed.sum()) & (2**64 - 1):016x}:{len(rows)}"


@dataclass
class Written:
    """What one call wrote: the rebuilt and the unchanged portfolios, the index's location,
    the figures of each rebuilt report and the index's rows."""

    rebuilt: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    index: str = ""
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    pdfs: list[str] = field(default_factory=list)
    index_rows: list[dict[str, Any]] = field(default_factory=list)


def write_assets(sink: ReportSink) -> None:
    """The shared script, style and plotly.js, written once (again when plotly changes)."""
    plotly_js = get_plotlyjs().encode()
    if sink.read(f"{ASSETS}/plotly.min.js") != plotly_js:
        sink.write(f"{ASSETS}/plotly.min.js", plotly_js)
    static = resources.files("perf_pipeline.report") / "static"
    for name in ("report.js", "report.css"):
        body = (static / name).read_bytes()
        if sink.read(f"{ASSETS}/{name}") != body:
            sink.write(f"{ASSETS}/{name}", body)
    if METHODOLOGY.exists():
        sink.write(f"{ASSETS}/methodology.md", METHODOLOGY.read_bytes())


def write_reports(
    store: PartitionStore,
    portfolios: pd.DataFrame,
    benchmarks: pd.DataFrame,
    sink: ReportSink,
    portfolio_ids: Sequence[str] | None = None,
    as_of: dt.date | None = None,
    force: bool = False,
    pdf: bool = False,
) -> Written:
    """Rebuild the report of every portfolio (of `portfolio_ids`, default all) whose stored
    figures up to `as_of` (default: everything stored) changed since its last report, or
    all of them with `force`; then the index. Returns what was written."""
    manifest: dict[str, Any] = json.loads(sink.read(MANIFEST) or b"{}")
    wanted = sorted(portfolio_ids if portfolio_ids else portfolios["portfolio_id"].astype(str))
    known = set(portfolios["portfolio_id"].astype(str))
    unknown = [pid for pid in wanted if pid not in known]
    if unknown:
        raise ValueError(f"no such portfolio in the portfolios input: {', '.join(unknown[:20])}")
    shards = pd.Series(shard_for(store, wanted), index=wanted)
    write_assets(sink)
    done = Written()
    for shard, ids in shards.groupby(shards, sort=True):
        metrics = shard_metrics(store, str(shard), as_of)
        changed, prints = [], {}
        for pid, rows in metrics.loc[metrics["entity_id"].isin(list(ids.index))].groupby(
            "entity_id"
        ):
            prints[pid] = fingerprint(rows.drop(columns="entity_id"))
            if force or manifest.get(pid, {}).get("fingerprint") != prints[pid]:
                changed.append(pid)
            else:
                done.unchanged.append(pid)
        for data in portfolios_of_shard(
            store, str(shard), metrics, portfolios, benchmarks, changed, as_of
        ):
            pid, figures = data.portfolio_id, report_figures(data)
            day = figures["header"]["as_of"]
            page = report_html(figures).encode()
            sink.write(report_key(pid, day), page)
            previous = manifest.get(pid, {}).get("as_of") or ""
            if day >= previous:
                sink.write(latest_key(pid), page)
                manifest[pid] = {
                    "fingerprint": prints[pid],
                    "as_of": day,
                    "row": index_row(figures, latest_key(pid)),
                }
            if pdf:
                done.pdfs.append(write_pdf(sink, pid, day, page))
            done.rebuilt.append(pid)
            done.figures[pid] = figures
    sink.write(MANIFEST, json.dumps(manifest, sort_keys=True).encode())
    rows = [manifest[pid]["row"] for pid in sorted(manifest)]
    latest = max((row["as_of"] for row in rows), default=None)
    sink.write(INDEX, index_html(rows, latest).encode())
    done.index = sink.location(INDEX)
    done.index_rows = rows
    return done


def chromium() -> str | None:
    """The headless browser on PATH (Debian's chromium), or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def write_pdf(sink: ReportSink, portfolio_id: str, as_of: str, page: bytes) -> str:
    """Print one report to PDF with headless Chromium (offline: the page and its assets are
    copied into a temporary folder first) and store it beside the HTML; its location."""
    browser = chromium()
    if browser is None:
        raise RuntimeError("--pdf needs Chromium (the Debian package 'chromium') on PATH")
    with tempfile.TemporaryDirectory() as tmp:
        folder = FolderSink(Path(tmp))
        write_assets(folder)
        folder.write(latest_key(portfolio_id), page)
        html, out = Path(tmp) / latest_key(portfolio_id), Path(tmp) / "report.pdf"
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-pdf-header-footer",
                "--virtual-time-budget=10000",
                f"--print-to-pdf={out}",
                html.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        key = report_key(portfolio_id, as_of, ".pdf")
        sink.write(key, out.read_bytes())
    return sink.location(key)
