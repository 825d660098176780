"""Turn one input file (bytes) into a table of its cells as text, with line numbers.

Contract of :func:`read_file`:

- Format from the extension (case-insensitive): ``.csv`` or ``.parquet``; anything else,
  an empty file or one over ``max_file_bytes`` raises :class:`UnreadableFileError`.
- CSV: UTF-8 (a leading BOM is dropped), comma-separated, ``"`` quoting with ``""`` as an
  escaped quote, a header row whose names are unique. Cells are kept exactly as written;
  an empty cell is null. Blank lines are skipped. A record whose field count differs from
  the header's is not a file failure: it is returned in ``RawTable.bad_rows``. Non-UTF-8,
  NUL bytes, or a quoting error (the ``csv`` module in strict mode) make the file unreadable.
  ``lines`` is the physical line (1-based, header = 1) where each record starts; quoted
  fields spanning lines and ``\\r\\n``/``\\r`` line ends are counted correctly.
- Parquet (read with duckdb): every column is cast to VARCHAR as duckdb writes it
  (DATE -> ``YYYY-MM-DD``, DOUBLE 100 -> ``100.0``, a TIMESTAMP at midnight -> its date);
  ``lines`` is the 1-based row number; each row's original values are kept as a JSON object.

Speed: a CSV without any ``"`` and without bare ``\\r`` is split with numpy and parsed by
pandas' C reader; any other CSV goes through ``csv.reader`` record by record (about 5 s per
million rows on the reference machine), which is the only exact way to place quoted records.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import dataclass
from typing import Final

import duckdb
import numpy as np
import pandas as pd

KINDS: Final = ("portfolios", "transactions", "prices", "benchmarks", "fx_rates")
DEFAULT_MAX_FILE_BYTES: Final = 512 * 1024 * 1024
EXTRA_FIELDS_KEY: Final = "__extra__"
"""Key in a ``row`` JSON object holding the fields beyond the header's count."""

_BOM: Final = b"\xef\xbb\xbf"
_BAD_ROW_COLUMNS: Final = ["line", "message", "row"]


class UnreadableFileError(Exception):
    """The file cannot be read at all; the message is the reason shown in rejected_files."""


@dataclass(frozen=True)
class RawFile:
    """One input file as delivered: its path (for messages), kind (see ``KINDS``) and bytes."""

    path: str
    kind: str
    data: bytes


@dataclass(frozen=True)
class RawTable:
    """The records of one file as text.

    ``text``: one column per header name, cells as strings, null for empty cells; positional
    index. ``lines``: int64 array, the line (CSV) or row number (Parquet) of each record.
    ``row_json``: the original values as JSON objects (Parquet only; CSV rows are rebuilt from
    ``text`` by :func:`rows_as_json`). ``bad_rows``: records that could not be split into the
    header's columns (``line``, ``message``, ``row`` as JSON), not part of ``text``.
    """

    text: pd.DataFrame
    lines: np.ndarray
    row_json: pd.Series | None
    bad_rows: pd.DataFrame


def read_file(file: RawFile, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> RawTable:
    """Read ``file`` (module docstring); raise :class:`UnreadableFileError` with the reason."""
    size = len(file.data)
    if size == 0:
        raise UnreadableFileError("empty file (0 bytes)")
    if size > max_file_bytes:
        raise UnreadableFileError(f"file is {size} bytes, over the limit of {max_file_bytes} bytes")
    extension = os.path.splitext(file.path)[1].lower()
    if extension == ".csv":
        return _read_csv(file.data)
    if extension == ".parquet":
        return _read_parquet(file.data)
    raise UnreadableFileError(
        f"unsupported file type {extension or '(none)'!r}: expected .csv or .parquet"
    )


def rows_as_json(table: RawTable, positions: np.ndarray) -> list[str]:
    """The original rows at ``positions`` of ``table.text`` as JSON object strings."""
    if table.row_json is not None:
        return table.row_json.iloc[positions].tolist()
    names = list(table.text.columns)
    cells = table.text.iloc[positions].astype(object).where(table.text.iloc[positions].notna(), "")
    return [
        json.dumps(dict(zip(names, values, strict=True)), ensure_ascii=False)
        for values in cells.itertuples(index=False, name=None)
    ]


def _read_csv(data: bytes) -> RawTable:
    if b"\x00" in data:
        raise UnreadableFileError("contains NUL bytes: binary data, not a UTF-8 CSV")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"not UTF-8: invalid byte at offset {exc.start}") from exc
    if not text.strip():
        raise UnreadableFileError("empty file (no header row)")
    body = data[len(_BOM) :] if data.startswith(_BOM) else data
    plain = b'"' not in body and body.count(b"\r") == body.count(b"\r\n")
    header, frame, lines, bad = _split_plain(body) if plain else _split_quoted(text)
    if not any(header):
        raise UnreadableFileError("the header row is empty")
    if len(set(header)) != len(header):
        raise UnreadableFileError(f"duplicate column names in the header: {header}")
    frame = frame.where(frame != "", None) if len(frame) else frame
    return RawTable(text=frame, lines=lines, row_json=None, bad_rows=bad)


def _bad_rows(header: list[str], bad: list[tuple[int, list[str]]]) -> pd.DataFrame:
    records = []
    for line, fields in bad:
        row: dict[str, object] = dict(zip(header, fields, strict=False))
        if len(fields) > len(header):
            row[EXTRA_FIELDS_KEY] = fields[len(header) :]
        message = f"expected {len(header)} fields as in the header, found {len(fields)}"
        records.append((line, message, json.dumps(row, ensure_ascii=False)))
    return pd.DataFrame(records, columns=_BAD_ROW_COLUMNS).astype({"line": "int64"})


def _split_quoted(text: str) -> tuple[list[str], pd.DataFrame, np.ndarray, pd.DataFrame]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    bad: list[tuple[int, list[str]]] = []
    try:
        header = next(reader)
        width = len(header)
        previous = reader.line_num
        for record in reader:
            start, previous = previous + 1, reader.line_num
            if len(record) == width:
                rows.append(record)
                lines.append(start)
            elif record:
                bad.append((start, record))
    except csv.Error as exc:
        raise UnreadableFileError(f"CSV does not parse near line {reader.line_num}: {exc}") from exc
    columns = list(zip(*rows, strict=True)) if rows else [()] * width
    frame = pd.DataFrame({i: pd.Series(col, dtype=object) for i, col in enumerate(columns)})
    frame.columns = header
    return header, frame, np.asarray(lines, dtype=np.int64), _bad_rows(header, bad)


def _split_plain(body: bytes) -> tuple[list[str], pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Split a CSV without quotes: records are the non-blank lines, fields split at commas."""
    arr = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(arr == ord("\n"))
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [arr.size]))
    if starts[-1] == arr.size:  # the file ends with a newline
        starts, ends = starts[:-1], ends[:-1]
    carriage = (ends > starts) & (arr[np.maximum(ends - 1, 0)] == ord("\r"))
    ends = ends - carriage
    commas = np.flatnonzero(arr == ord(","))
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    header = body[starts[0] : ends[0]].decode("utf-8").split(",") if ends[0] > starts[0] else []
    width = max(len(header), 1)
    line_no = np.arange(1, starts.size + 1, dtype=np.int64)
    record = (ends > starts) & (line_no > 1)
    good = record & (fields == width)
    bad_idx = np.flatnonzero(record & ~good)
    bad = [(int(line_no[i]), body[starts[i] : ends[i]].decode("utf-8").split(",")) for i in bad_idx]
    if bad:
        keep = np.flatnonzero(good)
        body = b"\n".join([body[starts[0] : ends[0]]] + [body[starts[i] : ends[i]] for i in keep])
    frame = (
        pd.read_csv(
            io.BytesIO(body),
            dtype=str,
            na_filter=False,
            keep_default_na=False,
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=True,
            encoding="utf-8",
            engine="c",
        )
        if header
        else pd.DataFrame()
    )
    lines = line_no[good]
    if len(frame) != lines.size:
        raise UnreadableFileError("CSV records could not be matched to line numbers")
    frame.columns = header
    return header, frame.astype(object), lines, _bad_rows(header, bad)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(name: str) -> str:
    return "'" + name.replace("'", "''") + "'"


def _varchar(name: str, type_name: str) -> str:
    col = _quote_ident(name)
    if type_name.startswith("TIMESTAMP") and "TIME ZONE" not in type_name:
        return (
            f"CASE WHEN CAST(CAST({col} AS DATE) AS TIMESTAMP) = {col} "
            f"THEN CAST(CAST({col} AS DATE) AS VARCHAR) ELSE CAST({col} AS VARCHAR) END"
        )
    return f"CAST({col} AS VARCHAR)"


def _read_parquet(data: bytes) -> RawTable:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "input.parquet")
        with open(path, "wb") as handle:
            handle.write(data)
        with duckdb.connect() as con:
            try:
                described = con.execute("DESCRIBE SELECT * FROM read_parquet(?)", [path]).fetchall()
                names = [row[0] for row in described]
                casts = ", ".join(
                    f"{_varchar(n, str(t))} AS {_quote_ident(n)}" for n, t, *_ in described
                )
                struct = ", ".join(f"{_quote_literal(n)}: {_quote_ident(n)}" for n in names)
                query = (
                    f"SELECT file_row_number + 1 AS __line, to_json({{{struct}}}) AS __row, "
                    f"{casts} FROM read_parquet(?, file_row_number = true) ORDER BY file_row_number"
                )
                result = con.execute(query, [path]).df()
            except duckdb.Error as exc:
                raise UnreadableFileError(f"not a readable Parquet file: {exc}") from exc
    if len(set(names)) != len(names):
        raise UnreadableFileError(f"duplicate column names: {names}")
    text = result.iloc[:, 2:].astype(object)
    text = text.where(text.notna(), None)
    text.columns = names
    return RawTable(
        text=text.reset_index(drop=True),
        lines=result["__line"].to_numpy(dtype=np.int64),
        row_json=result["__row"].astype(object).reset_index(drop=True),
        bad_rows=pd.DataFrame(columns=_BAD_ROW_COLUMNS).astype({"line": "int64"}),
    )
