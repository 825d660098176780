"""Where the pipeline's own files live: a local folder or an S3 prefix, behind one small
interface (list, get, put, delete by key), so the Parquet store and the IO manager do not
care which.

A put is atomic on both: a local file is written beside its final name and renamed over it
(``os.replace``), an S3 PUT replaces the object whole. A reader therefore sees a file's old
or new content, never half of it, and a run killed at any point leaves whole files only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol


class Blobs(Protocol):
    """Keys are '/'-separated paths below the root."""

    uri: str

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        """Keys under `prefix` in key order, after `start_after` when given."""
        ...

    def get(self, key: str) -> bytes | None:
        """The content of `key`, None when it does not exist."""
        ...

    def put(self, key: str, data: bytes) -> None: ...

    def delete(self, key: str) -> None: ...


class LocalBlobs:
    """Files below a local folder."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        folder = self.root / prefix
        if not folder.is_dir():
            return iter(())
        keys = sorted(
            path.relative_to(self.root).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )
        return (key for key in keys if start_after is None or key > start_after)

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
        partial.write_bytes(data)
        os.replace(partial, path)  # atomic: readers see the old file or the new one

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)


class S3Blobs:
    """Objects under ``s3://bucket/prefix``, through a boto3 S3 client (its retry policy and
    timeouts are the client's); listings paginate."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self, prefix: str, start_after: str | None = None) -> Iterator[str]:
        kwargs = {"Bucket": self.bucket, "Prefix": self._key(prefix)}
        if start_after is not None:
            kwargs["StartAfter"] = self._key(start_after)
        skip = len(self.prefix) + 1 if self.prefix else 0
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
            for entry in page.get("Contents", []):
                yield entry["Key"][skip:]

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))


def open_root(root: str, endpoint_url: str | None = None) -> Blobs:
    """The Blobs of a root: ``s3://bucket/prefix`` (a client built by dagster-aws's
    S3Resource, with `endpoint_url` for an emulator) or a local folder."""
    if root.startswith("s3://"):
        from dagster_aws.s3 import S3Resource

        bucket, _, prefix = root[len("s3://") :].partition("/")
        return S3Blobs(S3Resource(endpoint_url=endpoint_url).get_client(), bucket, prefix)
    return LocalBlobs(root)
