"""Incremental ingestion: verdicts cached by file identity, combined across files, equal to a
full validation of the same files; a file already seen is never read again."""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from pathlib import Path

import boto3
import pandas as pd
import pytest

from perf_pipeline.ingest import RawFile, ValidatedInputs, validate_inputs
from perf_pipeline.ingest.cache import ValidatedFileCache, entry_key
from perf_pipeline.ingest.combine import combine
from perf_pipeline.ingest.incremental import validate_incrementally
from perf_pipeline.ingest.verdict import validate_files
from perf_pipeline.resources.blobs import LocalBlobs, open_root
from perf_pipeline.resources.input_store import InputStore
from perf_pipeline.sample_data import generate

TABLES = (
    "portfolios",
    "transactions",
    "prices",
    "benchmarks",
    "fx_rates",
    "rejected_rows",
    "rejected_files",
    "input_files",
)
TX_HEADER = (
    "transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,price,"
    "amount,fee,currency"
)
PRICE_HEADER = "security_id,date,close,currency"
PORTFOLIO_HEADER = "portfolio_id,client_id,base_currency,benchmark_id"


def assert_same(got: ValidatedInputs, expected: ValidatedInputs) -> None:
    """Every table equal, values, dtypes, order and index."""
    for name in TABLES:
        pd.testing.assert_frame_equal(
            getattr(got, name), getattr(expected, name), check_exact=True, obj=name
        )


def full_validation(root: Path, today: dt.date) -> ValidatedInputs:
    """validate_inputs over every file under the root, read directly from disk."""
    files = [
        RawFile(str(path), path.relative_to(root).parts[0], path.read_bytes())
        for path in sorted(root.rglob("*"))
        if path.is_file()
    ]
    return validate_inputs(files, today)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts InputStore.read per file (the real read still runs)."""
    counter: Counter = Counter()
    original = InputStore.read

    def counting(self: InputStore, obj) -> bytes:
        counter[obj.path] += 1
        return original(self, obj)

    monkeypatch.setattr(InputStore, "read", counting)
    return counter


def write(root: Path, relative: str, header: str, *rows: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join((header, *rows)) + "\n", encoding="utf-8")
    return path


def bump_mtime(path: Path) -> None:
    """A rewrite within the filesystem's timestamp granularity still gets a new mtime."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_sample_data_cold_then_warm_equals_full_and_reads_only_the_new_file(tmp_path, reads):
    root, cache_root = tmp_path / "input", tmp_path / "cache"
    generate(root, portfolios=4, years=1.0, end="2024-06-28")
    # today before the data's end: rows dated after tomorrow are rejected by date_range
    today = dt.date(2024, 6, 20)
    store = InputStore(root=str(root))
    cache = ValidatedFileCache(LocalBlobs(cache_root))

    cold = validate_incrementally(store, cache, today)
    expected = full_validation(root, today)
    assert_same(cold.inputs, expected)
    assert "date_range" in set(expected.rejected_rows["rule"])
    assert cold.files_cached == 0
    old_files = set(reads)
    assert old_files and all(count == 1 for count in reads.values())

    # one new day's file: an identical re-delivery of an old row, a conflicting copy of
    # another (same transaction_id, another amount) and a new row; then a day later
    first = sorted((root / "transactions").rglob("*.csv"))[0]
    copy, other = first.read_text().splitlines()[1:3]
    conflict = other.split(",")
    conflict[8] = "1.00" if conflict[8] != "1.00" else "2.00"
    conflict[5], conflict[6], conflict[7] = "DEPOSIT", "", ""
    new = write(
        root,
        "transactions/2024/2024-07-01.csv",
        first.read_text().splitlines()[0],
        copy,
        ",".join(conflict),
        "NEW1,P0001,P0001-A1,,2024-07-01,DEPOSIT,,,100.00,,USD",
    )
    reads.clear()
    later = dt.date(2024, 7, 1)
    warm = validate_incrementally(store, cache, later)
    assert dict(reads) == {new.relative_to(root).as_posix(): 1}  # no old file read again
    assert warm.files_cached == len(old_files)
    expected = full_validation(root, later)
    assert_same(warm.inputs, expected)
    rules = set(expected.rejected_rows["rule"])
    assert "duplicate_conflict" in rules
    assert expected.input_files.set_index("file").loc[str(new), "duplicates"] == 1

    reads.clear()
    again = validate_incrementally(store, cache, later)
    assert not reads
    assert_same(again.inputs, expected)


def test_cross_file_rules_across_cached_new_changed_and_deleted_files(tmp_path, reads):
    root = tmp_path / "input"
    today = dt.date(2024, 6, 30)
    store = InputStore(root=str(root))
    cache = ValidatedFileCache(LocalBlobs(tmp_path / "cache"))
    write(root, "portfolios/p.csv", PORTFOLIO_HEADER, "P1,C1,USD,", "P2,C2,EUR,")
    write(
        root,
        "transactions/a.csv",
        TX_HEADER,
        "T1,P1,A1,,2024-06-03,DEPOSIT,,,100,,USD",  # re-delivered identical in b
        "T2,P1,A1,,2024-06-03,DEPOSIT,,,100,,USD",  # conflicting copy in b
        "T3,P1,A9,,2024-06-04,DEPOSIT,,,5,,USD",  # account A9 also under P2 in b
        "T4,P2,A2,S1,2024-06-04,BUY,1,5,,,EUR",  # S1 is priced in USD: currency rule
        "T5,P1,A1,,2024-07-02,DEPOSIT,,,5,,USD",  # after today + 1: accepted later
        "T6,P1,A1,,2024-06-05,DEPOSIT,,,x,,USD",  # number_format, kept
        "T7,P1,A1,2024-06-05,DEPOSIT",  # field count
    )
    write(
        root,
        "prices/a.csv",
        PRICE_HEADER,
        "S1,2024-06-03,10,USD",
        "S2,2024-06-03,5,USD",
        "S3,2024-06-05,7,USD",  # outvoted by b's two EUR closes while b is there
    )
    validate_incrementally(store, cache, today)
    assert_same(validate_incrementally(store, cache, today).inputs, full_validation(root, today))

    reads.clear()
    write(
        root,
        "transactions/b.csv",
        TX_HEADER,
        "T1,P1,A1,,2024-06-03,DEPOSIT,,,100,,USD",
        "T2,P1,A1,,2024-06-03,DEPOSIT,,,200,,USD",
        "T8,P2,A9,,2024-06-04,DEPOSIT,,,5,,EUR",
        "T9,P3,A3,,2024-06-04,DEPOSIT,,,5,,GBP",  # inferred portfolio P3
    )
    write(
        root,
        "prices/b.csv",
        PRICE_HEADER,
        "S1,2024-06-03,10,USD",
        "S2,2024-06-03,6,USD",
        "S3,2024-06-03,7,EUR",
        "S3,2024-06-04,7,EUR",
    )
    got = validate_incrementally(store, cache, today)
    assert sorted(reads) == ["prices/b.csv", "transactions/b.csv"]
    expected = full_validation(root, today)
    assert_same(got.inputs, expected)
    rejected = expected.rejected_rows.set_index(["file", "line"])["rule"]
    a, b = str(root / "transactions/a.csv"), str(root / "transactions/b.csv")
    assert rejected[(a, 3)] == "duplicate_conflict" and rejected[(b, 3)] == "duplicate_conflict"
    assert rejected[(a, 4)] == "account_in_one_portfolio"
    assert rejected[(a, 5)] == "currency_matches_security"
    assert rejected[(a, 6)] == "date_range"
    assert rejected[(str(root / "prices/a.csv"), 4)] == "one_currency_per_security"
    assert set(expected.prices["security_id"]) == {"S1", "S3"}  # S2's two closes conflict
    assert set(expected.prices.loc[expected.prices["security_id"] == "S3", "currency"]) == {"EUR"}

    # a day later T5 is no longer in the future: the cached verdict follows the date
    reads.clear()
    tomorrow = today + dt.timedelta(days=1)
    got = validate_incrementally(store, cache, tomorrow)
    assert not reads
    expected = full_validation(root, tomorrow)
    assert_same(got.inputs, expected)
    assert "T5" in set(expected.transactions["transaction_id"])

    # the portfolios file changes (P2 becomes USD) and b's prices file is deleted
    changed = write(root, "portfolios/p.csv", PORTFOLIO_HEADER, "P1,C1,USD,", "P2,C2,USD,")
    bump_mtime(changed)
    (root / "prices/b.csv").unlink()
    reads.clear()
    got = validate_incrementally(store, cache, tomorrow)
    assert dict(reads) == {"portfolios/p.csv": 1}
    expected = full_validation(root, tomorrow)
    assert_same(got.inputs, expected)
    assert set(expected.prices["security_id"]) == {"S1", "S2", "S3"}
    assert expected.prices.loc[expected.prices["security_id"] == "S3", "currency"].tolist() == [
        "USD"
    ]
    assert "one_currency_per_security" not in set(expected.rejected_rows["rule"])
    assert got.blobs_pruned == 4  # rows and raw of the old portfolios entry and of prices/b


def test_changed_file_of_same_size_and_mtime_is_a_cache_hit_by_design(tmp_path, reads):
    """The local identity is path + size + mtime_ns (no read needed): a rewrite that keeps
    both is not seen; any other rewrite is."""
    root = tmp_path / "input"
    path = write(root, "prices/a.csv", PRICE_HEADER, "S1,2024-06-03,10,USD")
    stat = path.stat()
    store = InputStore(root=str(root))
    cache = ValidatedFileCache(LocalBlobs(tmp_path / "cache"))
    today = dt.date(2024, 6, 30)
    validate_incrementally(store, cache, today)
    write(root, "prices/a.csv", PRICE_HEADER, "S1,2024-06-03,11,USD")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert validate_incrementally(store, cache, today).inputs.prices["close"].tolist() == [10.0]
    bump_mtime(path)
    assert validate_incrementally(store, cache, today).inputs.prices["close"].tolist() == [11.0]


def test_s3_second_run_reads_only_the_new_object(aws, reads):
    bucket = "perf-ingest"
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket=bucket)

    def put(key: str, header: str, *rows: str) -> None:
        body = ("\n".join((header, *rows)) + "\n").encode()
        s3.put_object(Bucket=bucket, Key=f"in/{key}", Body=body)

    put("portfolios/p.csv", PORTFOLIO_HEADER, "P1,C1,USD,")
    put("transactions/2024-06.csv", TX_HEADER, "T1,P1,A1,,2024-06-03,DEPOSIT,,,100,,USD")
    put("prices/2024.csv", PRICE_HEADER, "S1,2024-06-03,10,USD")
    store = InputStore(root=f"s3://{bucket}/in")
    cache = ValidatedFileCache(open_root(f"s3://{bucket}/cache", aws))
    today = dt.date(2024, 6, 30)
    validate_incrementally(store, cache, today)
    assert sorted(reads) == ["portfolios/p.csv", "prices/2024.csv", "transactions/2024-06.csv"]

    put("transactions/2024-07-01.csv", TX_HEADER, "T1,P1,A1,,2024-06-03,DEPOSIT,,,100,,USD",
        "T2,P1,A1,,2024-07-01,DEPOSIT,,,5,,EUR")  # fmt: skip
    reads.clear()
    got = validate_incrementally(store, cache, dt.date(2024, 7, 1))
    assert dict(reads) == {"transactions/2024-07-01.csv": 1}
    assert_same(got.inputs, full_s3(store, bucket, dt.date(2024, 7, 1)))
    assert got.inputs.input_files.set_index("file")["duplicates"].sum() == 1

    # an object overwritten (new ETag) is read again; a deleted object's rows are gone
    put("prices/2024.csv", PRICE_HEADER, "S1,2024-06-03,11,USD")
    s3.delete_object(Bucket=bucket, Key="in/transactions/2024-06.csv")
    reads.clear()
    got = validate_incrementally(store, cache, dt.date(2024, 7, 1))
    assert dict(reads) == {"prices/2024.csv": 1}
    assert_same(got.inputs, full_s3(store, bucket, dt.date(2024, 7, 1)))
    assert got.inputs.prices["close"].tolist() == [11.0]
    assert got.inputs.input_files.set_index("file")["duplicates"].sum() == 0


def full_s3(store: InputStore, bucket: str, today: dt.date) -> ValidatedInputs:
    files = [
        RawFile(f"s3://{bucket}/in/{obj.path}", obj.kind, store.read(obj))
        for kind in ("portfolios", "transactions", "prices", "benchmarks")
        for obj in store.list_files(kind)
    ]
    return validate_inputs(files, today)


def test_a_rule_change_invalidates_every_entry(tmp_path, monkeypatch):
    from perf_pipeline.ingest import cache as cache_module

    before = entry_key("in/a.csv", "prices", "1-2", 10)
    cache_module.validation_version.cache_clear()
    monkeypatch.setattr(cache_module, "VALIDATION_VERSION", "changed")
    try:
        assert entry_key("in/a.csv", "prices", "1-2", 10) != before
    finally:
        cache_module.validation_version.cache_clear()
    assert entry_key("in/a.csv", "prices", "1-3", 10) != before


def test_verdicts_round_trip_through_parquet_and_combine_like_validate_inputs(tmp_path):
    """Both halves on raw files, with everything the reader and rules can report."""
    files = [
        RawFile("portfolios/p.csv", "portfolios", f"{PORTFOLIO_HEADER}\nP1,C1,USD,\n".encode()),
        RawFile("transactions/q.csv", "transactions", b'a,b\n"x\n'),  # quoting error
        RawFile("transactions/e.csv", "transactions", b""),
        RawFile("prices/all-bad.csv", "prices", f"{PRICE_HEADER}\nS 1,2024-06-03,1,USD\n".encode()),
        RawFile("transactions/x.txt", "transactions", b"x"),
        RawFile(
            "transactions/t.csv",
            "transactions",
            (
                f"{TX_HEADER},extra\n"
                'T1,P1,A1,,2024-06-03,DEPOSIT,,,100,,USD,"a\nb"\n'
                "T 2,P1,A1,S1,2024-13-03,BUY,-1,x,,,usd,\n"
                "T3,P1\n"
                "T4,P1,A1,,2030-01-01,DEPOSIT,,,1,,USD,\n"
            ).encode(),
        ),
    ]
    today = dt.date(2024, 6, 30)
    cache = ValidatedFileCache(LocalBlobs(tmp_path))
    for i, verdict in enumerate(validate_files(files)):
        cache.put(str(i), verdict)
    loaded = [cache.get(str(i)) for i in range(len(files))]
    assert all(v is not None for v in loaded)
    expected = validate_inputs(files, today)
    assert_same(combine(loaded, today), expected)
    assert len(expected.rejected_files) == 3
    assert set(expected.rejected_rows["rule"]) >= {"field_count", "date_range"}


def test_the_inputs_asset_materialized_twice_reads_only_the_new_file(tmp_path, reads):
    from dagster import materialize

    from perf_pipeline.assets.inputs import inputs
    from perf_pipeline.resources.ingest_cache import IngestCache
    from perf_pipeline.resources.parquet_store import ParquetStore
    from perf_pipeline.resources.settings import CalculationSettings

    root = tmp_path / "input"
    write(root, "portfolios/p.csv", PORTFOLIO_HEADER, "P1,C1,USD,")
    write(root, "transactions/a.csv", TX_HEADER, "T1,P1,A1,,2024-06-03,DEPOSIT,,,100,,USD")
    resources = {
        "input_store": InputStore(root=str(root)),
        "ingest_cache": IngestCache(root=str(tmp_path / "cache")),
        "partition_store": ParquetStore(root=str(tmp_path / "tables")),
        "calculation_settings": CalculationSettings(),
    }
    assert materialize([inputs], resources=resources).success
    assert sorted(reads) == ["portfolios/p.csv", "transactions/a.csv"]
    write(root, "transactions/b.csv", TX_HEADER, "T2,P1,A1,,2024-06-04,DEPOSIT,,,5,,USD")
    reads.clear()
    result = materialize([inputs], resources=resources)
    assert dict(reads) == {"transactions/b.csv": 1}
    assert result.output_for_node("inputs", "transactions")["transaction_id"].tolist() == [
        "T1",
        "T2",
    ]


def test_the_fx_rates_asset_shows_freshness_and_a_changed_rate_moves_the_digests(tmp_path, reads):
    from dagster import materialize

    from perf_pipeline.assets.inputs import inputs
    from perf_pipeline.increments import shard_of
    from perf_pipeline.resources.ingest_cache import IngestCache
    from perf_pipeline.resources.parquet_store import ParquetStore
    from perf_pipeline.resources.settings import CalculationSettings

    today = dt.datetime.now(dt.UTC).date()
    fresh, stale = today, today - dt.timedelta(days=14)  # 14 days: always 10 business days
    root = tmp_path / "input"
    write(root, "portfolios/p.csv", PORTFOLIO_HEADER, "P1,C1,EUR,", "P2,C2,USD,")
    write(
        root,
        "transactions/a.csv",
        TX_HEADER,
        "T1,P1,A1,S1,2024-06-03,BUY,1,10,,,USD",  # a EUR portfolio holding a USD security
        "T2,P2,A2,,2024-06-03,DEPOSIT,,,100,,USD",
    )
    write(root, "prices/a.csv", PRICE_HEADER, "S1,2024-06-03,10,USD")
    rates = write(
        root,
        "fx_rates/r.csv",
        "date,base,quote,rate,source",
        "2024-06-03,EUR,USD,1.0851,",
        f"{stale:%Y-%m-%d},EUR,USD,1.09,",
        f"{fresh:%Y-%m-%d},GBP,USD,1.27,ECB",
        "2024-06-04,EUR,EUR,1,",
    )
    resources = {
        "input_store": InputStore(root=str(root)),
        "ingest_cache": IngestCache(root=str(tmp_path / "cache")),
        "partition_store": ParquetStore(root=str(tmp_path / "tables")),
        "calculation_settings": CalculationSettings(),
    }
    first = materialize([inputs], resources=resources)
    assert first.success
    [meta] = [
        m.metadata
        for m in first.asset_materializations_for_node("inputs")
        if m.asset_key.to_user_string() == "fx_rates"
    ]
    assert len(first.output_for_node("inputs", "fx_rates")) == 3
    assert meta["rejected"].value == 1 and meta["pairs"].value == 2
    assert meta["stalest_pair_age_business_days"].value == 10
    assert meta["freshest_pair_age_business_days"].value == 0
    assert meta["stalest_pair_latest_date"].value == f"{stale:%Y-%m-%d}"
    before = first.output_for_node("inputs", "input_digests").set_index(["shard", "date"])

    write(
        root,
        "fx_rates/r.csv",
        "date,base,quote,rate,source",
        "2024-06-03,EUR,USD,1.0900,",  # the rate of 06-03 corrected
        f"{stale:%Y-%m-%d},EUR,USD,1.09,",
        f"{fresh:%Y-%m-%d},GBP,USD,1.27,ECB",
    )
    bump_mtime(rates)
    reads.clear()
    second = materialize([inputs], resources=resources)
    assert dict(reads) == {"fx_rates/r.csv": 1}
    after = second.output_for_node("inputs", "input_digests").set_index(["shard", "date"])
    both = pd.concat([before["digest"].rename("a"), after["digest"].rename("b")], axis=1)
    moved = both.loc[both["a"] != both["b"]].index
    p1_shard, p2_shard = shard_of(["P1", "P2"], ParquetStore(root=str(tmp_path / "tables")).shards)
    assert p1_shard != p2_shard
    assert (p1_shard, pd.Timestamp("2024-06-03")) in moved
    assert {shard for shard, _ in moved} == {p1_shard}  # P2 holds only its base currency
