"""What one input file says on its own: the per-file half of :func:`validate.validate_inputs`.

Steps 1-3 of the validation (read, parse, the pandera model) look at one row at a time, so
their verdict on a row depends only on the file it is in, with one exception: ``date_range``
rejects dates after ``today + 1 day``, and today moves. :func:`validate_files` therefore
checks every row rule with no upper date bound and keeps each row's parsed dates; the upper
bound is applied when the files are combined (:mod:`perf_pipeline.ingest.combine`), on the
kept dates, for the day of that run. The cross-file rules (steps 4-7) also run there.

A :class:`FileVerdict` holds, for one file:

- ``rows``: every record that could be split into the header's fields, parsed as the model
  types them (fee default applied), with ``source_line`` and ``failed`` (a row rule other
  than the date upper bound rejected it); position ``i`` is the file's ``i``-th record. An
  Arrow table (strings, timestamp[ns], double), so that the files of a kind are concatenated
  and converted to pandas once, not file by file;
- ``failures``: one row per (record, rule, column) failure of those rules, in the order the
  rejected-row message lists them, with the message fragment and the record as JSON;
  field-count failures (``bad_rows`` of the reader) are here too, with ``pos`` = -1;
- ``reason`` for a file rejected whole (then there are no rows);
- ``load_raw``: the file's cells as text (:class:`reading.RawTable`), for a record that a
  later rule rejects (its JSON and the text of its cells for the message).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa

from perf_pipeline.ingest import schemas
from perf_pipeline.ingest.reading import (
    DEFAULT_MAX_FILE_BYTES,
    KINDS,
    RawFile,
    RawTable,
    UnreadableFileError,
    read_file,
    rows_as_json,
)
from perf_pipeline.ingest.schemas import MODELS, RULE_TEXT, RULES
from perf_pipeline.ingest.validate import _ROW, SOURCE_LINE, _preview, _row_rules

NO_UPPER_BOUND: Final = dt.date.max - dt.timedelta(days=1)
"""The ``latest`` given to the row rules here: no date is after it (``date_range`` then only
rejects dates before ``schemas.EARLIEST_DATE``)."""
FAILED: Final = "failed"
FAILURE_COLUMNS: Final = ["pos", "line", "rule", "column", "message", "row"]


@dataclass(frozen=True)
class FileVerdict:
    """The row-rule verdict on one input file (module docstring)."""

    path: str
    kind: str
    size_bytes: int
    reason: str | None
    rows: pa.Table
    failures: pd.DataFrame
    load_raw: Callable[[], RawTable] = field(repr=False, compare=False)

    @property
    def rows_read(self) -> int:
        """Records read: the parsed ones and those with the wrong number of fields."""
        return len(self.rows) + int((self.failures["pos"] == -1).sum())


def failure_frame(records: dict[str, object] | None = None) -> pd.DataFrame:
    """A failures table with ``FAILURE_COLUMNS`` (empty when no records are given)."""
    records = records or {name: [] for name in FAILURE_COLUMNS}
    out = pd.DataFrame({name: records[name] for name in FAILURE_COLUMNS})
    return out.astype({"pos": "int64", "line": "int64"})


def rank_keys(kind: str, rules: pd.Series, columns: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The order of one row's failures in its message: rule as in ``RULES``, then column as in
    the model (a column not in the model, such as ``security_id+date``, last)."""
    names = schemas.columns(MODELS[kind])
    rule_rank = {rule: i for i, rule in enumerate(RULES)}
    column_rank = {name: i for i, name in enumerate(names)}
    return (
        rules.map(rule_rank).to_numpy(dtype=np.float64),
        columns.map(column_rank).fillna(len(names)).to_numpy(dtype=np.float64),
    )


def message_piece(kind: str, rule: str, column: str, text: object) -> str:
    """One failure's part of a rejected row's message: column, the cell's text, the rule."""
    in_model = column in schemas.columns(MODELS[kind])
    return f"{column}{_preview(text) if in_model else ''} {RULE_TEXT[rule]}"


def read_checked(file: RawFile, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> RawTable | str:
    """Step 1 for one file: its table, or the reason it is rejected whole."""
    if file.kind not in KINDS:
        return f"unknown kind {file.kind!r}: expected one of {', '.join(KINDS)}"
    try:
        table = read_file(file, max_file_bytes)
    except UnreadableFileError as exc:
        return str(exc)
    required = schemas.required_columns(MODELS[file.kind])
    missing = [c for c in required if c not in table.text.columns]
    if missing:
        return f"missing required column(s): {', '.join(missing)}"
    return table


def validate_files(
    files: list[RawFile], max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> list[FileVerdict]:
    """The verdict on each file, in the order given. The files of one kind go through the
    parser and the pandera model together (one call per kind, not per file)."""
    verdicts: dict[int, FileVerdict] = {}
    tables: dict[str, list[tuple[int, RawFile, RawTable]]] = {kind: [] for kind in KINDS}
    for i, file in enumerate(files):
        checked = read_checked(file, max_file_bytes)
        if isinstance(checked, str):
            verdicts[i] = _rejected_whole(file, checked)
        else:
            tables[file.kind].append((i, file, checked))
    for kind, members in tables.items():
        if members:
            for i, verdict in _kind_verdicts(kind, members):
                verdicts[i] = verdict
    return [verdicts[i] for i in range(len(files))]


def _rejected_whole(file: RawFile, reason: str) -> FileVerdict:
    def no_table() -> RawTable:
        raise ValueError(f"{file.path} was rejected whole: it has no rows")

    return FileVerdict(
        file.path, file.kind, len(file.data), reason, pa.table({}), failure_frame(), no_table
    )


def _kind_verdicts(
    kind: str, members: list[tuple[int, RawFile, RawTable]]
) -> list[tuple[int, FileVerdict]]:
    batch = _row_rules(kind, [(f.path, t) for _, f, t in members], NO_UPPER_BOUND)
    names = schemas.columns(MODELS[kind])
    failures = batch.failures.drop_duplicates()
    rule_rank, column_rank = rank_keys(kind, failures["rule"], failures["column"])
    failures = (
        failures.assign(_rr=rule_rank, _cr=column_rank)
        .sort_values([_ROW, "_rr", "_cr"], kind="stable")
        .reset_index(drop=True)
    )
    rows_all = failures[_ROW].to_numpy(dtype=np.int64)
    pieces = [
        message_piece(kind, rule, column, batch.text.at[r, column] if column in names else None)
        for r, rule, column in zip(rows_all, failures["rule"], failures["column"], strict=True)
    ]
    failed = np.zeros(len(batch.frame), dtype=bool)
    failed[rows_all] = True
    frame = batch.frame[[*names, SOURCE_LINE]].assign(**{FAILED: failed})
    out = []
    for k, (i, file, table) in enumerate(members):
        lo, hi = int(batch.offsets[k]), int(batch.offsets[k + 1])
        mine = (rows_all >= lo) & (rows_all < hi)
        pos = rows_all[mine] - lo
        unique_pos = np.unique(pos)
        json_of = dict(zip(unique_pos.tolist(), rows_as_json(table, unique_pos), strict=True))
        found = failure_frame(
            {
                "pos": pos,
                "line": table.lines[pos] if len(pos) else np.empty(0, np.int64),
                "rule": failures["rule"].to_numpy(dtype=object)[mine],
                "column": failures["column"].to_numpy(dtype=object)[mine],
                "message": np.asarray(pieces, dtype=object)[mine],
                "row": np.asarray([json_of[p] for p in pos.tolist()], dtype=object),
            }
        )
        if len(table.bad_rows):
            found = pd.concat([found, _field_count(table)], ignore_index=True)
        rows = pa.Table.from_pandas(frame.iloc[lo:hi], preserve_index=False)
        rows = rows.replace_schema_metadata(None)
        verdict = FileVerdict(file.path, kind, len(file.data), None, rows, found, _constant(table))
        out.append((i, verdict))
    return out


def _field_count(table: RawTable) -> pd.DataFrame:
    bad = table.bad_rows
    return failure_frame(
        {
            "pos": np.full(len(bad), -1, dtype=np.int64),
            "line": bad["line"].to_numpy(dtype=np.int64),
            "rule": np.full(len(bad), "field_count", dtype=object),
            "column": np.full(len(bad), "", dtype=object),
            "message": bad["message"].to_numpy(dtype=object),
            "row": bad["row"].to_numpy(dtype=object),
        }
    )


def _constant(table: RawTable) -> Callable[[], RawTable]:
    return lambda: table
