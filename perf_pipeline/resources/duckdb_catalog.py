"""The DuckDB file a user queries on the local target: one view per table over the Parquet
files the pipeline writes, so the figures are queried where they are stored, never copied.

A view is (re)made once per process the first time its table is written; it reads the files
present at query time (``read_parquet`` over a glob), so later writes need no refresh.
DuckDB lets one process write a database file or several read it, never both: every
connection first takes an advisory lock on ``<file>.lock`` (exclusive to write, shared to read).

A DuckDB file written by the earlier layout holds the tables themselves; it is refused with
a message that says how to rebuild it (OldLayoutError).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb


class OldLayoutError(RuntimeError):
    """A store written by an earlier version of the pipeline, which this one cannot read."""


REBUILD = (
    "delete it (the input files are the source of truth) and run `perf-pipeline run` again "
    "to rebuild every table from the input"
)


@contextmanager
def connect(path: str | Path, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to the DuckDB file under its lock: exclusive when writing, shared when
    reading."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
        try:
            con = duckdb.connect(str(path), read_only=not write and path.exists())
            try:
                yield con
            finally:
                con.close()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _kind(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """'BASE TABLE', 'VIEW' or None."""
    found = con.execute(
        "SELECT table_type FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return found[0][0] if found else None


def ensure_view(catalog: str | Path, name: str, files: str) -> None:
    """Make `name` a view over the Parquet files matching the glob `files` (which must match
    at least one file), replacing a view of that name (a copied store's views point at the
    files they were made over until then); OldLayoutError when `name` is a table."""
    with connect(catalog, write=True) as con:
        if _kind(con, name) not in (None, "VIEW"):
            raise OldLayoutError(
                f"{catalog} holds {name} as a table: it was written by an earlier version of "
                f"perf-pipeline, which kept the tables inside DuckDB; {REBUILD}."
            )
        glob = files.replace("'", "''")
        con.execute(
            f'CREATE OR REPLACE VIEW "{name}" AS '
            f"SELECT * FROM read_parquet('{glob}', union_by_name=true)"
        )


def check_layout(catalog: str | Path) -> None:
    """OldLayoutError when the DuckDB file holds any table of its own (the earlier layout)."""
    if not Path(catalog).exists():
        return
    with connect(catalog) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE'"
        ).fetchall()
    if tables:
        names = ", ".join(sorted(name for (name,) in tables))
        raise OldLayoutError(
            f"{catalog} holds the tables {names}: it was written by an earlier version of "
            f"perf-pipeline, which kept the tables inside DuckDB; {REBUILD}."
        )
