"""The local store: one DuckDB file holding every asset as a table of the same name.

DuckDB lets one process write a database file, or several read it, never both. Every
connection therefore takes an advisory lock on ``<file>.lock`` first (exclusive to write,
shared to read), so processes of a multiprocess run queue for the file instead of failing.
"""

from __future__ import annotations

import datetime as dt
import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from dagster import (
    ConfigurableIOManager,
    InputContext,
    OutputContext,
)
from pydantic import Field

from perf_pipeline.resources.partition_store import DATE_COLUMNS, PartitionStore, Slice


class DuckDBStore(PartitionStore):
    """The DuckDB file of the local target; partitioned tables carry a ``shard`` column."""

    path: str = Field(description="DuckDB file (PERF_STORE).")

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection under the file's lock: exclusive when writing, shared when reading."""
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            try:
                read_only = not write and path.exists()
                con = duckdb.connect(str(path), read_only=read_only)
                try:
                    yield con
                finally:
                    con.close()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def read_table(self, table: str) -> pd.DataFrame:
        """The whole table as a frame; an empty frame when it does not exist yet."""
        with self.connect() as con:
            if not table_exists(con, table):
                return pd.DataFrame()
            return con.execute(f'SELECT * FROM "{table}"').df()

    def replace(
        self, table: str, frame: pd.DataFrame, where: Slice, keep_created_at: Sequence[str] = ()
    ) -> int:
        condition, params = _slice_condition(table, where)
        with self.connect(write=True) as con:
            return _write(con, table, frame, condition, params, keep_created_at)

    def read(
        self,
        table: str,
        shards: Sequence[str],
        start: dt.date | None = None,
        end: dt.date | None = None,
        columns: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        condition, params = _slice_condition(table, Slice(tuple(shards), start, end))
        chosen = ", ".join(f'"{c}"' for c in columns) if columns else "*"
        with self.connect() as con:
            if not table_exists(con, table):
                return pd.DataFrame(columns=list(columns or []))
            return con.execute(
                f'SELECT {chosen} FROM "{table}" WHERE {condition} '
                f'ORDER BY "{DATE_COLUMNS[table]}"',
                params,
            ).df()


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()  # all: an unfinished result blocks the connection's next statement
    return bool(found[0][0])


def _slice_condition(table: str, where: Slice) -> tuple[str, list]:
    """SQL and parameters selecting the rows of a slice of a partitioned table."""
    day = DATE_COLUMNS[table]
    shards = ", ".join("?" for _ in where.shards) or "NULL"
    parts, params = [f"shard IN ({shards})"], list(where.shards)
    window = []
    if where.start is not None:
        window.append(f'"{day}" >= ?')
        params.append(where.start)
    if where.end is not None:
        window.append(f'"{day}" <= ?')
        params.append(where.end)
    in_window = " AND ".join(window) or "TRUE"
    if where.extra_days:
        in_window = f'(({in_window}) OR "{day}" IN ({", ".join("?" for _ in where.extra_days)}))'
        params.extend(where.extra_days)
    parts.append(in_window)
    return " AND ".join(parts), params


def _write(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pd.DataFrame,
    condition: str | None,
    params: list,
    keep_created_at: Sequence[str],
) -> int:
    """Replace the rows of `table` matching `condition` (all rows when None) by `frame`, in
    one transaction; rows rewritten under the same `keep_created_at` key keep created_at.
    Returns the table's row count."""
    exists = table_exists(con, table)
    if not exists and frame.empty and condition is not None:
        return 0  # nothing to replace; a table made from no rows would have no types
    select = _select_typed(frame)
    con.register("frame", frame)
    if exists and keep_created_at:
        join = " AND ".join(f'n."{k}" = o."{k}"' for k in keep_created_at)
        select = (
            f"SELECT n.* REPLACE (coalesce(o.created_at, n.created_at) AS created_at) "
            f'FROM ({select}) n LEFT JOIN "{table}" o ON {join}'
        )
    con.execute(f"CREATE TEMP TABLE incoming AS {select}")
    con.execute("BEGIN TRANSACTION")
    if exists and condition is not None:
        con.execute(f'DELETE FROM "{table}" WHERE {condition}', params)
        con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM incoming')
    else:
        con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM incoming')
    con.execute("COMMIT")
    con.execute("DROP TABLE incoming")
    con.unregister("frame")
    return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def table_name(context: OutputContext | InputContext) -> str:
    """The table of an asset: its whole key joined by '__' (no two assets collide)."""
    return "__".join(context.asset_key.path)


class DuckDBIOManager(ConfigurableIOManager):
    """Stores each unpartitioned asset's DataFrame as a DuckDB table (the whole table is
    replaced) and loads it back. Date-only columns are stored as DATE, and a column that is
    null throughout as VARCHAR (DuckDB would type it NULL and refuse values later). The
    partitioned assets write through the store itself (`PartitionStore`)."""

    store: DuckDBStore

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        table = table_name(context)
        with self.store.connect(write=True) as con:
            rows = _write(con, table, obj, None, [], ())
        context.add_output_metadata(
            {
                "table": f"{self.store.path}:{table}",
                "dagster/row_count": len(obj),
                "table_rows": rows,
            }
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        return self.store.read_table(table_name(context))


def _select_typed(frame: pd.DataFrame) -> str:
    """SELECT over the registered frame: date-only datetime columns as DATE, all-null columns
    as VARCHAR."""
    casts = []
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column) and column.dt.tz is None:
            stamps = column.to_numpy()
            stamps = stamps[~np.isnat(stamps)]
            if (stamps == stamps.astype("datetime64[D]")).all():
                casts.append(f'CAST("{name}" AS DATE) AS "{name}"')
        elif not pd.api.types.is_numeric_dtype(column) and column.isna().all():
            casts.append(f'CAST("{name}" AS VARCHAR) AS "{name}"')
    replace = f" REPLACE ({', '.join(casts)})" if casts else ""
    return f"SELECT *{replace} FROM frame"
