"""The partition store: one Parquet file per table, shard and month, in a local folder or
under an S3 prefix (perf_pipeline.resources.blobs).

Layout: ``<root>/<table>/<shard>/<YYYY-MM>.parquet`` holds the rows of `shard` whose day
(``DATE_COLUMNS[table]``) falls in that month, with Arrow types (strings stay Arrow strings
until pandas needs them; dates are timestamps; no Python objects are stored). A run's shards
are disjoint from any concurrent run's, so no two runs write one file. Nothing is ever
unpickled: a Parquet file is data, whoever wrote it.

``replace`` is atomic per file (a put is), not per table: a step killed half-way leaves some
months rewritten, each whole. The assets write ``computed_from`` last, so the next plan finds
those partitions stale and recomputes them; a clean rerun leaves exactly the files a clean
run leaves.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import Field, PrivateAttr

from perf_pipeline.resources.blobs import Blobs, open_root
from perf_pipeline.resources.duckdb_catalog import (
    REBUILD,
    OldLayoutError,
    check_layout,
    ensure_view,
)
from perf_pipeline.resources.partition_store import (
    DATE_COLUMNS,
    TABLE_COLUMNS,
    PartitionStore,
    Slice,
)

SUFFIX = ".parquet"


@dataclass
class _Month:
    """One month file of one shard touched by a replace: what it held (None when it does
    not exist or was not read) and the new rows that go in."""

    key: str
    label: str
    exists: bool
    old: pd.DataFrame | None
    new: pd.DataFrame


def to_parquet(frame: pd.DataFrame) -> bytes:
    """A frame as Parquet bytes (no index; zstd)."""
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()


def from_parquet(data: bytes, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Parquet bytes as a frame, with only `columns` decoded when given."""
    table = pq.read_table(io.BytesIO(data), columns=list(columns) if columns else None)
    return table.to_pandas()


def read_listed(blobs: Blobs, key: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """A Parquet file that was listed (or stat'ed) a moment ago; FileNotFoundError naming it
    when it went in between."""
    data = blobs.get(key)
    if data is None:
        raise FileNotFoundError(f"{blobs.uri}/{key} vanished while being read")
    return from_parquet(data, columns)


class ParquetStore(PartitionStore):
    """PartitionStore over Parquet month files in a folder or an S3 prefix."""

    root: str = Field(description="Folder or s3://bucket/prefix of the pipeline's tables.")
    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint (an emulator); None: AWS."
    )
    threads: int = Field(default=8, description="Concurrent reads of month files.")
    catalog: str | None = Field(
        default=None,
        description="DuckDB file in which each table gets a view over its files (local target).",
    )

    _blobs: Blobs | None = PrivateAttr(default=None)
    _views: set[str] = PrivateAttr(default_factory=set)

    @property
    def blobs(self) -> Blobs:
        if self._blobs is None:
            self._blobs = open_root(self.root, self.endpoint_url)
        return self._blobs

    # --- layout ---------------------------------------------------------------------------

    @staticmethod
    def _folder(table: str, shard: str) -> str:
        return f"{table}/{shard}/"

    def _months(self, table: str, shard: str, first: str | None, last: str | None) -> list[str]:
        """The months ('YYYY-MM') of the shard's files from `first` to `last` (either open
        when None): one listing that starts at `first` and stops after `last`."""
        folder = self._folder(table, shard)
        after = folder + first if first is not None else None  # 'YYYY-MM' < 'YYYY-MM.parquet'
        found = []
        for key in self.blobs.list(folder, start_after=after):
            name = key[len(folder) :]
            if not name.endswith(SUFFIX) or "/" in name:
                continue
            month = name[: -len(SUFFIX)]
            if last is not None and month > last:
                break
            found.append(month)
        return found

    def _get_all(
        self, keys: Sequence[str], columns: Sequence[str] | None = None
    ) -> list[pd.DataFrame]:
        with ThreadPoolExecutor(max_workers=max(1, self.threads)) as pool:
            return list(pool.map(lambda key: read_listed(self.blobs, key, columns), keys))

    # --- the PartitionStore interface -----------------------------------------------------

    def read(
        self,
        table: str,
        shards: Sequence[str],
        start: dt.date | None = None,
        end: dt.date | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of `shards` with day in start..end, ordered by day: reads only the month
        files in that range, and of them only `columns` (and the day)."""
        keys = [
            self._folder(table, shard) + month + SUFFIX
            for shard in shards
            for month in self._months(table, shard, _month(start), _month(end))
        ]
        day = DATE_COLUMNS[table]
        wanted = list(dict.fromkeys([*columns, day])) if columns else None
        frames = [
            _rows(frame, table, Slice((), start, end)) for frame in self._get_all(keys, wanted)
        ]
        frames = [frame for frame in frames if len(frame)]
        if not frames:
            return pd.DataFrame(columns=list(columns or []))
        rows = pd.concat(frames, ignore_index=True)
        rows = rows.sort_values(day, kind="stable", ignore_index=True)
        return rows[list(columns)] if columns else rows

    def replace(
        self, table: str, frame: pd.DataFrame, where: Slice, keep_created_at: Sequence[str] = ()
    ) -> int:
        """Rewrite the month files the slice touches. A month the slice covers whole is
        written from `frame` alone (its old file is read only to keep created_at); a partial
        month keeps its rows outside the slice. A file left empty is deleted. Returns the
        rows of the files written (counting the whole table would read all of it)."""
        if (
            len(frame)
            and not (
                _in_slice(frame, table, where) & frame["shard"].isin(where.shards).to_numpy()
            ).all()
        ):
            raise ValueError(f"rows of the {table} frame lie outside the slice {where}")
        written = 0
        for month in self._touched(table, frame, where, bool(keep_created_at)):
            rows = _merge(month, table, where, keep_created_at)
            if rows.empty:
                if month.exists:
                    self.blobs.delete(month.key)
                continue
            self.blobs.put(month.key, to_parquet(rows))
            written += len(rows)
        if written and self.catalog and table not in self._views:
            ensure_view(self.catalog, table, f"{Path(self.root).resolve()}/{table}/*/*{SUFFIX}")
            self._views.add(table)
        return written

    def location(self, table: str) -> tuple[str, str | None]:
        """``<root>/<table>`` and, with a catalog, the DuckDB view named `table`."""
        return f"{self.blobs.uri}/{table}", table if self.catalog else None

    def check_layout(self) -> None:
        """OldLayoutError when the root or the catalog was written by an earlier layout:
        pickled month objects, tables inside the DuckDB file, or a table whose files lack
        columns of its current schema (TABLE_COLUMNS; e.g. daily_valuations without
        ``currency`` from before several currencies). One file per such table is read."""
        if self.catalog:
            check_layout(self.catalog)
        for key in self.blobs.list("computed_from/"):
            if key.endswith(".pkl"):
                raise OldLayoutError(
                    f"{self.blobs.uri} holds pickled objects ({key}) written by an earlier "
                    f"version of perf-pipeline, which this one never reads; {REBUILD}."
                )
        for table, columns in TABLE_COLUMNS.items():
            key = next((k for k in self.blobs.list(f"{table}/") if k.endswith(SUFFIX)), None)
            if key is None:
                continue
            data = self.blobs.get(key)
            if data is None:  # deleted since it was listed: nothing to check
                continue
            stored = set(pq.ParquetFile(io.BytesIO(data)).schema_arrow.names)
            missing = [name for name in columns if name not in stored]
            if missing:
                raise OldLayoutError(
                    f"{self.blobs.uri}/{key} has no column {', '.join(missing)}: {table} was "
                    f"written by an earlier version of perf-pipeline; {REBUILD}."
                )

    def _touched(
        self, table: str, frame: pd.DataFrame, where: Slice, read_full: bool
    ) -> list[_Month]:
        """Every month file of the slice's shards that holds rows of the slice or receives
        rows of `frame`, with its old rows when they are needed: always for a partial month,
        for a whole one when `read_full`."""
        day = DATE_COLUMNS[table]
        groups: dict[tuple[str, str], np.ndarray] = {}
        if len(frame):  # row positions per (shard, month): one pass over the frame
            keys = pd.DataFrame(
                {"shard": frame["shard"].to_numpy(), "month": _month_labels(frame[day])}
            )
            groups = keys.groupby(["shard", "month"], sort=False).indices
        extra = sorted(_month(d) for d in where.extra_days)
        empty = frame.iloc[:0]
        months: list[_Month] = []
        for shard in where.shards:
            existing = set(self._months(table, shard, _month(where.start), _month(where.end)))
            if extra:
                existing |= set(self._months(table, shard, extra[0], extra[-1])) & set(extra)
            incoming = {month for (owner, month) in groups if owner == shard}
            for label in sorted(incoming | existing):
                rows = groups.get((shard, label))
                months.append(
                    _Month(
                        key=self._folder(table, shard) + label + SUFFIX,
                        label=label,
                        exists=label in existing,
                        old=None,
                        new=empty if rows is None else frame.take(rows),
                    )
                )
        wanted = [m for m in months if m.exists and (read_full or not _covers(where, m.label))]
        for month, old in zip(wanted, self._get_all([m.key for m in wanted]), strict=True):
            month.old = old
        return months


def _month(day: dt.date | None) -> str | None:
    return None if day is None else f"{day:%Y-%m}"


def _month_labels(days: pd.Series) -> np.ndarray:
    """'YYYY-MM' of each day."""
    months = pd.to_datetime(days).to_numpy().astype("datetime64[M]")
    return np.datetime_as_string(months, unit="M")


def _covers(where: Slice, label: str) -> bool:
    """Whether start..end spans the whole month `label`."""
    first = pd.Timestamp(f"{label}-01")
    last = first + pd.offsets.MonthEnd(0)
    return (where.start is None or pd.Timestamp(where.start) <= first) and (
        where.end is None or pd.Timestamp(where.end) >= last
    )


def _in_slice(frame: pd.DataFrame, table: str, where: Slice) -> np.ndarray:
    """Which rows have their day in the slice's range or extra days (the shard is the
    object's)."""
    if frame.empty:
        return np.zeros(len(frame), dtype=bool)
    days = pd.to_datetime(frame[DATE_COLUMNS[table]])
    inside = np.ones(len(frame), dtype=bool)
    if where.start is not None:
        inside &= (days >= pd.Timestamp(where.start)).to_numpy()
    if where.end is not None:
        inside &= (days <= pd.Timestamp(where.end)).to_numpy()
    if where.extra_days:
        inside |= days.isin(pd.to_datetime(list(where.extra_days))).to_numpy()
    return inside


def _rows(frame: pd.DataFrame, table: str, where: Slice) -> pd.DataFrame:
    return frame.loc[_in_slice(frame, table, where)]


def _merge(month: _Month, table: str, where: Slice, keep_created_at: Sequence[str]) -> pd.DataFrame:
    """The month's rows after the replace: its old rows outside the slice and the new rows,
    these keeping the created_at of an old row with the same `keep_created_at` key."""
    new = month.new
    if month.old is None or month.old.empty:
        return new.reset_index(drop=True)
    if keep_created_at and len(new) and "created_at" in month.old:
        prior = (
            month.old[[*keep_created_at, "created_at"]]
            .drop_duplicates(keep_created_at)
            .rename(columns={"created_at": "_prior"})
        )
        found = (
            new[list(keep_created_at)]
            .merge(prior, on=list(keep_created_at), how="left")["_prior"]
            .to_numpy()
        )
        new = new.assign(created_at=np.where(pd.isna(found), new["created_at"].to_numpy(), found))
    kept = month.old.loc[~_in_slice(month.old, table, where)]
    parts = [part for part in (kept, new) if len(part)]
    if not parts:
        return new.iloc[:0]
    rows = pd.concat(parts, ignore_index=True)
    return rows.sort_values(DATE_COLUMNS[table], kind="stable", ignore_index=True)
