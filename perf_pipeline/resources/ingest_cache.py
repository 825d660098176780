"""Where the inputs asset keeps its verdicts on input files (perf_pipeline.ingest.cache)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from perf_pipeline.ingest.cache import ValidatedFileCache
from perf_pipeline.resources.blobs import open_root


class IngestCache(ConfigurableResource):
    """A folder or ``s3://bucket/prefix`` holding one Parquet entry per validated input file
    version; deleting it only costs one full validation on the next run."""

    root: str = Field(description="Cache root: a folder or s3://bucket/prefix (PERF_INGEST_CACHE).")
    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint URL for an emulator; None for AWS."
    )

    def cache(self) -> ValidatedFileCache:
        """The cache over this root."""
        return ValidatedFileCache(open_root(self.root, self.endpoint_url))
