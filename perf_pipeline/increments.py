"""What changed in the input, per portfolio shard and business day, and what to recompute.

Change detection works on *digests*: for every shard and business day, a 64-bit sum of the
hashes of every input row that can move that shard's figures from that day on. A shard's
partitions are stale from the first business day whose digest differs from the digest they
were computed from (or that was never computed) up to the as-of date, since every day's
valuation carries the state of the day before. What moves a shard on day d:

- its portfolios' transactions effective on d (their trade date rolled to a business day);
- closes dated on d (rolled) of every security its portfolios ever trade, and BUY/SELL trades
  of those securities in *any* portfolio (the trade-price fallback sees every portfolio);
- closes on d of its portfolios' benchmarks;
- exchange rates dated on d (rolled), for a shard with a multi-currency portfolio (one whose
  transactions, counter currencies or traded securities' prices name a currency other than
  its base currency): any rate may enter its conversions, directly, inverted or through the
  pivot currency; a single-currency portfolio converts nothing, so rates never move it;
- its portfolios' own rows and the calculation settings, which count from each portfolio's
  first transaction.

Pure pandas and numpy: the assets, the CLI and the sensors share it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perf_pipeline.calc.calendar import business_days, roll_to_business_day

DIGEST_COLUMNS = ["shard", "date", "digest"]
RANGE_COLUMNS = ["shard", "start", "end"]
JOIN_IDLE_DAYS = 20  # a range this short spans idle shards rather than start another run
TRANSACTION_FIELDS = [
    "transaction_id",
    "portfolio_id",
    "account_id",
    "security_id",
    "trade_date",
    "type",
    "quantity",
    "price",
    "amount",
    "fee",
    "currency",
    "fx_rate",
    "counter_amount",
    "counter_currency",
]
TRADE_PRICE_FIELDS = ["security_id", "trade_date", "transaction_id", "type", "price"]


def shard_names(count: int) -> list[str]:
    """The shard keys s00, s01, ... (zero-padded, so text order is numeric order)."""
    if count < 1:
        raise ValueError(f"the number of shards must be at least 1, not {count}")
    width = max(2, len(str(count - 1)))
    return [f"s{i:0{width}d}" for i in range(count)]


def shard_of(portfolio_ids: Iterable[str], count: int) -> np.ndarray:
    """The shard of each portfolio id: CRC-32 of its UTF-8 bytes modulo `count`.

    Stable across processes, machines and Python versions (unlike ``hash``), so a portfolio
    stays in its shard for as long as the number of shards is unchanged.
    """
    names = np.asarray(shard_names(count), dtype=object)
    codes = [zlib.crc32(str(pid).encode()) % count for pid in portfolio_ids]
    return names[np.asarray(codes, dtype=np.int64)]


def no_digests() -> pd.DataFrame:
    """An empty digest table, typed."""
    return pd.DataFrame(
        {
            "shard": pd.Series(dtype=object),
            "date": pd.Series(dtype="datetime64[ns]"),
            "digest": pd.Series(dtype="int64"),
        }
    )


def _row_hashes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    present = [c for c in columns if c in frame.columns]
    return pd.util.hash_pandas_object(frame[present], index=False).to_numpy(dtype=np.uint64)


def _days(dates: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(roll_to_business_day(pd.DatetimeIndex(dates)), dtype="datetime64[ns]")


def _broadcast(
    keys: np.ndarray, days: np.ndarray, hashes: np.ndarray, key_shards: pd.DataFrame
) -> pd.DataFrame:
    """Rows keyed by `keys` (a security or benchmark id), summed into every shard that uses the
    key: a (days x keys) matrix of hash sums times the (keys x shards) incidence matrix."""
    if len(keys) == 0 or key_shards.empty:
        return pd.DataFrame(columns=DIGEST_COLUMNS)
    key_index = pd.Index(key_shards["key"].unique())
    col = key_index.get_indexer(keys)
    used = col >= 0
    day_index, row = np.unique(days[used], return_inverse=True)
    sums = np.zeros((len(day_index), len(key_index)), dtype=np.uint64)
    np.add.at(sums, (row, col[used]), hashes[used])
    shard_index = pd.Index(sorted(key_shards["shard"].unique()))
    incidence = np.zeros((len(key_index), len(shard_index)), dtype=np.uint64)
    incidence[
        key_index.get_indexer(key_shards["key"]), shard_index.get_indexer(key_shards["shard"])
    ] = 1
    by_shard = sums @ incidence  # integer matmul wraps modulo 2**64, as the sums do
    day_pos, shard_pos = np.nonzero(by_shard)  # a missing day counts as digest 0
    return pd.DataFrame(
        {
            "shard": shard_index[shard_pos],
            "date": day_index[day_pos],
            "digest": by_shard[day_pos, shard_pos],
        }
    )


_ALL_RATES = "*"
"""The one key every exchange rate row is broadcast under (to every multi-currency shard)."""


def _multi_currency_shards(
    portfolios: pd.DataFrame,
    transactions: pd.DataFrame,
    prices: pd.DataFrame,
    owners: pd.DataFrame,
) -> np.ndarray:
    """The shards holding a portfolio that names a currency other than its base currency:
    in a transaction's currency or counter_currency, or in the prices of a security it
    trades."""
    price_currency = prices[["security_id", "currency"]].drop_duplicates()
    named = transactions[["portfolio_id", "security_id"]].dropna().drop_duplicates()
    used = pd.concat(
        [
            transactions[["portfolio_id", "currency"]],
            transactions[["portfolio_id", "counter_currency"]]
            .dropna()
            .rename(columns={"counter_currency": "currency"}),
            named.merge(price_currency, on="security_id")[["portfolio_id", "currency"]],
        ],
        ignore_index=True,
    ).drop_duplicates()
    base = portfolios.set_index("portfolio_id")["base_currency"]
    foreign = used.loc[
        used["currency"].to_numpy(dtype=object)
        != used["portfolio_id"].map(base).to_numpy(dtype=object),
        "portfolio_id",
    ]
    return owners.loc[owners["portfolio_id"].isin(foreign), "shard"].unique()


def input_digests(
    portfolios: pd.DataFrame,
    transactions: pd.DataFrame,
    prices: pd.DataFrame,
    benchmarks: pd.DataFrame,
    fx_rates: pd.DataFrame,
    shards: int,
    settings: str = "",
    first_day: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The digest of every (shard, business day) that has input (module docstring).

    `settings` is any text naming the calculation settings. Closes, trade prices, benchmark
    closes and exchange rates dated before `first_day` (the first partition) count on `first_day`:
    they only seed what later days carry forward. Transactions keep their day, so one dated
    before `first_day` shows as input before the partitions. Returns DIGEST_COLUMNS, digest
    as int64 (the bits of the unsigned sum), sorted by shard and date.
    """
    tx_shard = shard_of(transactions["portfolio_id"], shards)
    tx_days = _days(transactions["trade_date"])
    owners = (
        pd.DataFrame(
            {
                "portfolio_id": transactions["portfolio_id"].to_numpy(),
                "shard": tx_shard,
                "date": tx_days,
            }
        )
        .groupby(["portfolio_id", "shard"], sort=False)["date"]
        .min()
        .reset_index()
    )
    described = owners.merge(portfolios, on="portfolio_id", how="left")
    named = transactions["security_id"].notna().to_numpy()
    securities = pd.DataFrame(
        {"key": transactions["security_id"].to_numpy()[named], "shard": tx_shard[named]}
    ).drop_duplicates()
    trades = transactions.loc[named & transactions["type"].isin(["BUY", "SELL"]).to_numpy()]
    bench_of = portfolios[["portfolio_id", "benchmark_id"]].dropna().merge(owners)
    bench_shards = bench_of.rename(columns={"benchmark_id": "key"})[["key", "shard"]]
    fx_shards = pd.DataFrame(
        {
            "key": _ALL_RATES,
            "shard": _multi_currency_shards(portfolios, transactions, prices, owners),
        }
    )
    salt = np.uint64(zlib.crc32(settings.encode()))
    own = [
        pd.DataFrame(
            {
                "shard": tx_shard,
                "date": tx_days,
                "digest": _row_hashes(transactions, TRANSACTION_FIELDS),
            }
        ),
        pd.DataFrame(
            {
                "shard": described["shard"],
                "date": described["date"],
                "digest": _row_hashes(described, list(portfolios.columns)) + salt,
            }
        ),
    ]
    seeds = [
        _broadcast(
            prices["security_id"].to_numpy(),
            _days(prices["date"]),
            _row_hashes(prices, ["security_id", "date", "close", "currency"]),
            securities,
        ),
        _broadcast(
            trades["security_id"].to_numpy(),
            _days(trades["trade_date"]),
            _row_hashes(trades, TRADE_PRICE_FIELDS),
            securities,
        ),
        _broadcast(
            benchmarks["benchmark_id"].to_numpy(),
            _days(benchmarks["date"]),
            _row_hashes(benchmarks, ["benchmark_id", "date", "close"]),
            bench_shards,
        ),
        _broadcast(
            np.full(len(fx_rates), _ALL_RATES, dtype=object),
            _days(fx_rates["date"]),
            _row_hashes(fx_rates, ["date", "base", "quote", "rate"]),
            fx_shards,
        ),
    ]
    if first_day is not None:
        floor = np.datetime64(pd.Timestamp(first_day).normalize(), "ns")
        seeds = [
            part.assign(date=np.maximum(part["date"].to_numpy(dtype="datetime64[ns]"), floor))
            for part in seeds
        ]
    parts = [part for part in own + seeds if not part.empty]
    if not parts:
        return no_digests()
    rows = pd.concat(parts, ignore_index=True)
    summed = (
        rows.assign(digest=rows["digest"].to_numpy(dtype=np.uint64))
        .groupby(["shard", "date"], sort=True)["digest"]
        .sum()
        .reset_index()
    )
    summed["digest"] = summed["digest"].to_numpy(dtype=np.uint64).view(np.int64)
    return summed[DIGEST_COLUMNS]


def stale_ranges(
    current: pd.DataFrame, computed: pd.DataFrame, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Per shard, the business days to recompute: from the first day whose current digest
    differs from the one its partition was computed from (a day without input has digest 0;
    a day never computed differs) through the later of `as_of` and the shard's last computed
    day (a day computed from a state that changed must be recomputed too).

    `current`: input_digests; `computed`: the (shard, date, digest) each computed partition
    was computed from. A shard's days run from its first day with input or computed,
    whichever is earlier, so a shard whose earliest input went (or all of it) is compared
    against digest 0 there and its rows are replaced by nothing. Returns RANGE_COLUMNS, one
    row per stale shard.
    """
    as_of = pd.Timestamp(as_of).normalize()
    found = []
    for shard in sorted(set(current["shard"]) | set(computed["shard"])):
        now_rows = current.loc[current["shard"] == shard].set_index("date")["digest"]
        done = computed.loc[computed["shard"] == shard].set_index("date")["digest"]
        first = min(day for day in (now_rows.index.min(), done.index.min()) if pd.notna(day))
        end = max(as_of, done.index.max()) if len(done) else as_of
        if first > end:
            continue
        calendar = business_days(first, end)
        now = now_rows.reindex(calendar, fill_value=0)
        then = done.reindex(calendar)
        differs = then.isna().to_numpy() | (then.to_numpy() != now.to_numpy())
        if differs.any():
            found.append((shard, calendar[int(np.argmax(differs))], end))
    return pd.DataFrame(found, columns=RANGE_COLUMNS)


def partition_digests(
    digests: pd.DataFrame, shards: Sequence[str], start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """The digest of every partition of `shards` x business days start..end (0: no input):
    what a run over them computes from. DIGEST_COLUMNS, sorted by shard and date."""
    grid = pd.MultiIndex.from_product(
        [sorted(shards), business_days(start, end)], names=["shard", "date"]
    )
    current = digests.set_index(["shard", "date"])["digest"]
    return current.reindex(grid, fill_value=0).astype("int64").reset_index()[DIGEST_COLUMNS]


@dataclass(frozen=True)
class PlannedRun:
    """One ranged run: the business days start..end of the contiguous shards first..last."""

    shards: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp


def plan_runs(
    ranges: pd.DataFrame,
    all_shards: Sequence[str],
    fresh: Iterable[str] = (),
    idle: Iterable[str] = (),
    workers: int = 1,
) -> list[PlannedRun]:
    """Ranged runs covering `ranges` exactly: shards with the same range that are contiguous
    in `all_shards` share a run (a run's partitions are a 2-D range, so a run never spans a
    shard with input that it does not recompute), cut into `workers` runs of similar size
    when there is more than one worker. Over at most JOIN_IDLE_DAYS business days, `idle`
    shards (no input at all) between them join the run: an empty partition costs Dagster a
    record, a run costs seconds. A `fresh` shard (nothing computed yet) may start earlier
    than its first input at no cost, so fresh shards take the earliest start among them.
    """
    if ranges.empty:
        return []
    ranges = ranges.copy()
    fresh = ranges["shard"].isin(list(fresh))
    if fresh.any():
        ranges.loc[fresh, "start"] = ranges.loc[fresh, "start"].min()
    spanned, idle = set(ranges["shard"]), set(idle)
    busy = [name for name in all_shards if name in spanned or name not in idle]
    runs: list[PlannedRun] = []
    for (start, end), group in ranges.groupby(["start", "end"], sort=True):
        short = len(business_days(start, end)) <= JOIN_IDLE_DAYS
        order = {name: i for i, name in enumerate(busy if short else all_shards)}
        group = group.assign(position=group["shard"].map(order)).sort_values("position")
        breaks = np.flatnonzero(np.diff(group["position"].to_numpy()) != 1) + 1
        for block in np.split(group["shard"].to_numpy(), breaks):
            for part in np.array_split(block, min(max(workers, 1), len(block))):
                runs.append(PlannedRun(tuple(part), pd.Timestamp(start), pd.Timestamp(end)))
    return runs
