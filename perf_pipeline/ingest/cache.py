"""Verdicts on input files kept as Parquet, by file identity, so a file is validated once.

An entry is keyed by :func:`entry_key`: a SHA-256 of the validation version
(:func:`validation_version`), the file's path (its URI), kind, version (S3 ETag, or a local
file's ``mtime_ns`` and size) and the reader's size limit. A changed file has a new version and
so a new key: it is read again, and a file no longer listed is simply not asked for (its
entry is removed by :meth:`ValidatedFileCache.prune`). A change of the rules changes the
validation version, and every entry is then a miss.

Each entry is up to three Parquet blobs under ``<version>/<key>/``: ``raw`` (the file's cells
as text, read only when a later rule rejects one of its records), ``failures`` (row-rule
failures, messages and record JSON; absent when there are none) and ``rows`` (the parsed
records, with the file's path, kind, size, failure count and the reason of a file rejected
whole in its schema metadata), written last: an entry without ``rows`` does not exist, and an
entry with a blob missing (pruned by a concurrent run) is a miss. A clean file costs one read.
No pickle: Parquet only.

``today`` plays no part in a key: :mod:`verdict` keeps verdicts free of the date upper bound,
which :mod:`combine` applies on every run.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from importlib import metadata
from pathlib import Path
from typing import Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from perf_pipeline.ingest.reading import RawTable
from perf_pipeline.ingest.verdict import FAILURE_COLUMNS, FileVerdict, failure_frame
from perf_pipeline.resources.blobs import Blobs

VALIDATION_VERSION: Final = "1"
"""Bump when the meaning of a cached verdict changes in a way the sources below do not show."""
_RULE_SOURCES: Final = ("reading.py", "schemas.py", "validate.py", "verdict.py", "cache.py")
_NAMES: Final = b"perf_pipeline.names"
_META: Final = b"perf_pipeline.file"


@functools.cache
def validation_version() -> str:
    """``VALIDATION_VERSION``, the versions of the packages that read and judge (pycountry's
    list of currency codes among them) and a digest of the source of
    the modules that decide a verdict: editing a rule invalidates every entry."""
    digest = hashlib.sha256()
    for name in _RULE_SOURCES:
        digest.update((Path(__file__).parent / name).read_bytes())
    packages = ("pandas", "pandera", "duckdb", "pyarrow", "pycountry")  # pycountry: ISO codes
    versions = [metadata.version(p) for p in packages]
    text = json.dumps([VALIDATION_VERSION, *versions, digest.hexdigest()])
    return "v" + hashlib.sha256(text.encode()).hexdigest()[:16]


def entry_key(path: str, kind: str, version: str, max_file_bytes: int) -> str:
    """The cache key of one version of one input file (module docstring)."""
    identity = json.dumps([validation_version(), path, kind, version, max_file_bytes])
    return hashlib.sha256(identity.encode()).hexdigest()


class ValidatedFileCache:
    """File verdicts under a :class:`blobs.Blobs` root (a folder or an S3 prefix)."""

    def __init__(self, blobs: Blobs) -> None:
        self.blobs = blobs

    def _blob(self, key: str, name: str) -> str:
        return f"{validation_version()}/{key}/{name}.parquet"

    def get(self, key: str) -> FileVerdict | None:
        """The verdict stored under ``key``; None when it is not (wholly) there."""
        rows_data = self.blobs.get(self._blob(key, "rows"))
        if rows_data is None:
            return None
        table = pq.read_table(io.BytesIO(rows_data))
        meta = json.loads(table.schema.metadata[_META])
        failures = failure_frame()
        if meta["failures"]:
            failures_data = self.blobs.get(self._blob(key, "failures"))
            if failures_data is None:
                return None
            stored = _read(failures_data)
            failures = failure_frame({name: stored[name].to_numpy() for name in FAILURE_COLUMNS})
        return FileVerdict(
            path=meta["path"],
            kind=meta["kind"],
            size_bytes=meta["size_bytes"],
            reason=meta["reason"],
            rows=table.replace_schema_metadata(None),
            failures=failures,
            load_raw=functools.partial(self._raw, key, meta["path"]),
        )

    def put(self, key: str, verdict: FileVerdict) -> None:
        """Store ``verdict`` under ``key`` (``rows``, which carries the file's metadata, last:
        a partial entry is a miss)."""
        if verdict.reason is None:
            self.blobs.put(self._blob(key, "raw"), _raw_bytes(verdict.load_raw()))
        if len(verdict.failures):
            failures = verdict.failures.astype({n: object for n in FAILURE_COLUMNS[2:]})
            self.blobs.put(self._blob(key, "failures"), _write(pa.Table.from_pandas(failures)))
        meta = {
            "path": verdict.path,
            "kind": verdict.kind,
            "size_bytes": verdict.size_bytes,
            "reason": verdict.reason,
            "failures": len(verdict.failures),
        }
        rows = verdict.rows.replace_schema_metadata({_META: json.dumps(meta)})
        self.blobs.put(self._blob(key, "rows"), _write(rows))

    def _raw(self, key: str, path: str) -> RawTable:
        data = self.blobs.get(self._blob(key, "raw"))
        if data is None:
            raise FileNotFoundError(
                f"the cached cells of {path} are gone from {self.blobs.uri} (removed by a "
                "concurrent run's prune?): run again to read the file anew"
            )
        return _raw_table(data)

    def prune(self, keep: set[str]) -> int:
        """Delete every entry whose key is not in ``keep``, and every entry of another
        validation version; the number of blobs deleted."""
        current = validation_version()
        deleted = 0
        for blob in list(self.blobs.list("")):
            parts = blob.split("/")
            if len(parts) == 3 and parts[0] == current and parts[1] in keep:
                continue
            self.blobs.delete(blob)
            deleted += 1
        return deleted


def _write(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


def _read(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas()


def _raw_bytes(table: RawTable) -> bytes:
    """The cells under positional names (a header may hold any name), the header in the
    schema metadata; ``__line`` and, for Parquet input, ``__json``."""
    names = list(table.text.columns)
    columns = {
        f"c{i}": pa.array(table.text.iloc[:, i].to_numpy(dtype=object), pa.string())
        for i in range(len(names))
    }
    columns["__line"] = pa.array(table.lines, pa.int64())
    if table.row_json is not None:
        columns["__json"] = pa.array(table.row_json.to_numpy(dtype=object), pa.string())
    out = pa.table(columns).replace_schema_metadata({_NAMES: json.dumps(names)})
    return _write(out)


def _raw_table(data: bytes) -> RawTable:
    table = pq.read_table(io.BytesIO(data))
    names = json.loads(table.schema.metadata[_NAMES])
    text = pd.DataFrame(
        {name: table.column(f"c{i}").to_numpy(zero_copy_only=False) for i, name in enumerate(names)}
    ).astype(object)
    text = text.where(text.notna(), None)
    row_json = (
        pd.Series(table.column("__json").to_numpy(zero_copy_only=False), dtype=object)
        if "__json" in table.column_names
        else None
    )
    return RawTable(
        text=text,
        lines=table.column("__line").to_numpy(),
        row_json=row_json,
        bad_rows=pd.DataFrame(columns=["line", "message", "row"]).astype({"line": "int64"}),
    )
