"""The run that input objects start, shared by the S3 and SQS sensors (docs/api.md).

A run covers a set of objects, each named by its key (relative to the input root) and ETag.
Its identity is the digest of the sorted ``key@etag`` lines, so the same set always makes the
same run key, and its tags name the objects. For now a run asks for the whole job; once the
assets are partitioned, ``objects_run_request`` is the one place that turns the objects into
the partitions they touch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC

from dagster import RunRequest

from perf_contract.run_config import run_request_config
from perf_contract.tags import AS_OF_TAG, REQUEST_ID_TAG
from perf_contract.tags import PORTFOLIO_IDS_TAG as PORTFOLIO_IDS_TAG  # re-exported
from perf_contract.tags import REQUESTED_BY_TAG as REQUESTED_BY_TAG  # re-exported
from perf_contract.tags import START_TAG as START_TAG  # re-exported
from perf_pipeline.ingest import KINDS
from perf_pipeline.resources.input_store import INPUT_SUFFIXES, InputObject

OBJECTS_TAG = "perf/s3_objects"
KEYS_TAG = "perf/s3_keys"
DIGEST_TAG = "perf/s3_digest"
MAX_TAG_CHARS = 1024
"""Longest tag value written; the UI shows tags as chips and run storage indexes them, so a
list of a thousand keys is cut (the digest still identifies the whole set)."""


def skip_reason(obj: InputObject) -> str | None:
    """Why an object under the root starts no run (None: it is an input file)."""
    if obj.kind not in KINDS:
        return f"{obj.path}: not below one of the input folders {', '.join(KINDS)}"
    if not obj.path.lower().endswith(INPUT_SUFFIXES):
        return f"{obj.path}: not a {' or '.join(INPUT_SUFFIXES)} file"
    return None


def object_line(obj: InputObject) -> str:
    """``key@etag``: one object version."""
    return f"{obj.path}@{obj.version}"


def upload_line(obj: InputObject) -> str:
    """``key@etag@last-modified`` (to the second, UTC): one upload of one object. The upload
    time tells apart an object rewritten back to earlier content (the same ETag again),
    which must run again although its key@etag has run before."""
    modified = obj.modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if obj.modified else ""
    return f"{object_line(obj)}@{modified}"


def objects_digest(objects: Sequence[InputObject], line=object_line) -> str:
    """SHA-256 (hex) of the sorted lines (``key@etag`` by default) joined by newlines."""
    lines = "\n".join(sorted(line(obj) for obj in objects))
    return hashlib.sha256(lines.encode()).hexdigest()


def keys_tag(objects: Sequence[InputObject], limit: int = MAX_TAG_CHARS) -> str:
    """The sorted keys joined by ", "; past ``limit`` characters, the first keys that fit and
    "... (+n more)"."""
    keys = sorted(obj.path for obj in objects)
    text = ", ".join(keys)
    if len(text) <= limit:
        return text
    shown: list[str] = []
    for key in keys:
        more = f"... (+{len(keys) - len(shown) - 1} more)"
        if len(", ".join([*shown, key, more])) > limit:
            break
        shown.append(key)
    return ", ".join([*shown, f"... (+{len(keys) - len(shown)} more)"])


def request_tags(request_id: str | None, as_of: str | None = None) -> dict[str, str]:
    """The request-id and as-of tags, for those given."""
    return {
        tag: value for tag, value in ((REQUEST_ID_TAG, request_id), (AS_OF_TAG, as_of)) if value
    }


def objects_run_request(
    objects: Sequence[InputObject],
    *,
    run_key: str | None = None,
    request_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> RunRequest:
    """The run for these objects: run key ``s3-<digest of the uploads>`` unless given (the SQS
    sensor passes the message id), tags naming the objects and their ``key@etag`` digest (plus
    ``tags``), and the whole job."""
    tags = {
        OBJECTS_TAG: str(len(objects)),
        KEYS_TAG: keys_tag(objects),
        DIGEST_TAG: objects_digest(objects),
        **request_tags(request_id),
        **(tags or {}),
    }
    run_key = run_key or f"s3-{objects_digest(objects, upload_line)}"
    return RunRequest(
        run_key=run_key, tags=tags, run_config=run_request_config(request_id=request_id)
    )


def chunks(objects: Sequence[InputObject], size: int) -> list[list[InputObject]]:
    """Consecutive slices of at most ``size`` objects, in the given order."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    return [list(objects[start : start + size]) for start in range(0, len(objects), size)]
