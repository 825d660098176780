"""The IO manager of every unpartitioned asset and op output: Parquet for tables, JSON for
small values, in a local folder or under an S3 prefix (perf_pipeline.resources.blobs).

An asset is stored at ``<root>/<key path joined by '/'>.parquet`` (the whole key: no two
assets collide); an op output that is not an asset at
``<root>/_runs/<run id>/<step>/<output>[/<mapping key>]`` (each dynamic output its own file).
Its materializations carry the file's location, row count and column schema
(perf_pipeline.assets.metadata.stored_table). What it writes it loads back; a missing
upstream is an error that names it and where it was looked for. Nothing is pickled: a
writer of the bucket can plant data, never code.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field, PrivateAttr

from perf_pipeline.assets.metadata import stored_table
from perf_pipeline.resources.blobs import Blobs, open_root
from perf_pipeline.resources.duckdb_catalog import ensure_view
from perf_pipeline.resources.parquet_store import from_parquet, read_listed, to_parquet

_VIEWS: set[tuple[str, str, str]] = set()
"""Views this process made already (a view reads whatever file is there when queried)."""
_DECODED: OrderedDict[tuple[str, str, str], pd.DataFrame] = OrderedDict()
DECODED_TABLES = 4  # the input tables a run's steps load: transactions, prices, ...


def _decoded(blobs: Blobs, key: str, stamp: str) -> pd.DataFrame:
    """A stored table, decoded once per process and version (`stamp`), the last
    DECODED_TABLES kept: the shard steps of an in-process run share it. Callers take a
    shallow copy, which pandas' copy-on-write keeps from changing the cached frame."""
    name = (blobs.uri, key, stamp)
    if name not in _DECODED:
        _DECODED[name] = read_listed(blobs, key)
        while len(_DECODED) > DECODED_TABLES:
            _DECODED.popitem(last=False)
    _DECODED.move_to_end(name)
    return _DECODED[name]


class MissingUpstreamError(FileNotFoundError):
    """An input whose upstream was never materialized (or was deleted)."""


class ParquetIOManager(ConfigurableIOManager):
    """DataFrames as Parquet, anything else JSON-serializable as JSON."""

    root: str = Field(description="Folder or s3://bucket/prefix of the pipeline's tables.")
    endpoint_url: str | None = Field(default=None, description="S3 endpoint (an emulator).")
    catalog: str | None = Field(
        default=None,
        description="DuckDB file in which each stored table gets a view (local target).",
    )

    _blobs: Blobs | None = PrivateAttr(default=None)

    @property
    def blobs(self) -> Blobs:
        if self._blobs is None:
            self._blobs = open_root(self.root, self.endpoint_url)
        return self._blobs

    @staticmethod
    def _base(context: OutputContext | InputContext) -> str:
        if context.has_asset_key:
            return "/".join(context.asset_key.path)
        output = context if isinstance(context, OutputContext) else context.upstream_output
        return "_runs/" + "/".join(output.get_identifier())  # run, step, output, mapping key

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        if obj is None and context.has_asset_key:
            return  # an asset stored by its own code (the partition store): nothing to keep
        base = self._base(context)
        if isinstance(obj, pd.DataFrame):
            key = f"{base}.parquet"
            self.blobs.put(key, to_parquet(obj))
            name = None
            if self.catalog and context.has_asset_key:
                name = "__".join(context.asset_key.path)
                view = (self.catalog, name, f"{Path(self.root).resolve()}/{key}")
                if view not in _VIEWS:
                    ensure_view(*view)
                    _VIEWS.add(view)
            context.add_output_metadata(stored_table(obj, f"{self.blobs.uri}/{key}", name))
        else:
            self.blobs.put(f"{base}.json", json.dumps(obj, default=str).encode())

    def load_input(self, context: InputContext) -> Any:
        base = self._base(context)
        if context.has_asset_key:  # the large input tables: every shard step loads them
            stamp = self.blobs.stamp(f"{base}.parquet")
            if stamp is not None:
                return _decoded(self.blobs, f"{base}.parquet", stamp).copy(deep=False)
        data = self.blobs.get(f"{base}.parquet")
        if data is not None:
            return from_parquet(data)
        data = self.blobs.get(f"{base}.json")
        if data is not None:
            return json.loads(data)
        raise MissingUpstreamError(
            f"{base} has not been materialized: nothing at {self.blobs.uri}/{base}.parquet "
            "(materialize it first, e.g. `perf-pipeline run`)"
        )
