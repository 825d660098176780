"""End to end on the local target: a hand-made input folder, every figure derived by hand.

Portfolio P1 (client C1, benchmark B1) has two accounts, valued 2024-01-02 .. 2024-01-08:
A1  Tue 01-02 DEPOSIT 10,000; BUY 50 S1 @ 100 fee 10 -> cash 4,990
    Thu 01-04 DEPOSIT 1,000
    Fri 01-05 SELL 10 S1 @ 110 fee 5 -> cash + 1,095
A2  Wed 01-03 DEPOSIT 2,000
    Sat 01-06 FEE 20 -> applies Monday 01-08
S1 closes: 01-02 100, 01-03 102, (none on 01-04), 01-05 105, Sat 01-06 106 (counts on 01-08).
"""

import math
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import pyxirr
from dagster import materialize

from perf_pipeline.assets.inputs import inputs
from perf_pipeline.assets.performance import performance_metrics
from perf_pipeline.assets.valuation import valuations
from perf_pipeline.resources.deployments import local_resources

TX_HEADER = (
    "transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,price,amount,"
    "fee,currency\n"
)
TRANSACTIONS = TX_HEADER + """T1,P1,A1,,2024-01-02,DEPOSIT,,,10000,,USD
T2,P1,A1,S1,2024-01-02,BUY,50,100,,10,USD
T3,P1,A2,,2024-01-03,DEPOSIT,,,2000,,USD
T4,P1,A1,,2024-01-04,DEPOSIT,,,1000,,USD
T5,P1,A1,S1,2024-01-05,SELL,10,110,,5,USD
T6,P1,A2,,2024-01-06,FEE,,,20,,USD
"""
PRICES = """security_id,date,close,currency
S1,2024-01-02,100,USD
S1,2024-01-03,102,USD
S1,2024-01-05,105,USD
S1,2024-01-06,106,USD
"""
BENCHMARKS = """benchmark_id,date,close
B1,2023-12-29,100
B1,2024-01-02,101
B1,2024-01-03,100
B1,2024-01-04,102
B1,2024-01-05,103
B1,2024-01-08,104
"""
PORTFOLIOS = """portfolio_id,client_id,base_currency,benchmark_id
P1,C1,USD,B1
"""
DATES = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"])

# Market values and flows by hand, date by date (None: before inception).
A1_MV = [4990 + 50 * 100, 4990 + 50 * 102, 5990 + 50 * 102, 7085 + 40 * 105, 7085 + 40 * 106]
A2_MV = [None, 2000, 2000, 2000, 1980]
S1_MV = [50 * 100, 50 * 102, 50 * 102, 40 * 105, 40 * 106]
P1_MV = [9990, 10090 + 2000, 11090 + 2000, 11285 + 2000, 11325 + 1980]
P1_IN = [10000, 2000, 1000, 0, 0]
S1_IN = [5010, 0, 0, 0, 0]
S1_OUT = [0, 0, 0, 1095, 0]
S1_AGE = [0, 0, 1, 0, 2]


def hand_returns(mv, inflow, outflow) -> list[float]:
    """r_t = (MV_t + OUT_t) / (MV_{t-1} + IN_t) - 1, value 0 before the first date."""
    out, previous = [], 0.0
    for value, i, o in zip(mv, inflow, outflow, strict=True):
        out.append((value + o) / (previous + i) - 1)
        previous = value
    return out


P1_R = hand_returns(P1_MV, P1_IN, [0] * 5)
S1_R = hand_returns(S1_MV, S1_IN, S1_OUT)
A2_R = [0.0, 0.0, 0.0, 1980 / 2000 - 1]


def write_input(root: Path) -> Path:
    for kind, text in (("transactions", TRANSACTIONS), ("prices", PRICES),
                       ("benchmarks", BENCHMARKS), ("portfolios", PORTFOLIOS)):
        (root / kind / "2024").mkdir(parents=True, exist_ok=True)
        (root / kind / "2024" / f"{kind}.csv").write_text(text)
    return root


AS_OF = "2024-01-08"


def run_materialize(root: Path, store: Path, monkeypatch, as_of: str | None = AS_OF) -> None:
    monkeypatch.setenv("PERF_INPUT", str(root))
    monkeypatch.setenv("PERF_STORE", str(store))
    result = materialize(
        [inputs, valuations, performance_metrics], resources=local_resources(),
        run_config={"resources": {"run_request": {"config": {"as_of": as_of}}}},
    )
    assert result.success
    for check in result.get_asset_check_evaluations():
        assert check.passed, check.check_name


def table(store: Path, name: str) -> pd.DataFrame:
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute(f'SELECT * FROM "{name}"').df()


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
    assert set(daily["entity_id"]) == {"P1", "A1", "A2", "A1:S1"}
    p1, a1, a2, s1 = (entity_rows(daily, e) for e in ("P1", "A1", "A2", "A1:S1"))
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
    twr = math.prod(1 + r for r in P1_R) - 1
    assert row["twr"] == pytest.approx(twr, rel=1e-12)
    assert pd.isna(row["twr_annualized"])  # 7 days: never annualized
    # Modified Dietz over (2024-01-01, 2024-01-08]: 7 days, flows on days 1, 2 and 3.
    weighted = 10000 * 6 / 7 + 2000 * 5 / 7 + 1000 * 4 / 7
    assert row["modified_dietz"] == pytest.approx((13305 - 13000) / weighted, rel=1e-12)
    # MWR: pyxirr's annual rate, turned into the 7-day period's own rate.
    annual = pyxirr.xirr(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-08"],
                         [-10000, -2000, -1000, 13305])
    assert row["mwr"] == pytest.approx((1 + annual) ** (7 / 365) - 1, rel=1e-8)
    assert pd.isna(row["mwr_annualized"])
    r = np.array(P1_R)
    assert row["volatility"] == pytest.approx(np.std(r) * math.sqrt(252), rel=1e-12)
    closes = np.array([100, 101, 100, 102, 103, 104.0])
    m = closes[1:] / closes[:-1] - 1
    beta = np.mean((r - r.mean()) * (m - m.mean())) / np.var(m)
    assert row["beta"] == pytest.approx(beta, rel=1e-10)
    assert row["benchmark_twr"] == pytest.approx(0.04, rel=1e-12)
    assert row["benchmark_id"] == "B1"
    drawdown = 1 - min(np.cumprod(1 + r) / np.maximum.accumulate(np.r_[1, np.cumprod(1 + r)])[1:])
    assert row["max_drawdown"] == pytest.approx(drawdown, rel=1e-12)


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
    done = subprocess.run(
        [sys.executable, "-m", "perf_pipeline.cli", "run", "--input", str(root),
         "--store", str(cli_store), "--target", "local", "--as-of", AS_OF],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
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


def test_cli_bad_arguments_exit_2(tmp_path):
    for args in (["run", "--as-of", "2024-02-30"], ["run", "--target", "mars"],
                 ["run", "--input", str(tmp_path / "missing")], ["launch"]):
        done = subprocess.run([sys.executable, "-m", "perf_pipeline.cli", *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, args


def test_rerun_keeps_created_at_and_moves_updated_at(clean_run, tmp_path, monkeypatch):
    root, _ = clean_run
    store = tmp_path / "perf.duckdb"
    run_materialize(root, store, monkeypatch)
    first = table(store, "performance_metrics")
    run_materialize(root, store, monkeypatch)
    second = table(store, "performance_metrics")
    assert len(first) == len(second)
    merged = first.merge(second, on=["id", "calculation_date", "time_period"])
    assert (merged["created_at_x"] == merged["created_at_y"]).all()
    assert (merged["updated_at_y"] > merged["updated_at_x"]).all()


BAD_TRANSACTIONS = TX_HEADER + """bad id!,P1,A1,,2024-01-03,DEPOSIT,,,5,,USD
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
B12,P1,A1,,2024-01-03,DEPOSIT,,,5,,EUR
B13,P1,A1,,2024-01-03,DEPOSIT,,,5,,USD
B13,P1,A1,,2024-01-03,DEPOSIT,,,6,,USD
B15,P1,A1,,2024-01-03,DEPOSIT,,,5,,USD,surplus
T1,P1,A1,,2024-01-02,DEPOSIT,,,10000.0,0,USD
"""
EXPECTED_REJECTS = {  # line -> rule
    2: "id_pattern", 3: "not_null", 4: "iso_currency", 5: "type_allowed", 6: "date_format",
    7: "number_format", 8: "finite", 9: "date_range", 10: "positive", 11: "non_negative",
    12: "required_for_type", 13: "currency_matches_portfolio", 14: "duplicate_conflict",
    15: "duplicate_conflict", 16: "field_count",
}


def test_bad_input_is_rejected_and_kept_and_good_rows_still_count(clean_run, tmp_path,
                                                                   monkeypatch):
    _, clean_store = clean_run
    root = write_input(tmp_path / "input")
    (root / "transactions" / "bad").mkdir()
    (root / "transactions" / "bad" / "bad.csv").write_text(BAD_TRANSACTIONS)
    (root / "transactions" / "no_type.csv").write_text(
        "transaction_id,portfolio_id,account_id,trade_date,amount,currency\n"
        "N1,P1,A1,2024-01-03,5,USD\n")
    (root / "prices" / "garbage.parquet").write_bytes(bytes(range(256)) * 4)
    (root / "prices" / "zero.csv").write_text("security_id,date,close,currency\n"
                                              "S1,2024-01-04,0,USD\n")
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
        pd.testing.assert_frame_equal(table(store, name).drop(columns=volatile, errors="ignore"),
                                      table(clean_store, name).drop(columns=volatile,
                                                                    errors="ignore"))
