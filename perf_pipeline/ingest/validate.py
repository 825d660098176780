"""Validate every input file (docs/data.md) and keep every rejected row and file.

Order of work (all vectorized over the rows of one kind):

1. Read each file (:func:`reading.read_file`); an unreadable file, an unknown kind, or a file
   without a non-nullable column of its kind goes to ``rejected_files`` and is not counted as
   read. Files are processed in path order, so "first copy" below means the lowest path, then
   the lowest line.
2. Parse dates and numbers from text (rules ``date_format``, ``number_format``, ``finite``);
   the fee default (null -> 0) is applied here.
3. Run the kind's pandera model lazily; every failure of every row is collected. A cell that
   failed to parse is reported only by its parse rule (not also as ``not_null`` or
   ``required_for_type``).
4. Among the rows that pass 2-3, rows with the same key (``schemas.KEYS``) and the same parsed
   content (every model column but ``schemas.NOT_COMPARED``) are one record (the first copy is
   kept, the others count as ``duplicates`` of their file); rows with the same key and
   different content are all rejected (``duplicate_conflict``).
   An account_id must belong to one portfolio (entities are keyed by account_id): when the
   surviving transactions name one account under several portfolios, every row of that
   account is rejected (``account_in_one_portfolio``), nothing merged.
5. A security's surviving prices must be in one currency: when they come in several, the
   currency with the most rows is the security's and the rows of every other currency are
   rejected; on a tie for the most rows no currency can be told right and every row of the
   security is rejected (``one_currency_per_security``).
6. Transactions of ``schemas.SECURITY_TYPES`` (BUY, SELL, TRANSFER_IN, TRANSFER_OUT, DIVIDEND)
   must be in their security's currency from step 5 (``currency_matches_security``); a
   security with no accepted price accepts any currency. Other types may be in any currency.
7. Portfolios: every portfolio_id of a surviving transaction that has no accepted portfolio
   row gets an inferred one (client_id = portfolio_id, no benchmark, the currency of its
   earliest transaction by trade_date then transaction_id). A portfolio whose rows were all
   rejected is inferred the same way, as if its row were absent; its rejected rows stay in
   ``rejected_rows``.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd
import pandera.pandas as pa

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
from perf_pipeline.ingest.schemas import (
    MODELS,
    RULE_TEXT,
    RULES,
    PortfoliosModel,
    PricesModel,
    TransactionsModel,
)

SOURCE_FILE: Final = "source_file"
SOURCE_LINE: Final = "source_line"
INFERRED: Final = "inferred"
REJECTED_ROW_COLUMNS: Final = ["file", "kind", "line", "rule", "column", "message", "row"]
REJECTED_FILE_COLUMNS: Final = ["file", "kind", "reason", "size_bytes"]
INPUT_FILE_COLUMNS: Final = [
    "file", "kind", "rows_read", "rows_accepted", "rows_rejected", "duplicates", "status",
]  # fmt: skip
DEFAULTS: Final = {"transactions": {TransactionsModel.fee: 0.0}}
"""Values given to null cells of nullable columns after parsing (docs/data.md: fee default 0)."""

_ROW: Final = "_row"
_VALUE_PREVIEW: Final = 40


@dataclass(frozen=True)
class ValidatedInputs:
    """The validated input tables and the account of everything rejected.

    ``portfolios``: portfolio_id, client_id, base_currency, benchmark_id, inferred (bool).
    ``transactions``: the TransactionsModel columns + source_file, source_line; trade_date
    datetime64[ns], numbers float64 (fee null -> 0); unique transaction_id; sorted by
    trade_date, transaction_id; the optional columns fx_rate, counter_amount (NaN) and
    counter_currency (null) are there even when no file has them. ``prices`` / ``benchmarks``:
    their model columns + source_file, source_line, sorted by id then date. ``fx_rates``: date,
    base, quote, rate, source + source_file, source_line, sorted by date, base, quote.
    ``rejected_rows``: file, kind, line, rule, column, message, row (rules and columns of one
    row joined with "; "). ``rejected_files``: file, kind, reason, size_bytes.
    ``input_files``: file, kind, rows_read, rows_accepted, rows_rejected, duplicates, status;
    rows_read == rows_accepted + rows_rejected.
    """

    portfolios: pd.DataFrame
    transactions: pd.DataFrame
    prices: pd.DataFrame
    benchmarks: pd.DataFrame
    fx_rates: pd.DataFrame
    rejected_rows: pd.DataFrame
    rejected_files: pd.DataFrame
    input_files: pd.DataFrame


@dataclass
class _Batch:
    """All rows of one kind: parsed frame, failures so far, and the tables they came from."""

    kind: str
    text: pd.DataFrame
    frame: pd.DataFrame
    failures: pd.DataFrame
    tables: list[tuple[str, RawTable]]
    offsets: np.ndarray
    duplicate_rows: np.ndarray


def validate_inputs(
    files: list[RawFile],
    today: dt.date,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ValidatedInputs:
    """Read, parse and validate ``files`` (see the module docstring); ``today`` is the run's
    date in UTC (dates up to today + 1 day are accepted)."""
    latest = today + dt.timedelta(days=1)
    tables: dict[str, list[tuple[str, RawTable]]] = {kind: [] for kind in KINDS}
    rejected_files: list[tuple[str, str, str, int]] = []
    for file in sorted(files, key=lambda f: (f.kind, f.path)):
        reason = None
        if file.kind not in KINDS:
            reason = f"unknown kind {file.kind!r}: expected one of {', '.join(KINDS)}"
        else:
            try:
                table = read_file(file, max_file_bytes)
            except UnreadableFileError as exc:
                reason = str(exc)
            else:
                required = schemas.required_columns(MODELS[file.kind])
                missing = [c for c in required if c not in table.text.columns]
                if missing:
                    reason = f"missing required column(s): {', '.join(missing)}"
                else:
                    tables[file.kind].append((file.path, table))
        if reason is not None:
            rejected_files.append((file.path, file.kind, reason, len(file.data)))

    batches = {kind: _row_rules(kind, tables[kind], latest) for kind in KINDS}
    portfolios, transactions = cross_file_rules(batches)
    return ValidatedInputs(
        portfolios=portfolios,
        transactions=transactions,
        prices=_sorted_by_key(batches["prices"]),
        benchmarks=_sorted_by_key(batches["benchmarks"]),
        fx_rates=_sorted_by_key(batches["fx_rates"]),
        rejected_rows=_rejected_rows(batches),
        rejected_files=pd.DataFrame(rejected_files, columns=REJECTED_FILE_COLUMNS),
        input_files=_input_files(batches, rejected_files),
    )


def cross_file_rules(batches: dict[str, _Batch]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Steps 4-7 over every file's rows that passed the row rules: duplicates collapsed or
    rejected, one owner per account, one currency per security, transactions in their
    security's currency, portfolios inferred; (portfolios, accepted transactions in trade-date
    order). The failures found are added to the batches. The full and the incremental
    validation (ingest.combine) both run exactly this."""
    for batch in batches.values():
        _collapse_duplicates(batch)
    _check_account_owner(batches["transactions"])
    currency_of = _check_price_currency(batches["prices"])
    _check_security_currency(batches["transactions"], currency_of)
    portfolios = _portfolios(batches["portfolios"], batches["transactions"])
    transactions = _accepted(batches["transactions"]).sort_values(
        [TransactionsModel.trade_date, TransactionsModel.transaction_id], kind="stable"
    )
    return portfolios, transactions.reset_index(drop=True)


def _row_rules(kind: str, tables: list[tuple[str, RawTable]], latest: dt.date) -> _Batch:
    """Steps 2-3: parse and run the pandera model over all rows of one kind."""
    model = schemas.with_latest_date(MODELS[kind], latest)
    names = schemas.columns(model)
    texts = [t.text.reindex(columns=names) for _, t in tables]
    text = pd.concat(texts, ignore_index=True) if texts else pd.DataFrame(columns=names)
    text = text.astype(object).where(text.notna(), None).astype("str")
    sizes = np.array([len(t.text) for _, t in tables], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    frame, parse_failures = _parse(model, text)
    for column, value in DEFAULTS.get(kind, {}).items():
        frame[column] = frame[column].fillna(value)
    frame[SOURCE_FILE] = np.repeat([path for path, _ in tables], sizes).astype(object)
    frame[SOURCE_LINE] = (
        np.concatenate([t.lines for _, t in tables]) if tables else np.empty(0, dtype=np.int64)
    )
    failures = _suppress_null_rules(_model_failures(model, frame[names]), parse_failures)
    return _Batch(kind, text, frame, failures, tables, offsets, np.empty(0, dtype=np.int64))


def _parse(model: type[pa.DataFrameModel], text: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Typed frame (dates datetime64[ns], numbers float64, failed cells null) and parse failures."""
    frame = text.copy()
    failures = []
    for column in schemas.columns_of_dtype(model, "M"):
        cells = text[column]
        well_formed = schemas.fullmatch(cells, schemas.DATE_PATTERN)
        parsed = pd.to_datetime(cells.where(well_formed), format="%Y-%m-%d", errors="coerce")
        frame[column] = parsed.astype("datetime64[ns]")
        failures.append(_failures_where(cells.notna() & parsed.isna(), "date_format", column))
    for column in schemas.columns_of_dtype(model, "f"):
        cells = text[column]
        decimal = schemas.fullmatch(cells, schemas.NUMBER_PATTERN)
        values = pd.to_numeric(cells.where(decimal), errors="coerce").astype("float64")
        non_finite = schemas.fullmatch(cells, schemas.NON_FINITE_PATTERN)
        non_finite |= decimal & ~np.isfinite(values)
        malformed = cells.notna() & ~decimal & ~non_finite
        frame[column] = values.where(~non_finite)
        failures.append(_failures_where(malformed, "number_format", column))
        failures.append(_failures_where(non_finite, "finite", column))
    return frame, _concat_failures(failures)


def _failures_where(mask: pd.Series, rule: str, column: str) -> pd.DataFrame:
    rows = np.flatnonzero(mask.to_numpy(dtype=bool))
    return pd.DataFrame({_ROW: rows, "rule": rule, "column": column})


def _concat_failures(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({_ROW: np.empty(0, np.int64), "rule": [], "column": []}).astype(
            {"rule": object, "column": object}
        )
    return pd.concat(parts, ignore_index=True).astype({_ROW: np.int64})


def _model_failures(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> pd.DataFrame:
    """Every (row, rule, column) the pandera model rejects, from ``SchemaErrors.failure_cases``."""
    try:
        model.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        cases = exc.failure_cases
    else:
        return _concat_failures([])
    if cases["index"].isna().any():
        raise RuntimeError(f"schema-level validation failure: {cases[cases['index'].isna()]}")
    pairs = cases[["check", "column"]].drop_duplicates()
    mapped = {
        (check, column): schemas.rule_of_check(check, column)
        for check, column in pairs.itertuples(index=False, name=None)
    }
    rule_col = [mapped[(c, col)] for c, col in zip(cases["check"], cases["column"], strict=True)]
    out = pd.DataFrame(
        {
            _ROW: cases["index"].astype(np.int64).to_numpy(),
            "rule": [rc[0] for rc in rule_col],
            "column": [rc[1] for rc in rule_col],
        }
    )
    return out.drop_duplicates(ignore_index=True)


def _suppress_null_rules(
    model_failures: pd.DataFrame, parse_failures: pd.DataFrame
) -> pd.DataFrame:
    """Drop null-type failures on cells already reported by a parse rule, then add those."""
    null_rules = model_failures["rule"].isin(("not_null", "required_for_type"))
    parsed_cells = pd.MultiIndex.from_frame(parse_failures[[_ROW, "column"]])
    cells = pd.MultiIndex.from_frame(model_failures[[_ROW, "column"]])
    keep = ~(null_rules.to_numpy() & cells.isin(parsed_cells))
    return _concat_failures([model_failures[keep], parse_failures])


def _alive(batch: _Batch) -> np.ndarray:
    """Boolean mask over batch.frame: rows neither rejected nor dropped as duplicates."""
    alive = np.ones(len(batch.frame), dtype=bool)
    alive[batch.failures[_ROW].to_numpy(dtype=np.int64)] = False
    alive[batch.duplicate_rows] = False
    return alive


def _add_failures(batch: _Batch, rows: np.ndarray, rule: str, column: str) -> None:
    extra = pd.DataFrame({_ROW: rows.astype(np.int64), "rule": rule, "column": column})
    batch.failures = _concat_failures([batch.failures, extra])


def _collapse_duplicates(batch: _Batch) -> None:
    """Step 4: identical copies of a key collapse to the first; conflicting copies are rejected."""
    model = MODELS[batch.kind]
    key = list(schemas.KEYS[batch.kind])
    ignored = schemas.NOT_COMPARED.get(batch.kind, ())
    content = [name for name in schemas.columns(model) if name not in ignored]
    alive = np.flatnonzero(_alive(batch))
    rows = batch.frame.iloc[alive]
    repeated = rows.duplicated(subset=key, keep=False).to_numpy()
    if not repeated.any():
        return
    copies = rows[repeated]
    distinct = copies.drop_duplicates(subset=content)
    conflict_keys = distinct.loc[distinct.duplicated(subset=key, keep=False), key].drop_duplicates()
    in_conflict = (
        pd.MultiIndex.from_frame(copies[key]).isin(pd.MultiIndex.from_frame(conflict_keys))
        if len(conflict_keys)
        else np.zeros(len(copies), dtype=bool)
    )
    copy_rows = alive[repeated]
    _add_failures(batch, copy_rows[in_conflict], "duplicate_conflict", "+".join(key))
    identical = copies[~in_conflict]
    later = identical.duplicated(subset=key, keep="first").to_numpy()
    batch.duplicate_rows = copy_rows[~in_conflict][later]


def _check_account_owner(batch: _Batch) -> None:
    """Step 4: reject every row of an account that surviving rows put in several portfolios."""
    t = TransactionsModel
    alive = np.flatnonzero(_alive(batch))
    rows = batch.frame.iloc[alive]
    owners = rows.groupby(t.account_id)[t.portfolio_id].transform("nunique")
    shared = (owners > 1).to_numpy(dtype=bool)
    _add_failures(
        batch, alive[shared], "account_in_one_portfolio", f"{t.account_id}+{t.portfolio_id}"
    )


def _accepted(batch: _Batch) -> pd.DataFrame:
    return batch.frame[_alive(batch)]


def _sorted_by_key(batch: _Batch) -> pd.DataFrame:
    key = list(schemas.KEYS[batch.kind])
    return _accepted(batch).sort_values(key, kind="stable").reset_index(drop=True)


def _portfolios(portfolio_batch: _Batch, transaction_batch: _Batch) -> pd.DataFrame:
    """Step 7: accepted portfolio rows plus inferred rows for the other transacted portfolios."""
    p, t = PortfoliosModel, TransactionsModel
    given = _accepted(portfolio_batch)[schemas.columns(p)].assign(**{INFERRED: False})
    transactions = _accepted(transaction_batch)
    unknown = transactions[~transactions[t.portfolio_id].isin(given[p.portfolio_id])]
    first = unknown.sort_values([t.trade_date, t.transaction_id], kind="stable").drop_duplicates(
        subset=[t.portfolio_id], keep="first"
    )
    inferred = pd.DataFrame(
        {
            p.portfolio_id: first[t.portfolio_id].to_numpy(),
            p.client_id: first[t.portfolio_id].to_numpy(),
            p.base_currency: first[t.currency].to_numpy(),
            p.benchmark_id: pd.Series([None] * len(first), dtype="str").to_numpy(),
            INFERRED: True,
        }
    )
    out = pd.concat([given, inferred], ignore_index=True) if len(inferred) else given
    out = out.astype({name: "str" for name in schemas.columns(p)})
    return out.sort_values(p.portfolio_id, kind="stable").reset_index(drop=True)


def _check_price_currency(batch: _Batch) -> pd.Series:
    """Step 5: reject the prices of every currency but the majority one of their security
    (all of a security's prices on a tie); the currency of each security left, by security_id."""
    p = PricesModel
    alive = np.flatnonzero(_alive(batch))
    rows = batch.frame.iloc[alive]
    counts = rows.groupby([p.security_id, p.currency], sort=False).size()
    if counts.index.get_level_values(0).is_unique:  # the usual case: one currency each
        return pd.Series(
            counts.index.get_level_values(1), index=counts.index.get_level_values(0), dtype=object
        )
    most = counts.groupby(level=0, sort=False).transform("max")
    top = counts[counts == most]
    winners = top[~top.index.get_level_values(0).duplicated(keep=False)].index
    kept = pd.MultiIndex.from_frame(rows[[p.security_id, p.currency]]).isin(winners)
    _add_failures(batch, alive[~kept], "one_currency_per_security", p.currency)
    return pd.Series(winners.get_level_values(1), index=winners.get_level_values(0), dtype=object)


def _check_security_currency(batch: _Batch, currency_of: pd.Series) -> None:
    """Step 6: reject security transactions not in their security's currency (``currency_of``:
    currency by security_id; a security missing from it accepts any currency)."""
    t = TransactionsModel
    alive = np.flatnonzero(_alive(batch))
    rows = batch.frame.iloc[alive]
    expected = rows[t.security_id].map(currency_of)
    wrong = (
        rows[t.type].isin(schemas.SECURITY_TYPES)
        & expected.notna()
        & (rows[t.currency] != expected)
    ).to_numpy(dtype=bool)
    _add_failures(batch, alive[wrong], "currency_matches_security", t.currency)


def _rejected_rows(batches: dict[str, _Batch]) -> pd.DataFrame:
    parts = []
    for batch in batches.values():
        parts.append(_rejected_of_batch(batch))
        for path, table in batch.tables:
            bad = table.bad_rows
            if len(bad):
                parts.append(
                    pd.DataFrame(
                        {
                            "file": path,
                            "kind": batch.kind,
                            "line": bad["line"].to_numpy(),
                            "rule": "field_count",
                            "column": "",
                            "message": bad["message"].to_numpy(),
                            "row": bad["row"].to_numpy(),
                        }
                    )
                )
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=REJECTED_ROW_COLUMNS).astype({"line": "int64"})
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["kind", "file", "line"], kind="stable").reset_index(drop=True)


def _rejected_of_batch(batch: _Batch) -> pd.DataFrame:
    """One row per rejected row of the batch, its failures ordered by RULES then column."""
    failures = batch.failures.drop_duplicates()
    if not len(failures):
        return failures
    names = schemas.columns(MODELS[batch.kind])
    rule_rank = {rule: i for i, rule in enumerate(RULES)}
    column_rank = {name: i for i, name in enumerate(names)}
    failures = failures.assign(
        _rule_rank=failures["rule"].map(rule_rank),
        _column_rank=failures["column"].map(column_rank).fillna(len(names)),
    ).sort_values([_ROW, "_rule_rank", "_column_rank"], kind="stable")
    rows = failures[_ROW].to_numpy()
    frame = batch.frame
    values = [
        _preview(batch.text.at[r, c]) if c in column_rank else ""
        for r, c in zip(rows, failures["column"], strict=True)
    ]
    failures["message"] = [
        f"{column}{value} {RULE_TEXT[rule]}"
        for column, value, rule in zip(failures["column"], values, failures["rule"], strict=True)
    ]
    grouped = failures.groupby(_ROW, sort=True).agg(
        rule=("rule", "; ".join), column=("column", "; ".join), message=("message", "; ".join)
    )
    row_ids = grouped.index.to_numpy(dtype=np.int64)
    table_of = np.searchsorted(batch.offsets, row_ids, side="right") - 1
    row_json = np.empty(len(row_ids), dtype=object)
    for i in np.unique(table_of):
        members = np.flatnonzero(table_of == i)
        positions = row_ids[members] - batch.offsets[i]
        row_json[members] = rows_as_json(batch.tables[i][1], positions)
    return pd.DataFrame(
        {
            "file": frame[SOURCE_FILE].to_numpy()[row_ids],
            "kind": batch.kind,
            "line": frame[SOURCE_LINE].to_numpy()[row_ids],
            "rule": grouped["rule"].to_numpy(),
            "column": grouped["column"].to_numpy(),
            "message": grouped["message"].to_numpy(),
            "row": row_json,
        }
    )


def _preview(text: object) -> str:
    """A cell's text for a message: ` "text"`, shortened; empty for null."""
    if not isinstance(text, str):
        return ""
    if len(text) > _VALUE_PREVIEW:
        text = text[:_VALUE_PREVIEW] + "..."
    return " " + json.dumps(text, ensure_ascii=False)


def _input_files(
    batches: dict[str, _Batch], rejected_files: list[tuple[str, str, str, int]]
) -> pd.DataFrame:
    records = []
    for batch in batches.values():
        rejected = np.zeros(len(batch.frame), dtype=bool)
        rejected[batch.failures[_ROW].to_numpy(dtype=np.int64)] = True
        duplicate = np.zeros(len(batch.frame), dtype=bool)
        duplicate[batch.duplicate_rows] = True
        for i, (path, table) in enumerate(batch.tables):
            span = slice(batch.offsets[i], batch.offsets[i + 1])
            bad = len(table.bad_rows)
            read = len(table.text) + bad
            n_rejected = int(rejected[span].sum()) + bad
            records.append(
                (
                    path,
                    batch.kind,
                    read,
                    read - n_rejected,
                    n_rejected,
                    int(duplicate[span].sum()),
                    "ok",
                )
            )
    records += [(path, kind, 0, 0, 0, 0, "rejected") for path, kind, _, _ in rejected_files]
    out = pd.DataFrame(records, columns=INPUT_FILE_COLUMNS)
    return out.sort_values(["kind", "file"], kind="stable").reset_index(drop=True)
