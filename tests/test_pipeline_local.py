"""End to end on the local target: the hand-made input of handmade.py through Dagster, the way
`perf-pipeline run` does it (the inputs run, then the planned partition ranges)."""

import math
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from handmade import (
    A1_MV,
    A2_MV,
    A2_R,
    AS_OF,
    DATES,
    P1_IN,
    P1_MV,
    P1_R,
    S1_AGE,
    S1_IN,
    S1_MV,
    S1_OUT,
    S1_R,
    TX_HEADER,
    p1_itd_expected,
    write_input,
)

from perf_pipeline.cli import main


def run_materialize(root: Path, store: Path, monkeypatch, as_of: str | None = AS_OF) -> None:
    """`perf-pipeline run` in this process (it fails on a failed step or blocking check)."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    args = ["run", "--input", str(root), "--store", str(store), "--target", "local"]
    assert main(args + (["--as-of", as_of] if as_of else [])) == 0


def table(store: Path, name: str) -> pd.DataFrame:
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').df()


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    root = write_input(tmp_path_factory.mktemp("input"))
    store = tmp_path_factory.mktemp("store") / "perf.duckdb"
    with pytest.MonkeyPatch.context() as monkeypatch:
        run_materialize(root, store, monkeypatch)
    return root, store


def entity_rows(daily: pd.DataFrame, entity_id: str) -> pd.DataFrame:
    return daily.loc[daily["entity_id"] == entity_id].sort_values("date").reset_index(drop=True)


def test_daily_valuations_match_hand_figures(clean_run):
    _, store = clean_run
    daily = table(store, "daily_valuations")
    cash = {"A1:CASH.USD", "A2:CASH.USD"}
    assert set(daily["entity_id"]) == {"P1", "A1", "A2", "A1:S1", *cash}
    p1, a1, a2, s1 = (entity_rows(daily, e) for e in ("P1", "A1", "A2", "A1:S1"))
    cash_a1, cash_a2 = entity_rows(daily, "A1:CASH.USD"), entity_rows(daily, "A2:CASH.USD")
    np.testing.assert_allclose(cash_a1["market_value"], [4990, 4990, 5990, 7085, 7085])
    np.testing.assert_allclose(cash_a2["market_value"], [2000, 2000, 2000, 1980])
    # a cash position in the base currency earns nothing; the FEE of 20 is its own loss
    np.testing.assert_allclose(cash_a2["daily_return"], [0, 0, 0, -0.01], atol=1e-15)
    assert (daily["fx_return"].dropna() == 0).all()  # one currency: no currency part
    assert list(pd.to_datetime(p1["date"])) == list(DATES)
    np.testing.assert_allclose(p1["market_value"], P1_MV, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a1["market_value"], A1_MV, rtol=0, atol=1e-9)
    assert list(pd.to_datetime(a2["date"])) == list(DATES[1:])  # inception 01-03
    np.testing.assert_allclose(a2["market_value"], A2_MV[1:], rtol=0, atol=1e-9)
    np.testing.assert_allclose(s1["market_value"], S1_MV, rtol=0, atol=1e-9)
    np.testing.assert_allclose(p1["inflow"], P1_IN, atol=1e-9)
    np.testing.assert_allclose(s1["inflow"], S1_IN, atol=1e-9)
    np.testing.assert_allclose(s1["outflow"], S1_OUT, atol=1e-9)
    np.testing.assert_allclose(p1["daily_return"], P1_R, rtol=1e-12)
    np.testing.assert_allclose(s1["daily_return"], S1_R, rtol=1e-12)
    np.testing.assert_allclose(a2["daily_return"], A2_R, atol=1e-12)
    np.testing.assert_allclose(p1["twr_index"], np.cumprod(1 + np.array(P1_R)), rtol=1e-12)
    np.testing.assert_allclose(s1["price_age_days"], S1_AGE)
    assert p1["price_age_days"].isna().all()


def test_positions_change_log(clean_run):
    _, store = clean_run
    held = table(store, "positions")
    s1 = held.loc[held["security_id"] == "S1"].sort_values("date")
    assert list(s1["quantity"]) == [50, 40]
    cash_a1 = held.loc[(held["account_id"] == "A1") & held["security_id"].isna()]
    assert list(cash_a1.sort_values("date")["quantity"]) == [4990, 5990, 7085]


def itd(metrics: pd.DataFrame, entity_id: str) -> pd.Series:
    rows = metrics.loc[(metrics["entity_id"] == entity_id) & (metrics["time_period"] == "ITD")]
    assert len(rows) == 1
    return rows.iloc[0]


def test_portfolio_metrics_match_hand_figures(clean_run):
    _, store = clean_run
    metrics = table(store, "performance_metrics")
    # As-of 2024-01-08 is no month-end: the only calculation date is the latest one.
    assert set(pd.to_datetime(metrics["calculation_date"])) == {pd.Timestamp("2024-01-08")}
    row = itd(metrics, "P1")
    assert pd.Timestamp(row["start_date"]) == pd.Timestamp("2024-01-01")
    assert row["id"] == "portfolio#P1" and row["client_id"] == "C1"
    assert row["benchmark_id"] == "B1"
    for name, value in p1_itd_expected().items():
        tolerance = 1e-8 if name == "mwr" else 1e-10
        assert row[name] == pytest.approx(value, rel=tolerance), name
    assert pd.isna(row["twr_annualized"])  # 7 days: never annualized
    assert pd.isna(row["mwr_annualized"])


def test_periods_reported_and_partial(clean_run):
    _, store = clean_run
    metrics = table(store, "performance_metrics")
    p1 = metrics.loc[metrics["entity_id"] == "P1"].set_index("time_period")
    # Born 2024-01-02: MTD/QTD/YTD fall back to the ITD base, trailing periods do not exist.
    assert sorted(p1.index) == ["ITD", "MTD", "QTD", "YTD"]
    assert p1.loc[["MTD", "QTD", "YTD"], "partial_period"].all()
    assert not p1.loc["ITD", "partial_period"]
    assert (p1["twr"] == p1.loc["ITD", "twr"]).all()


def test_security_and_account_metrics(clean_run):
    _, store = clean_run
    metrics = table(store, "performance_metrics")
    s1 = itd(metrics, "A1:S1")
    assert s1["twr"] == pytest.approx(math.prod(1 + r for r in S1_R) - 1, rel=1e-12)
    assert s1["benchmark_id"] == "B1"  # the portfolio's benchmark
    a2 = itd(metrics, "A2")
    assert pd.Timestamp(a2["start_date"]) == pd.Timestamp("2024-01-02")  # day before 01-03
    assert a2["twr"] == pytest.approx(-0.01, rel=1e-12)


def test_cli_run_writes_the_same_tables(clean_run, tmp_path):
    root, store = clean_run
    cli_store = tmp_path / "cli.duckdb"
    home = tmp_path / "dagster_home_not_there_yet"  # the CLI makes it, and records the run
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "perf_pipeline.cli",
            "run",
            "--input",
            str(root),
            "--store",
            str(cli_store),
            "--target",
            "local",
            "--as-of",
            AS_OF,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "DAGSTER_HOME": str(home)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (home / "history").is_dir()
    assert "P1" in done.stdout and f"{math.prod(1 + r for r in P1_R) - 1:+.2%}" in done.stdout
    volatile = ["request_id", "created_at", "updated_at"]
    for name in ("daily_valuations", "positions", "performance_metrics", "transactions"):
        ours = table(cli_store, name).drop(columns=volatile, errors="ignore")
        theirs = table(store, name).drop(columns=volatile, errors="ignore")
        pd.testing.assert_frame_equal(ours, theirs)


def test_default_as_of_is_the_last_business_day_of_the_input(clean_run, tmp_path, monkeypatch):
    root, _ = clean_run
    store = tmp_path / "perf.duckdb"
    run_materialize(root, store, monkeypatch, as_of=None)
    daily = table(store, "daily_valuations")
    # The latest input date is Saturday 01-06: valued up to Friday 01-05, and the FEE dated
    # that Saturday (effective Monday) is kept in transactions but not valued.
    assert pd.to_datetime(daily["date"]).max() == pd.Timestamp("2024-01-05")
    assert "T6" in set(table(store, "transactions")["transaction_id"])
    a2 = entity_rows(daily, "A2")
    assert (a2["market_value"] == 2000).all()


def test_an_earlier_as_of_after_a_later_one_recomputes_nothing(
    clean_run, tmp_path, monkeypatch, capsys
):
    root, _ = clean_run
    store = tmp_path / "perf.duckdb"
    run_materialize(root, store, monkeypatch)  # as of 2024-01-08
    before = table(store, "performance_metrics")
    capsys.readouterr()
    run_materialize(root, store, monkeypatch, as_of="2024-01-03")
    out = capsys.readouterr().out
    assert "then 0 partition run(s)" in out  # 01-03 is up to date
    # the summary speaks of the latest day computed, where the latest ITD figures are
    assert "entities on 2024-01-08" in out
    assert f"{math.prod(1 + r for r in P1_R) - 1:+.2%}" in out
    pd.testing.assert_frame_equal(table(store, "performance_metrics"), before)


def test_cli_bad_arguments_exit_2(tmp_path):
    for args in (
        ["run", "--as-of", "2024-02-30"],
        ["run", "--target", "mars"],
        ["run", "--input", str(tmp_path / "missing")],
        ["launch"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "perf_pipeline.cli", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, args


BAD_TRANSACTIONS = (
    TX_HEADER
    + """bad id!,P1,A1,,2024-01-03,DEPOSIT,,,5,,USD
B02,,A1,,2024-01-03,DEPOSIT,,,5,,USD
B03,P1,A1,,2024-01-03,DEPOSIT,,,5,,usd
B04,P1,A1,,2024-01-03,GIFT,,,5,,USD
B05,P1,A1,,2024/01/03,DEPOSIT,,,5,,USD
B06,P1,A1,,2024-01-03,DEPOSIT,,,"1,000",,USD
B07,P1,A1,,2024-01-03,DEPOSIT,,,inf,,USD
B08,P1,A1,,1899-12-31,DEPOSIT,,,5,,USD
B09,P1,A1,S1,2024-01-03,BUY,-5,100,,,USD
B10,P1,A1,,2024-01-03,DEPOSIT,,,5,-1,USD
B11,P1,A1,,2024-01-03,BUY,5,100,,,USD
B12,P1,A1,S1,2024-01-03,BUY,5,100,,,EUR
B13,P1,A1,,2024-01-03,DEPOSIT,,,5,,USD
B13,P1,A1,,2024-01-03,DEPOSIT,,,6,,USD
B15,P1,A1,,2024-01-03,DEPOSIT,,,5,,USD,surplus
T1,P1,A1,,2024-01-02,DEPOSIT,,,10000.0,0,USD
"""
)
EXPECTED_REJECTS = {  # line -> rule
    2: "id_pattern",
    3: "not_null",
    4: "iso_currency",
    5: "type_allowed",
    6: "date_format",
    7: "number_format",
    8: "finite",
    9: "date_range",
    10: "positive",
    11: "non_negative",
    12: "required_for_type",
    13: "currency_matches_security",
    14: "duplicate_conflict",
    15: "duplicate_conflict",
    16: "field_count",
}


def test_bad_input_is_rejected_and_kept_and_good_rows_still_count(clean_run, tmp_path, monkeypatch):
    _, clean_store = clean_run
    root = write_input(tmp_path / "input")
    (root / "transactions" / "bad").mkdir()
    (root / "transactions" / "bad" / "bad.csv").write_text(BAD_TRANSACTIONS)
    (root / "transactions" / "no_type.csv").write_text(
        "transaction_id,portfolio_id,account_id,trade_date,amount,currency\n"
        "N1,P1,A1,2024-01-03,5,USD\n"
    )
    (root / "prices" / "garbage.parquet").write_bytes(bytes(range(256)) * 4)
    (root / "prices" / "zero.csv").write_text(
        "security_id,date,close,currency\nS1,2024-01-04,0,USD\n"
    )
    store = tmp_path / "perf.duckdb"
    run_materialize(root, store, monkeypatch)  # succeeds, every check passes

    rejected = table(store, "rejected_rows")
    bad = rejected.loc[rejected["file"].str.endswith("transactions/bad/bad.csv")]
    got = {int(line): rule for line, rule in zip(bad["line"], bad["rule"], strict=True)}
    assert got == EXPECTED_REJECTS
    assert bad.loc[bad["line"] == 2, "row"].iloc[0].startswith('{"transaction_id": "bad id!"')
    zero = rejected.loc[rejected["file"].str.endswith("prices/zero.csv")]
    assert list(zero["rule"]) == ["positive"] and list(zero["column"]) == ["close"]
    files = table(store, "rejected_files")
    assert {Path(f).name for f in files["file"]} == {"garbage.parquet", "no_type.csv"}
    assert files["reason"].str.len().gt(0).all()

    counts = table(store, "input_files").set_index("file")
    bad_counts = counts.loc[next(f for f in counts.index if f.endswith("bad/bad.csv"))]
    assert bad_counts["rows_read"] == 16
    assert bad_counts["rows_rejected"] == 15 and bad_counts["duplicates"] == 1
    ok = counts.loc[counts["status"] == "ok"]
    assert (ok["rows_read"] == ok["rows_accepted"] + ok["rows_rejected"]).all()

    # The good rows give exactly the figures of the clean run.
    volatile = ["request_id", "created_at", "updated_at"]
    for name in ("daily_valuations", "performance_metrics"):
        pd.testing.assert_frame_equal(
            table(store, name).drop(columns=volatile, errors="ignore"),
            table(clean_store, name).drop(columns=volatile, errors="ignore"),
        )
