"""The local store: one DuckDB file holding every asset as a table of the same name.

DuckDB lets one process write a database file, or several read it, never both. Every
connection therefore takes an advisory lock on ``<file>.lock`` first (exclusive to write,
shared to read), so processes of a multiprocess run queue for the file instead of failing.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from dagster import (
    ConfigurableIOManager,
    ConfigurableResource,
    InputContext,
    MetadataValue,
    OutputContext,
)
from pydantic import Field


class DuckDBStore(ConfigurableResource):
    """The DuckDB file of the local target."""

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

    def table_exists(self, con: duckdb.DuckDBPyConnection, table: str) -> bool:
        found = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
        ).fetchone()
        return bool(found and found[0])

    def read_table(self, table: str) -> pd.DataFrame:
        """The whole table as a frame; an empty frame when it does not exist yet."""
        with self.connect() as con:
            if not self.table_exists(con, table):
                return pd.DataFrame()
            return con.execute(f'SELECT * FROM "{table}"').df()


def table_name(context: OutputContext | InputContext) -> str:
    """The table of an asset: its whole key joined by '__' (no two assets collide)."""
    return "__".join(context.asset_key.path)


REPLACES = "replaces"
"""Runtime output metadata naming what an output replaces: "all", or the list of values of
the asset's ``replace_scope`` column (e.g. the portfolios a run was asked for)."""


def replaces(values: Sequence[str] | None) -> dict[str, MetadataValue]:
    """Output metadata saying that the output replaces these scope values (None: all rows)."""
    return {REPLACES: MetadataValue.json(sorted(values)) if values else MetadataValue.text("all")}


class DuckDBIOManager(ConfigurableIOManager):
    """Stores each asset's DataFrame as a DuckDB table and loads it back.

    The write replaces the whole table, unless the asset has a ``replace_scope`` column
    (definition metadata) and the output names the values it replaces (``replaces`` runtime
    metadata, see `replaces`): then only the rows of those values are replaced, including
    values with no row in the output (a portfolio not yet born at an earlier as-of date), and
    the rest stays. ``keep_created_at`` (key columns, definition metadata): a row rewritten
    under the same key keeps its ``created_at``. Date-only columns are stored as DATE, and a
    column that is null throughout as VARCHAR (DuckDB would type it NULL and refuse values
    later).
    """

    store: DuckDBStore

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        table = table_name(context)
        meta = context.definition_metadata or {}
        scope, keys = meta.get("replace_scope"), meta.get("keep_created_at")
        replaced = getattr((context.output_metadata or {}).get(REPLACES), "value", None)
        select = _select_typed(obj)
        with self.store.connect(write=True) as con:
            con.register("frame", obj)
            exists = self.store.table_exists(con, table)
            if exists and keys:
                join = " AND ".join(f'n."{k}" = o."{k}"' for k in keys)
                select = (
                    f"SELECT n.* REPLACE (coalesce(o.created_at, n.created_at) AS created_at) "
                    f'FROM ({select}) n LEFT JOIN "{table}" o ON {join}'
                )
            con.execute(f"CREATE TEMP TABLE incoming AS {select}")
            con.execute("BEGIN TRANSACTION")
            if exists and scope and isinstance(replaced, list):
                con.register("replaced", pd.DataFrame({"value": replaced}, dtype=object))
                con.execute(f'DELETE FROM "{table}" WHERE "{scope}" IN '
                            f"(SELECT value FROM replaced)")
                con.execute(f'INSERT INTO "{table}" BY NAME SELECT * FROM incoming')
            else:
                con.execute(f'CREATE OR REPLACE TABLE "{table}" AS SELECT * FROM incoming')
            con.execute("COMMIT")
            con.execute("DROP TABLE incoming")
            rows = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        context.add_output_metadata({
            "table": f"{self.store.path}:{table}",
            "dagster/row_count": len(obj),
            "table_rows": int(rows),
        })

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
