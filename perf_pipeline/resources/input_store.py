"""The input root: a local folder or an ``s3://bucket/prefix``, read through one interface."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from perf_pipeline.resources.aws_clients import is_transient

INPUT_SUFFIXES = (".csv", ".parquet")


class InputReadError(Exception):
    """An input file that cannot be read, for a reason a retry would not change."""


def transient_read_error(exc: BaseException) -> bool:
    """True for a failure that may pass on a second try: S3 throttling, 5xx answers, broken
    connections and timeouts (botocore has already retried them), a local read that timed out
    or lost its connection (a network mount), or a file that vanished between the listing and
    the read (the retry lists again). Access denied or an archived object are not transient:
    trying again gives the same answer."""
    if isinstance(exc, ClientError):
        vanished = exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}
        return vanished or is_transient(exc)
    return is_transient(exc) or isinstance(exc, TimeoutError | ConnectionError | FileNotFoundError)


@dataclass(frozen=True)
class InputObject:
    """One file under the input root: its path relative to the root, kind, version and size.

    ``version`` is the S3 ETag, or ``{mtime_ns}-{size}`` for a local file, so that a changed
    file is a new version. ``modified`` is S3's LastModified (tz-aware UTC) when listed from
    S3, else None.
    """

    path: str
    kind: str
    version: str
    size: int
    modified: datetime | None = None


class InputStore(ConfigurableResource):
    """Lists and reads the input files of each kind (docs/data.md, "Input layout").

    Every file below ``<root>/<kind>/``, in any sub-folder, is listed; the format is decided
    later from the file name, so a stray file is rejected with a reason rather than skipped.
    S3 listings are paginated (``page_size`` keys per ListObjectsV2 call).
    """

    root: str = Field(description="Input root: a folder or s3://bucket/prefix (PERF_INPUT).")
    s3: S3Resource = Field(
        default_factory=S3Resource,
        description="S3 client settings, used when the root is an s3:// URI.",
    )
    page_size: int = Field(
        default=1000,
        description="Keys per S3 ListObjectsV2 page (S3's maximum is 1,000).",
    )
    _s3_client: Any = PrivateAttr(default=None)

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def bucket_prefix(self) -> tuple[str, str]:
        """(bucket, key prefix without slashes) of an s3:// root."""
        bucket, _, prefix = self.root[len("s3://") :].partition("/")
        return bucket, prefix.strip("/")

    def _key(self, path: str) -> tuple[str, str]:
        """(bucket, key) of a path relative to the s3:// root."""
        bucket, prefix = self.bucket_prefix()
        return bucket, f"{prefix}/{path}" if prefix else path

    def _client(self) -> Any:
        """One S3 client for this resource's life (a run, a sensor tick), not one per call."""
        if self._s3_client is None:
            self._s3_client = self.s3.get_client()
        return self._s3_client

    def list_files(self, kind: str) -> list[InputObject]:
        """Every file of `kind`, sorted by path."""
        if self.is_s3:
            return self._list_s3(kind)
        folder = Path(self.root) / kind
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            stat = path.stat()
            found.append(
                InputObject(
                    path=path.relative_to(self.root).as_posix(),
                    kind=kind,
                    version=f"{stat.st_mtime_ns}-{stat.st_size}",
                    size=stat.st_size,
                )
            )
        return found

    def _list_s3(self, kind: str) -> list[InputObject]:
        return sorted(self._s3_objects(f"{kind}/", kind), key=lambda obj: obj.path)

    def list_s3_root(self) -> list[InputObject]:
        """Every object under the s3:// root, whatever its folder; ``kind`` is the first folder
        of its relative path ("" for an object directly under the root). Sorted by path."""
        return sorted(self._s3_objects("", None), key=lambda obj: obj.path)

    def _s3_objects(self, sub_prefix: str, kind: str | None) -> Iterator[InputObject]:
        """Paginated listing of the objects below ``<root>/<sub_prefix>`` (folder markers out)."""
        bucket, key_prefix = self._key(sub_prefix)
        prefix = self.bucket_prefix()[1]
        paginator = self._client().get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=bucket, Prefix=key_prefix, PaginationConfig={"PageSize": self.page_size}
        )
        for page in pages:
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    yield self._s3_object(item, prefix, kind)

    @staticmethod
    def _s3_object(item: dict[str, Any], prefix: str, kind: str | None) -> InputObject:
        relative = item["Key"][len(prefix) + 1 :] if prefix else item["Key"]
        folder = relative.split("/", 1)[0] if "/" in relative else ""
        return InputObject(
            relative,
            folder if kind is None else kind,
            item["ETag"].strip('"'),
            item["Size"],
            item["LastModified"],
        )

    def stat_s3(self, path: str) -> InputObject:
        """The object at ``path`` (relative to the s3:// root), from HeadObject; kind is its
        first folder. FileNotFoundError names the URI when there is no such object."""
        bucket, key = self._key(path)
        try:
            head = self._client().head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                raise FileNotFoundError(f"no object at s3://{bucket}/{key}") from exc
            raise
        item = {
            "Key": key,
            "ETag": head["ETag"],
            "Size": head["ContentLength"],
            "LastModified": head["LastModified"],
        }
        return self._s3_object(item, self.bucket_prefix()[1], None)

    def read(self, obj: InputObject) -> bytes:
        """The file's bytes. A failure that a second try cannot mend (access denied, an
        archived object) raises :class:`InputReadError` naming the file; a transient one
        (:func:`transient_read_error`) is raised as it came, to be retried."""
        try:
            if self.is_s3:
                bucket, key = self._key(obj.path)
                return self._client().get_object(Bucket=bucket, Key=key)["Body"].read()
            return (Path(self.root) / obj.path).read_bytes()
        except (ClientError, OSError) as exc:
            if transient_read_error(exc):
                raise
            raise InputReadError(f"cannot read {self.uri(obj)}: {exc}") from exc

    def uri(self, obj: InputObject) -> str:
        """Where the file lives, for error messages and reject tables."""
        return f"{self.root.rstrip('/')}/{obj.path}"
