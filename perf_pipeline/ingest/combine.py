"""The cross-file half of the validation: file verdicts in, the validated tables out.

:func:`combine` over the :class:`verdict.FileVerdict` of every input file gives exactly what
:func:`validate.validate_inputs` gives over the same files (the tests compare them whole):

1. ``date_range``'s upper bound for this run (dates after ``today + 1 day`` are rejected) is
   applied to the parsed dates the verdicts keep, on every record of every file, so a cached
   verdict stays right as days pass;
2. the records no rule has rejected so far (the only ones steps 4-7 look at) are gathered
   into one frame per kind, in file-path then record order, as the full validation has them;
3. steps 4-7 run on that frame through validate.py's own functions (``cross_file_rules``):
   identical copies of a key collapse to the first, conflicting copies are rejected, an
   account under several portfolios is rejected, a security's prices in a minority currency
   are rejected, security transactions not in their security's currency are rejected,
   portfolios are inferred;
4. each rejected record's failures (kept, date bound, cross-file) are joined into one
   rejected row; a record's text and JSON come from the verdict's ``load_raw`` only for
   records that steps 1 or 3 rejected here.

The cost is a columnar pass over the cached rows (Arrow, converted to pandas once per kind)
and the cross-file rules themselves; no input file is read or parsed again.
"""

from __future__ import annotations

import datetime as dt
import functools

import numpy as np
import pandas as pd
import pyarrow as pa

from perf_pipeline.ingest import schemas
from perf_pipeline.ingest.reading import KINDS, rows_as_json
from perf_pipeline.ingest.schemas import MODELS
from perf_pipeline.ingest.validate import (
    _ROW,
    INPUT_FILE_COLUMNS,
    REJECTED_FILE_COLUMNS,
    REJECTED_ROW_COLUMNS,
    SOURCE_FILE,
    SOURCE_LINE,
    ValidatedInputs,
    _Batch,
    _concat_failures,
    _row_rules,
    _sorted_by_key,
    cross_file_rules,
)
from perf_pipeline.ingest.verdict import (
    FAILED,
    FileVerdict,
    failure_frame,
    message_piece,
    rank_keys,
)


@functools.cache
def _dtypes(kind: str) -> dict[str, object]:
    """The dtypes of the full validation's parsed frame of ``kind`` (from an empty batch)."""
    return _row_rules(kind, [], dt.date(2000, 1, 1)).frame.dtypes.to_dict()


def combine(verdicts: list[FileVerdict], today: dt.date) -> ValidatedInputs:
    """The validated tables of the files behind ``verdicts`` on ``today`` (module docstring)."""
    latest = pd.Timestamp(today + dt.timedelta(days=1))
    ordered = sorted(verdicts, key=lambda v: (v.kind, v.path))
    rejected_files = [(v.path, v.kind, v.reason, v.size_bytes) for v in ordered if v.reason]
    kinds = {kind: _Kind(kind, [v for v in ordered if v.kind == kind and not v.reason], latest)
             for kind in KINDS}  # fmt: skip
    batches = {kind: k.batch for kind, k in kinds.items()}
    portfolios, transactions = cross_file_rules(batches)
    rejected_parts: list[pd.DataFrame] = []
    file_records: list[tuple] = []
    for k in kinds.values():
        parts, records = k.rejected_and_counts()
        rejected_parts += parts
        file_records += records
    file_records += [(path, kind, 0, 0, 0, 0, "rejected") for path, kind, _, _ in rejected_files]
    input_files = pd.DataFrame(file_records, columns=INPUT_FILE_COLUMNS)
    return ValidatedInputs(
        portfolios=portfolios,
        transactions=transactions,
        prices=_sorted_by_key(batches["prices"]),
        benchmarks=_sorted_by_key(batches["benchmarks"]),
        fx_rates=_sorted_by_key(batches["fx_rates"]),
        rejected_rows=_rejected_rows(rejected_parts),
        rejected_files=pd.DataFrame(rejected_files, columns=REJECTED_FILE_COLUMNS),
        input_files=input_files.sort_values(["kind", "file"], kind="stable").reset_index(drop=True),
    )


def _column(table: pa.Table, name: str) -> np.ndarray:
    """One column of an Arrow table as a numpy array (timestamps with NaT for null)."""
    return table.column(name).to_numpy()


def _source_files(verdicts: list[FileVerdict], sizes: list[int]) -> pd.Series:
    """Each verdict's path repeated ``sizes`` times, in validate.py's dtype, built in Arrow
    from a dictionary (a Python string object per row would cost about 1 s per million)."""
    dtype = _source_file_dtype(verdicts)
    if pd.api.types.is_object_dtype(dtype):
        return pd.Series(np.repeat(np.asarray([v.path for v in verdicts], dtype=object), sizes))
    codes = np.repeat(np.arange(len(verdicts), dtype=np.int32), sizes)
    paths = pa.array([v.path for v in verdicts], pa.large_string())
    values = pa.DictionaryArray.from_arrays(pa.array(codes), paths).cast(pa.large_string())
    return pd.Series(pd.array(values, dtype=dtype))


def _source_file_dtype(verdicts: list[FileVerdict]) -> object:
    """The dtype pandas gives validate.py's source_file column: it infers one from the file
    paths of *all* parsed rows (rejected ones too), so an empty frame of accepted rows still
    has the dtype of the full one."""
    with_rows = [v.path for v in verdicts if len(v.rows)]
    sample = np.asarray(with_rows[:1], dtype=object)
    return pd.DataFrame({SOURCE_FILE: sample})[SOURCE_FILE].dtype


class _Kind:
    """The files of one kind: their surviving records as one batch, and where each came from."""

    def __init__(self, kind: str, verdicts: list[FileVerdict], latest: pd.Timestamp) -> None:
        self.kind, self.verdicts = kind, verdicts
        names = schemas.columns(MODELS[kind])
        dates = schemas.columns_of_dtype(MODELS[kind], "M")
        self.late: list[pd.DataFrame] = []  # per file: pos, column of dates after `latest`
        parts, owners, positions = [], [], []
        bound = latest.to_datetime64()
        for j, v in enumerate(verdicts):
            late_pos, late_col = [], []
            late_any = np.zeros(v.rows.num_rows, dtype=bool)
            for column in dates:
                over = _column(v.rows, column) > bound  # NaT (no date) is never late
                late_any |= over
                late_pos.append(np.flatnonzero(over))
                late_col += [column] * int(over.sum())
            self.late.append(
                pd.DataFrame(
                    {"pos": np.concatenate(late_pos or [np.empty(0, np.int64)]), "column": late_col}
                )
            )
            alive_mask = ~_column(v.rows, FAILED) & ~late_any
            alive = np.flatnonzero(alive_mask)
            rows = v.rows.select([*names, SOURCE_LINE])
            parts.append(rows if alive_mask.all() else rows.take(pa.array(alive)))
            owners.append(np.full(len(alive), j, dtype=np.int64))
            positions.append(alive.astype(np.int64))
        dtypes = _dtypes(kind)
        if parts:
            table = pa.concat_tables(parts)
            frame = table.select(names).to_pandas()
            lines = _column(table, SOURCE_LINE).astype(np.int64)
        else:
            frame = pd.DataFrame({name: [] for name in names})
            lines = np.empty(0, dtype=np.int64)
        frame = frame.astype({name: dtypes[name] for name in names})
        frame[SOURCE_FILE] = _source_files(verdicts, [p.num_rows for p in parts])
        frame[SOURCE_LINE] = lines
        self.frame = frame
        self.owner = np.concatenate(owners) if owners else np.empty(0, np.int64)
        self.position = np.concatenate(positions) if positions else np.empty(0, np.int64)
        self.batch = _Batch(
            kind,
            pd.DataFrame(),
            self.frame,
            _concat_failures([]),
            [],
            np.zeros(1, dtype=np.int64),
            np.empty(0, dtype=np.int64),
        )

    def rejected_and_counts(self) -> tuple[list[pd.DataFrame], list[tuple]]:
        """Rejected-row frames (as validate.py builds them) and the input_files records."""
        kind, names = self.kind, schemas.columns(MODELS[self.kind])
        cross = self.batch.failures.drop_duplicates()
        cross_rows = cross[_ROW].to_numpy(dtype=np.int64)
        cross_owner = self.owner[cross_rows]
        duplicates = np.bincount(
            self.owner[self.batch.duplicate_rows], minlength=len(self.verdicts)
        )
        grouped_parts, bad_parts, records = [], [], []
        for j, v in enumerate(self.verdicts):
            late, mine = self.late[j], cross_owner == j
            read = v.rows_read
            if not len(v.failures) and not len(late) and not mine.any():  # a clean file
                records.append((v.path, kind, read, read, 0, int(duplicates[j]), "ok"))
                continue
            kept = v.failures
            bad = kept.loc[kept["pos"] == -1]
            kept = kept.loc[kept["pos"] >= 0]
            cross_pos = self.position[cross_rows[mine]]
            cross_rule = cross["rule"].to_numpy(dtype=object)[mine].tolist()
            cross_column = cross["column"].to_numpy(dtype=object)[mine].tolist()
            new = pd.DataFrame(
                {
                    "pos": np.concatenate([late["pos"].to_numpy(np.int64), cross_pos]),
                    "rule": ["date_range"] * len(late) + cross_rule,
                    "column": late["column"].tolist() + cross_column,
                }
            )
            if len(new):
                kept = pd.concat(
                    [kept, self._described(v, new, cross_rows[mine])], ignore_index=True
                )
            failed = _column(v.rows, FAILED).copy()
            failed[kept["pos"].to_numpy(dtype=np.int64)] = True
            n_rejected = int(failed.sum()) + len(bad)
            accepted = read - n_rejected
            records.append((v.path, kind, read, accepted, n_rejected, int(duplicates[j]), "ok"))
            if len(kept):
                grouped_parts.append(_grouped(kind, v.path, kept, names))
            if len(bad):
                bad_parts.append(_bad_rows_frame(kind, v.path, bad))
        parts = []
        if grouped_parts:
            parts.append(pd.concat(grouped_parts, ignore_index=True))
        return parts + bad_parts, records

    def _described(self, v: FileVerdict, new: pd.DataFrame, cross_rows: np.ndarray) -> pd.DataFrame:
        """Message fragments, lines and JSON for failures found in this run."""
        raw = v.load_raw()
        pos = new["pos"].to_numpy(dtype=np.int64)
        n_late = len(new) - len(cross_rows)
        texts = [
            raw.text[column].iloc[p] if column in raw.text.columns else None
            for p, column in zip(pos[:n_late], new["column"].iloc[:n_late], strict=True)
        ]
        texts += [
            self.frame.at[r, column] if column in self.frame.columns else None
            for r, column in zip(cross_rows, new["column"].iloc[n_late:], strict=True)
        ]
        unique_pos = np.unique(pos)
        json_of = dict(zip(unique_pos.tolist(), rows_as_json(raw, unique_pos), strict=True))
        line = _column(v.rows, SOURCE_LINE)
        return failure_frame(
            {
                "pos": pos,
                "line": line[pos],
                "rule": new["rule"].to_numpy(dtype=object),
                "column": new["column"].to_numpy(dtype=object),
                "message": [
                    message_piece(self.kind, rule, column, text)
                    for rule, column, text in zip(new["rule"], new["column"], texts, strict=True)
                ],
                "row": [json_of[p] for p in pos.tolist()],
            }
        )


def _grouped(kind: str, path: str, failures: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One rejected row per record, its failures in rule then column order (as validate.py)."""
    rule_rank, column_rank = rank_keys(kind, failures["rule"], failures["column"])
    failures = failures.assign(_rr=rule_rank, _cr=column_rank).sort_values(
        ["pos", "_rr", "_cr"], kind="stable"
    )
    grouped = failures.groupby("pos", sort=True).agg(
        rule=("rule", "; ".join),
        column=("column", "; ".join),
        message=("message", "; ".join),
        line=("line", "first"),
        row=("row", "first"),
    )
    return pd.DataFrame(
        {
            "file": np.full(len(grouped), path, dtype=object),
            "kind": kind,
            "line": grouped["line"].to_numpy(dtype=np.int64),
            "rule": grouped["rule"].to_numpy(),
            "column": grouped["column"].to_numpy(),
            "message": grouped["message"].to_numpy(),
            "row": grouped["row"].to_numpy(dtype=object),
        }
    )


def _bad_rows_frame(kind: str, path: str, bad: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": path,
            "kind": kind,
            "line": bad["line"].to_numpy(),
            "rule": "field_count",
            "column": "",
            "message": bad["message"].to_numpy(),
            "row": bad["row"].to_numpy(),
        }
    )


def _rejected_rows(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=REJECTED_ROW_COLUMNS).astype({"line": "int64"})
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["kind", "file", "line"], kind="stable").reset_index(drop=True)
