"""Validate the input root with a cache: each file is read and validated once per version.

:func:`validate_incrementally` lists every file of every kind with its identity
(:class:`InputStore`: path plus S3 ETag, or a local file's mtime_ns and size, from the listing
alone), takes the verdict of every file already seen from the cache, reads and validates only
the others (:func:`verdict.validate_files`, stored in the cache), and combines all verdicts
(:func:`combine.combine`): the result equals ``validate_inputs`` over every file. A changed
file has a new identity and is read again; a deleted file is not listed, so its rows are
gone, and its entry is pruned.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from perf_pipeline.ingest.cache import ValidatedFileCache, entry_key
from perf_pipeline.ingest.combine import combine
from perf_pipeline.ingest.reading import DEFAULT_MAX_FILE_BYTES, KINDS, RawFile
from perf_pipeline.ingest.validate import ValidatedInputs
from perf_pipeline.ingest.verdict import FileVerdict, validate_files

CACHE_READERS = 8
"""Cache entries fetched at once (threads: an S3 GET waits on the network, Parquet decoding
releases the GIL)."""


class _Listed(Protocol):
    path: str
    kind: str
    version: str
    size: int


class InputSource(Protocol):
    """What is needed of the input root (``resources.input_store.InputStore`` has it)."""

    def list_files(self, kind: str) -> list[_Listed]: ...

    def read(self, obj: _Listed) -> bytes: ...

    def uri(self, obj: _Listed) -> str: ...


@dataclass(frozen=True)
class IngestReport:
    """The validated tables and what it took: URIs read this time, verdicts from the cache,
    and cache blobs pruned."""

    inputs: ValidatedInputs
    files_read: list[str]
    files_cached: int
    blobs_pruned: int


def validate_incrementally(
    source: InputSource,
    cache: ValidatedFileCache | None,
    today: dt.date,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> IngestReport:
    """Every input file validated as ``validate_inputs`` would, reading only files whose
    identity the cache has not seen (all of them without a cache)."""
    listed = [(kind, obj) for kind in KINDS for obj in source.list_files(kind)]
    keys = [entry_key(source.uri(obj), kind, obj.version, max_file_bytes) for kind, obj in listed]
    found: list[FileVerdict | None] = [None] * len(keys)
    if cache is not None:
        with ThreadPoolExecutor(max_workers=CACHE_READERS) as pool:  # S3 GETs wait on the net
            found = list(pool.map(cache.get, keys))
    cached = [verdict for verdict in found if verdict is not None]
    missing = [
        (key, kind, obj)
        for key, (kind, obj), verdict in zip(keys, listed, found, strict=True)
        if verdict is None
    ]
    files = [RawFile(source.uri(obj), kind, source.read(obj)) for _, kind, obj in missing]
    fresh = validate_files(files, max_file_bytes)
    if cache is not None:
        for (key, _, _), verdict in zip(missing, fresh, strict=True):
            cache.put(key, verdict)
    inputs = combine(cached + fresh, today)
    pruned = cache.prune(set(keys)) if cache is not None else 0
    return IngestReport(inputs, [f.path for f in files], len(cached), pruned)
