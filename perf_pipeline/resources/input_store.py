"""The input root: a local folder or an ``s3://bucket/prefix``, read through one interface."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field

INPUT_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class InputObject:
    """One file under the input root: its path relative to the root, kind, version and size.

    ``version`` is the S3 ETag, or ``{mtime_ns}-{size}`` for a local file, so that a changed
    file is a new version.
    """

    path: str
    kind: str
    version: str
    size: int


class InputStore(ConfigurableResource):
    """Lists and reads the input files of each kind (data.md, Input layout).

    Every file below ``<root>/<kind>/``, in any sub-folder, is listed; the format is decided
    later from the file name, so a stray file is rejected with a reason rather than skipped.
    S3 listings are paginated.
    """

    root: str = Field(description="Input root: a folder or s3://bucket/prefix (PERF_INPUT).")
    s3: S3Resource = Field(
        default_factory=S3Resource,
        description="S3 client settings, used when the root is an s3:// URI.",
    )

    @property
    def is_s3(self) -> bool:
        return self.root.startswith("s3://")

    def _bucket_prefix(self) -> tuple[str, str]:
        bucket, _, prefix = self.root[len("s3://"):].partition("/")
        return bucket, prefix.strip("/")

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
            found.append(InputObject(
                path=path.relative_to(self.root).as_posix(), kind=kind,
                version=f"{stat.st_mtime_ns}-{stat.st_size}", size=stat.st_size,
            ))
        return found

    def _list_s3(self, kind: str) -> list[InputObject]:
        bucket, prefix = self._bucket_prefix()
        kind_prefix = f"{prefix}/{kind}/" if prefix else f"{kind}/"
        paginator = self.s3.get_client().get_paginator("list_objects_v2")
        found = []
        for page in paginator.paginate(Bucket=bucket, Prefix=kind_prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue
                relative = item["Key"][len(prefix) + 1:] if prefix else item["Key"]
                found.append(InputObject(relative, kind, item["ETag"].strip('"'), item["Size"]))
        return sorted(found, key=lambda obj: obj.path)

    def read(self, obj: InputObject) -> bytes:
        """The file's bytes."""
        if self.is_s3:
            bucket, prefix = self._bucket_prefix()
            key = f"{prefix}/{obj.path}" if prefix else obj.path
            return self.s3.get_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return (Path(self.root) / obj.path).read_bytes()

    def uri(self, obj: InputObject) -> str:
        """Where the file lives, for error messages and reject tables."""
        return f"{self.root.rstrip('/')}/{obj.path}"
