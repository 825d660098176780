"""Incremental, partitioned processing (issue 7): digests, stale ranges, planned runs, and
end to end on the local target, every result compared with a full recomputation from scratch."""

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from perf_pipeline.cli import main
from perf_pipeline.increments import (
    input_digests,
    plan_runs,
    shard_names,
    shard_of,
    stale_ranges,
)
from perf_pipeline.partitions import extend_months, scope_tags
from perf_pipeline.resources.parquet_store import ParquetStore
from perf_pipeline.sample_data import generate

SHARD_COUNT = ParquetStore(root=".").shards  # the default layout the pipeline tests run with
LAST_DAY = "2024-06-27"  # a Thursday: the day before it is no month-end, so it is superseded
VOLATILE = ["request_id", "created_at", "updated_at"]
DATE_COLUMNS = {"transactions": "trade_date", "prices": "date", "benchmarks": "date"}


# --- shards, digests, ranges, plans ----------------------------------------------------------


def _bitwise_crc32(data: bytes) -> int:
    """CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) bit by bit, independent of zlib."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_shard_names_sort_as_numbers_and_shard_of_is_stable_across_processes():
    assert shard_names(3) == ["s00", "s01", "s02"]
    assert shard_names(120)[7] == "s007" and sorted(shard_names(120)) == shard_names(120)
    ids = [f"P{i:05d}" for i in range(2000)]
    here = shard_of(ids, 16)
    # CRC-32 (IEEE) of "123456789" is the catalogue's check value 0xCBF43926 = 3421780262
    assert shard_of(["123456789"], 16).tolist() == ["s06"]
    assert shard_of(["123456789"], 1000).tolist() == ["s262"]
    assert list(here) == [f"s{_bitwise_crc32(pid.encode()) % 16:02d}" for pid in ids]
    code = (
        "import sys; from perf_pipeline.increments import shard_of; "
        "print(','.join(shard_of([f'P{i:05d}' for i in range(2000)], 16)))"
    )
    for seed in ("1", "2"):  # str hashing is salted per process; the shard must not be
        other = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
        )
        assert other.stdout.strip().split(",") == list(here)
    counts = pd.Series(here).value_counts()
    assert len(counts) == 16 and counts.min() > 2000 / 16 * 0.7  # roughly even


def small_inputs():
    portfolios = pd.DataFrame(
        {
            "portfolio_id": ["P1", "P2", "P3"],
            "client_id": "C",
            "base_currency": "USD",
            "benchmark_id": ["B1", None, "B2"],
        }
    )
    tx = pd.DataFrame(
        {
            "transaction_id": ["T1", "T2", "T3", "T4", "T5"],
            "portfolio_id": ["P1", "P1", "P2", "P3", "P3"],
            "account_id": ["A1", "A1", "A2", "A3", "A3"],
            "security_id": [None, "S1", None, None, "S2"],
            "trade_date": pd.to_datetime(
                ["2024-01-02", "2024-01-03", "2024-01-02", "2024-01-02", "2024-01-06"]
            ),  # T5 on a Saturday: effective Monday
            "type": ["DEPOSIT", "BUY", "DEPOSIT", "DEPOSIT", "BUY"],
            "quantity": [None, 5.0, None, None, 1.0],
            "price": [None, 10.0, None, None, 20.0],
            "amount": [100.0, None, 50.0, 80.0, None],
            "fee": None,
            "currency": "USD",
            "fx_rate": None,
            "counter_amount": None,
            "counter_currency": None,
            "source_file": "transactions/a.csv",
            "source_line": [2, 3, 4, 5, 6],
        }
    )
    prices = pd.DataFrame(
        {
            "security_id": ["S1", "S1", "S2"],
            "date": pd.to_datetime(["2024-01-03", "2024-01-04", "2024-01-08"]),
            "close": [10.0, 11.0, 20.0],
            "currency": "USD",
        }
    )
    benchmarks = pd.DataFrame(
        {
            "benchmark_id": ["B1", "B2"],
            "date": pd.to_datetime(["2024-01-03", "2024-01-04"]),
            "close": [100.0, 200.0],
        }
    )
    fx = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-03", "2024-01-06"]),  # 01-06 a Saturday
            "base": "EUR",
            "quote": "USD",
            "rate": [1.09, 1.1],
            "source": None,
        }
    )
    return portfolios, tx, prices, benchmarks, fx


SHARDS = 3  # P1 -> s00, P2 -> s02, P3 -> s01 (CRC-32 mod 3), checked below


def digests_of(portfolios, tx, prices, benchmarks, fx, settings="x"):
    found = input_digests(portfolios, tx, prices, benchmarks, fx, shards=SHARDS, settings=settings)
    return found.set_index(["shard", "date"])["digest"]


def changed(before: pd.Series, after: pd.Series) -> set[tuple[str, str]]:
    both = pd.concat([before.rename("a"), after.rename("b")], axis=1)
    moved = both.loc[~(both["a"] == both["b"])]
    return {(shard, f"{day:%Y-%m-%d}") for shard, day in moved.index}


def test_a_digest_moves_only_on_the_shard_and_business_day_that_an_input_row_touches():
    assert list(shard_of(["P1", "P2", "P3"], SHARDS)) == ["s00", "s02", "s01"]
    base = small_inputs()
    before = digests_of(*base)
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    tx.loc[tx["transaction_id"] == "T5", "quantity"] = 2.0  # P3, a Saturday trade
    assert changed(before, digests_of(portfolios, tx, prices, benchmarks, fx)) == {
        ("s01", "2024-01-08")
    }
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    prices.loc[1, "close"] = 12.0  # S1, held only by P1
    assert changed(before, digests_of(portfolios, tx, prices, benchmarks, fx)) == {
        ("s00", "2024-01-04")
    }
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    benchmarks.loc[1, "close"] = 201.0  # B2 is P3's benchmark
    assert changed(before, digests_of(portfolios, tx, prices, benchmarks, fx)) == {
        ("s01", "2024-01-04")
    }
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    portfolios.loc[1, "benchmark_id"] = "B1"  # P2 gains a benchmark: from its first day,
    got = changed(before, digests_of(portfolios, tx, prices, benchmarks, fx))  # and B1's closes
    assert got == {("s02", "2024-01-02"), ("s02", "2024-01-03")}
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    tx["source_file"] = "transactions/b.csv"  # the same rows delivered in another file
    assert changed(before, digests_of(portfolios, tx, prices, benchmarks, fx)) == set()
    # other settings: every shard from its first day
    assert changed(before, digests_of(*small_inputs(), settings="y")) == {
        ("s00", "2024-01-02"),
        ("s01", "2024-01-02"),
        ("s02", "2024-01-02"),
    }


def test_a_rate_moves_only_the_shards_of_multi_currency_portfolios():
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    before = digests_of(portfolios, tx, prices, benchmarks, fx)
    fx.loc[1, "rate"] = 1.2
    assert changed(before, digests_of(portfolios, tx, prices, benchmarks, fx)) == set()
    # P2 (s02) becomes a EUR portfolio holding USD cash: from its first day, and every rate
    portfolios.loc[1, "base_currency"] = "EUR"
    got = changed(before, digests_of(portfolios, tx, prices, benchmarks, fx))
    assert got == {("s02", "2024-01-02"), ("s02", "2024-01-03"), ("s02", "2024-01-08")}
    # S2 (held by P3, s01) priced in JPY: P3's trade is then in another currency than its base
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    prices.loc[2, "currency"] = "JPY"
    after = digests_of(portfolios, tx, prices, benchmarks, fx)
    fx.loc[0, "rate"] = 1.0
    assert changed(after, digests_of(portfolios, tx, prices, benchmarks, fx)) == {
        ("s01", "2024-01-03")
    }
    # a source alone is no input of any figure
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    fx["source"] = "WM/Reuters"
    assert changed(before, digests_of(portfolios, tx, prices, benchmarks, fx)) == set()


def test_a_trade_price_reaches_every_shard_that_holds_the_security():
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    before = digests_of(portfolios, tx, prices, benchmarks, fx)
    more = pd.concat(
        [
            tx,
            tx.loc[tx["transaction_id"] == "T5"].assign(
                transaction_id="T6",
                portfolio_id="P1",
                account_id="A1",
                trade_date=pd.Timestamp("2024-01-10"),
            ),
        ],
        ignore_index=True,
    )
    got = changed(before, digests_of(portfolios, more, prices, benchmarks, fx))
    # P1 (s00) trades S2 on 01-10: its own day, and S2's price history now concerns s00
    # too (01-06 trade and 01-08 close); P3 (s01) holds S2, whose trade prices it sees.
    assert ("s00", "2024-01-10") in got and ("s01", "2024-01-10") in got
    assert ("s00", "2024-01-08") in got and ("s02", "2024-01-10") not in got


def day(text: str) -> pd.Timestamp:
    return pd.Timestamp(text)


def test_stale_ranges_start_at_the_first_day_that_differs_or_was_never_computed():
    current = pd.DataFrame(
        {
            "shard": ["s00", "s00", "s01", "s02"],
            "date": pd.to_datetime(["2024-01-02", "2024-01-04", "2024-01-03", "2024-01-02"]),
            "digest": [1, 2, 3, 4],
        }
    )
    days = pd.bdate_range("2024-01-02", "2024-01-05")
    computed = pd.concat(
        [
            pd.DataFrame({"shard": "s00", "date": days, "digest": [1, 0, 2, 0]}),  # up to date
            pd.DataFrame({"shard": "s01", "date": days, "digest": [0, 9, 0, 0]}),  # 01-03 moved
            pd.DataFrame({"shard": "s02", "date": days[:2], "digest": [4, 0]}),  # two days behind
        ]
    )
    got = stale_ranges(current, computed, day("2024-01-05"))
    assert got.values.tolist() == [
        ["s01", day("2024-01-03"), day("2024-01-05")],
        ["s02", day("2024-01-04"), day("2024-01-05")],
    ]
    later = stale_ranges(current, computed, day("2024-01-08"))  # one more day for everyone
    assert later["start"].tolist() == [day("2024-01-08"), day("2024-01-03"), day("2024-01-04")]


def test_a_range_runs_through_the_last_computed_day_and_empties_a_shard_without_input():
    days = pd.bdate_range("2024-01-02", "2024-01-10")
    computed = pd.concat(
        [
            pd.DataFrame({"shard": "s00", "date": days, "digest": 1}),
            pd.DataFrame({"shard": "s01", "date": days, "digest": 2}),  # its input is all gone
            pd.DataFrame({"shard": "s02", "date": days, "digest": [5] + [0] * 6}),
        ]
    )
    current = pd.DataFrame(
        {
            "shard": ["s00"] * len(days) + ["s02"],
            "date": [*days, day("2024-01-04")],  # s02: its first day's input went, later input came
            "digest": [1, 1, 7, 1, 1, 1, 1, 9],
        }
    )
    got = stale_ranges(current, computed, day("2024-01-05"))  # an as-of before the last day
    assert got.values.tolist() == [
        ["s00", day("2024-01-04"), day("2024-01-10")],
        ["s01", day("2024-01-02"), day("2024-01-10")],
        ["s02", day("2024-01-02"), day("2024-01-10")],
    ]


def test_closes_before_the_first_partition_count_on_it_and_transactions_do_not():
    portfolios, tx, prices, benchmarks, fx = small_inputs()
    prices.loc[0, "date"] = pd.Timestamp("2023-12-20")
    got = input_digests(
        portfolios, tx, prices, benchmarks, fx, shards=SHARDS, first_day=pd.Timestamp("2024-01-02")
    )
    assert got["date"].min() == pd.Timestamp("2024-01-02")
    tx.loc[0, "trade_date"] = pd.Timestamp("2023-12-20")
    got = input_digests(
        portfolios, tx, prices, benchmarks, fx, shards=SHARDS, first_day=pd.Timestamp("2024-01-02")
    )
    assert got["date"].min() == pd.Timestamp("2023-12-20")


def test_a_weekend_as_of_plans_up_to_the_friday(tmp_path):
    from perf_pipeline.planning import plan

    current = pd.DataFrame({"shard": ["s00"], "date": [day("2024-06-20")], "digest": [3]})
    [only] = plan(current, ParquetStore(root=str(tmp_path / "tables")), day("2024-06-22"))
    assert (only.start, only.end) == (day("2024-06-20"), day("2024-06-21"))


def test_metrics_certify_only_the_digests_the_valuations_were_computed_from(tmp_path):
    from dagster import Failure

    from perf_pipeline.assets.performance import valued_from
    from perf_pipeline.increments import partition_digests
    from perf_pipeline.resources.partition_store import Slice

    store = ParquetStore(root=str(tmp_path / "tables"))
    start, end = day("2024-01-02"), day("2024-01-04")
    digests = pd.DataFrame({"shard": ["s00"], "date": [start], "digest": [11]})
    used = partition_digests(digests, ["s00"], start, end)
    assert used["digest"].tolist() == [11, 0, 0]
    store.replace("valued_from", used, Slice(("s00",), start.date(), end.date()))
    assert valued_from(store, digests, ("s00",), start, end).equals(used)
    newer = digests.assign(digest=12)  # inputs_job rewrote the digests between the steps
    with pytest.raises(Failure, match="changed while this run"):
        valued_from(store, newer, ("s00",), start, end)


def test_planned_runs_cover_exactly_the_stale_ranges_in_contiguous_shard_blocks():
    shards = shard_names(6)
    ranges = pd.DataFrame(
        {
            "shard": ["s00", "s01", "s03", "s04", "s05"],
            "start": [day("2024-01-08")] * 3 + [day("2024-01-03"), day("2024-01-08")],
            "end": day("2024-01-08"),
        }
    )
    runs = plan_runs(ranges, shards)
    assert [(r.shards, f"{r.start:%m-%d}") for r in runs] == [
        (("s04",), "01-03"),
        (("s00", "s01"), "01-08"),
        (("s03",), "01-08"),
        (("s05",), "01-08"),
    ]
    assert scope_tags(runs[1].shards, runs[1].start, runs[1].end) == {
        "dagster/asset_partition_range_start": "2024-01",
        "dagster/asset_partition_range_end": "2024-01",
        "perf/range_start": "2024-01-08",
        "perf/range_end": "2024-01-08",
        "perf/range_shards": "s00,s01",
    }
    halves = plan_runs(ranges.iloc[:2], shards, workers=2)
    assert [r.shards for r in halves] == [("s00",), ("s01",)]
    fresh = plan_runs(ranges.iloc[2:4], shards, fresh={"s03", "s04"})
    assert [(r.shards, f"{r.start:%m-%d}") for r in fresh] == [(("s03", "s04"), "01-03")]
    # s02 has no input at all: over a short range spanning it costs less than a run, so
    # s00..s05 is one run; over a long one it is not spanned
    joined = plan_runs(ranges.assign(start=day("2024-01-08")), shards, idle={"s02"})
    assert [(r.shards[0], r.shards[-1]) for r in joined] == [("s00", "s05")]
    long = plan_runs(ranges.assign(start=day("2023-01-02")), shards, idle={"s02"})
    assert [(r.shards[0], r.shards[-1]) for r in long] == [("s00", "s01"), ("s03", "s05")]


# --- end to end on the local target -----------------------------------------------------------


def drop_last_day(root: Path, last: str) -> Path:
    """The input without any row dated `last`: the input of the night before."""
    for kind, column in DATE_COLUMNS.items():
        for path in sorted((root / kind).rglob("*.csv")):
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
            frame.loc[frame[column] != last].to_csv(path, index=False)
    return root


def copy_input(source: Path, target: Path) -> Path:
    subprocess.run(["cp", "-r", str(source), str(target)], check=True)
    return target


def run(root: Path, store: Path, capsys, *extra: str) -> str:
    capsys.readouterr()
    assert (
        main(["run", "--input", str(root), "--store", str(store), "--target", "local", *extra]) == 0
    )
    return capsys.readouterr().out


def table(store: Path, name: str) -> pd.DataFrame:
    with duckdb.connect(str(store), read_only=True) as con:
        frame = con.execute(f'SELECT * FROM "{name}"').df()
    keys = (
        ["id", "calculation_date", "time_period"]
        if name == "performance_metrics"
        else ["date", "entity_type", "entity_id"]
    )
    return frame.drop(columns=VOLATILE, errors="ignore").sort_values(keys).reset_index(drop=True)


def assert_same_tables(ours: Path, theirs: Path) -> None:
    for name in ("daily_valuations", "performance_metrics"):
        a, b = table(ours, name), table(theirs, name)
        assert len(a) == len(b) and len(a) > 0, name
        numeric = [c for c in a.columns if pd.api.types.is_float_dtype(a[c])]
        pd.testing.assert_frame_equal(a.drop(columns=numeric), b.drop(columns=numeric))
        for column in numeric:  # to 1e-12, relative to the figure (absolute near 0)
            x, y = a[column].to_numpy(), b[column].to_numpy()
            assert np.array_equal(np.isnan(x), np.isnan(y)), (name, column)
            ok = ~np.isnan(x)
            assert np.allclose(x[ok], y[ok], rtol=1e-12, atol=1e-12), (name, column)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Twelve portfolios over a year, up to LAST_DAY, and its full recomputation."""
    home = tmp_path_factory.mktemp("sample")
    full = home / "full"
    generate(full, portfolios=12, years=1, end=LAST_DAY, seed=11)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        assert (
            main(
                [
                    "run",
                    "--input",
                    str(full),
                    "--store",
                    str(home / "full.duckdb"),
                    "--target",
                    "local",
                ]
            )
            == 0
        )
    return full, home / "full.duckdb"


def test_a_daily_increment_equals_the_full_recomputation(sample, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    full, full_store = sample
    night_before = drop_last_day(copy_input(full, tmp_path / "before"), LAST_DAY)
    store = tmp_path / "perf.duckdb"
    out = run(night_before, store, capsys)
    assert "2024-06-26" in out  # valued up to the day before
    out = run(full, store, capsys)
    # one run over the one new day, for every shard with input
    assert "then 1 partition run(s)" in out
    assert f"{LAST_DAY} .. {LAST_DAY}" in out
    assert_same_tables(store, full_store)
    dates = set(table(store, "performance_metrics")["calculation_date"])
    assert pd.Timestamp("2024-06-26") not in dates  # the old latest date, superseded


@pytest.fixture
def computed(sample, tmp_path, monkeypatch):
    """The sample input and a copy of its computed store, to change and run again."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    full, full_store = sample
    store = tmp_path / "perf.duckdb"
    subprocess.run(["cp", str(full_store), str(store)], check=True)
    tables = full_store.with_name(f"{full_store.stem}_tables")
    subprocess.run(["cp", "-r", str(tables), str(tmp_path / "perf_tables")], check=True)
    return full, store


def test_a_back_dated_correction_reruns_only_its_shard_from_its_day(computed, tmp_path, capsys):
    full, store = computed
    before = {
        name: duckdb.connect(str(store), read_only=True).execute(f'SELECT * FROM "{name}"').df()
        for name in ("performance_metrics",)
    }
    corrected = copy_input(full, tmp_path / "corrected")
    path = sorted((corrected / "transactions").rglob("*.csv"))[-3]
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    deposit = rows.loc[rows["type"] == "DEPOSIT"].iloc[0]
    rows.loc[deposit.name, "amount"] = str(float(deposit["amount"]) + 1000.0)
    rows.to_csv(path, index=False)
    shard = shard_of([deposit["portfolio_id"]], SHARD_COUNT)[0]
    effective = pd.Timestamp(deposit["trade_date"])
    effective = effective + pd.offsets.BDay(0)  # a weekend date rolls to Monday
    # asked for an earlier as-of, the run still goes through the last computed day: the
    # days after the as-of carry the corrected state too (found in review)
    out = run(corrected, store, capsys, "--as-of", "2024-06-14")
    assert "then 1 partition run(s)" in out
    assert f"recomputed {shard}: {effective:%Y-%m-%d} .. {LAST_DAY}" in out
    # the figures equal a recomputation from scratch of the corrected input
    fresh = tmp_path / "fresh.duckdb"
    run(corrected, fresh, capsys)
    assert_same_tables(store, fresh)
    # and nothing outside that shard and range was rewritten
    after = (
        duckdb.connect(str(store), read_only=True)
        .execute('SELECT * FROM "performance_metrics"')
        .df()
    )
    merged = before["performance_metrics"].merge(
        after, on=["id", "calculation_date", "time_period"], suffixes=("_0", "_1")
    )
    moved = merged.loc[merged["updated_at_0"] != merged["updated_at_1"]]
    assert len(moved) > 0 and set(moved["shard_1"]) == {shard}
    assert (moved["calculation_date"] >= effective).all()
    assert (merged["created_at_0"] == merged["created_at_1"]).all()
    # the corrected portfolio's figures did change
    mine = merged.loc[
        (merged["portfolio_id_1"] == deposit["portfolio_id"])
        & (merged["calculation_date"] > effective)
    ]
    assert not np.allclose(mine["twr_0"], mine["twr_1"], rtol=1e-12)


def test_a_two_worker_backfill_runs_shards_side_by_side_and_equals_one_worker(
    sample, tmp_path, capsys, monkeypatch
):
    from dagster import DagsterEventType, DagsterInstance

    full, full_store = sample
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    store = tmp_path / "perf.duckdb"
    out = run(full, store, capsys, "--workers", "2")
    assert_same_tables(store, full_store)
    with DagsterInstance.get() as instance:
        runs = [r.dagster_run.run_id for r in instance.get_run_records()]
        starts = [
            event
            for run_id in runs
            for event in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
        ]
    assert "partition run(s)" in out
    chunks = [e for e in starts if e.step_key.startswith("daily_valuations.value_chunk[")]
    assert len(chunks) >= 2  # one step per shard with portfolios
    assert len({e.dagster_event.pid for e in starts}) >= 2  # multiprocess: steps in processes


def kill_when(command: list[str], env: dict, ready) -> None:
    """Start `command`, SIGKILL it as soon as `ready()` holds (polled), and wait for it."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 300
        while not ready() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before the kill point"
    finally:
        process.kill()
        process.wait()


@pytest.mark.parametrize(
    "point",
    ["daily_valuations/", "valued_from/", "performance_metrics/", "computed_from/"],
)
def test_a_run_killed_at_any_point_then_run_again_equals_a_clean_run(
    sample, tmp_path, capsys, monkeypatch, point
):
    """SIGKILL while the run writes its first file of `point`'s table, then a second run:
    the store is exactly the one a clean run leaves."""
    full, full_store = sample
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    store = tmp_path / "perf.duckdb"
    tables = tmp_path / "perf_tables"
    command = [
        sys.executable,
        "-m",
        "perf_pipeline.cli",
        "run",
        "--input",
        str(full),
        "--store",
        str(store),
        "--target",
        "local",
    ]
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    kill_when(command, env, lambda: any((tables / point).rglob("*.parquet")))
    run(full, store, capsys)
    assert_same_tables(store, full_store)
    assert not list(tables.rglob(".*")), "no partial file is left behind"


def test_a_range_whose_days_before_are_not_computed_fails_instead_of_guessing(
    sample, tmp_path, monkeypatch
):
    # A UI backfill split per day runs day D+1 beside day D: D+1 must not start from a close
    # that is missing or stale.
    from dagster import DagsterInstance

    from perf_pipeline.cli import failure_lines, run_partitions
    from perf_pipeline.definitions import INPUTS_JOB, build_definitions
    from perf_pipeline.increments import PlannedRun

    full, _ = sample
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("PERF_INPUT", str(full))
    monkeypatch.setenv("PERF_STORE", str(tmp_path / "perf.duckdb"))
    result = build_definitions("local").resolve_job_def(INPUTS_JOB).execute_in_process()
    shard = shard_of(["P00001"], SHARD_COUNT)[0]
    late = PlannedRun((shard,), pd.Timestamp(LAST_DAY), pd.Timestamp(LAST_DAY))
    with DagsterInstance.ephemeral() as instance:
        extend_months(instance, [late])
        late_run = run_partitions(instance, scope_tags(late.shards, late.start, late.end))
    lines = failure_lines(late_run)
    assert result.success and not late_run.success, "the run should have failed"
    assert any(
        f"shards {shard} are not up to date before this run's range" in line for line in lines
    ), lines


def test_an_input_root_with_no_rows_plans_nothing_and_succeeds(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    (tmp_path / "in" / "transactions").mkdir(parents=True)
    out = run(tmp_path / "in", tmp_path / "perf.duckdb", capsys)
    assert "then 0 partition run(s)" in out and "rows accepted: 0" in out


def test_a_retried_step_reports_its_innermost_cause():
    from types import SimpleNamespace

    from perf_pipeline.cli import root_cause

    inner = SimpleNamespace(message="ValueError: no objects\n", cause=None)
    outer = SimpleNamespace(message="Exceeded max_retries of 3", cause=inner)
    assert root_cause(outer) == "ValueError: no objects"


def test_a_portfolio_whose_transactions_all_went_leaves_no_rows(computed, tmp_path, capsys):
    full, store = computed
    gone = copy_input(full, tmp_path / "gone")
    for path in (gone / "transactions").rglob("*.csv"):
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
        rows.loc[rows["portfolio_id"] != "P00004"].to_csv(path, index=False)
    run(gone, store, capsys)
    assert "P00004" not in set(table(store, "daily_valuations")["portfolio_id"])
    assert "P00004" not in set(table(store, "performance_metrics")["portfolio_id"])
    fresh = tmp_path / "fresh.duckdb"
    run(gone, fresh, capsys)
    assert_same_tables(store, fresh)
