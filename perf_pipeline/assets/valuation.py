"""Positions and daily valuations of every security position, account and portfolio.

daily_valuations is partitioned by month (perf_pipeline.partitions); a run covers the
business days and shards of its scope and values them in one vectorized pass per chunk of
shards (assets.fanout: one step per shard, which bounds memory by the shard's size),
continuing from the stored close of the business day before its range.
"""

from collections.abc import Iterator

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetsDefinition,
    BackfillPolicy,
    Failure,
    MetadataValue,
    OpExecutionContext,
    Out,
    Output,
    PartitionsDefinition,
    asset,
    graph_asset,
    op,
)

from perf_pipeline.assets.fanout import (
    Chunk,
    check_result,
    findings,
    partition_outputs,
    run_chunks,
    whole_store_on_last_day,
    written,
)
from perf_pipeline.assets.groups import INPUTS, VALUATION
from perf_pipeline.assets.metadata import date_range, frame_check_metadata
from perf_pipeline.calc.calendar import previous_business_day
from perf_pipeline.calc.holdings import positions as holdings
from perf_pipeline.calc.valuation import POSITION_TYPES, state_from_closing, value_entities
from perf_pipeline.increments import (
    DIGEST_COLUMNS,
    no_digests,
    partition_digests,
    stale_ranges,
)
from perf_pipeline.resources.partition_store import PartitionStore, Slice
from perf_pipeline.resources.settings import CalculationSettings

SUM_TOLERANCE = 1e-6  # relative to max(1, |value|)
STALE_BUSINESS_DAYS = 5
RETURN_BOUNDS = (-0.5, 1.0)  # a daily return outside these is worth a look
CHECK_NAMES = (
    "every_holding_priced",
    "every_amount_converted",
    "values_add_up",
    "prices_fresh",
    "rates_fresh",
    "returns_within_bounds",
)


def opening_state(
    store: PartitionStore, shards: tuple[str, ...], start: pd.Timestamp, digests: pd.DataFrame
):
    """The stored close of the business day before `start`, or None when the shards have no
    input before `start`. A Failure when their partitions before `start` are not up to date
    with the input (never computed, changed since, or being computed by another run): the
    run would carry a stale state forward."""
    before = pd.Timestamp(previous_business_day(start))
    current = digests.loc[digests["shard"].isin(shards)]
    if current.empty or current["date"].min() > before:
        return None
    computed = store.read("computed_from", shards, end=before.date(), columns=DIGEST_COLUMNS)
    behind = stale_ranges(current, computed, before)
    if not behind.empty:
        first = behind["start"].min()
        raise Failure(
            f"shards {', '.join(behind['shard'])} are not up to date before this run's range "
            f"(from {first:%Y-%m-%d}): materialize them from {first:%Y-%m-%d} first "
            f"(`perf-pipeline run` and the stale_partitions sensor plan this)."
        )
    closing = store.read("daily_valuations", shards, before.date(), before.date())
    return None if closing.empty else state_from_closing(closing)


@asset(
    group_name=INPUTS,
    kinds={"pandas", "parquet"},
    check_specs=[
        AssetCheckSpec(
            "no_negative_holdings",
            asset="positions",
            description="No position or cash balance below zero (warning).",
        )
    ],
)
def positions(transactions: pd.DataFrame):
    """Holdings as a change log: quantity (cash for security_id null) held from each effective
    date. Unpartitioned: it is one cheap pass over the transactions, and the daily state the
    partitions carry is in daily_valuations (holding)."""
    held = holdings(transactions, pd.Timestamp.max)  # every transaction
    negative = negative_holdings(held)
    yield Output(held, metadata=date_range(held["date"]))
    yield AssetCheckResult(
        check_name="no_negative_holdings",
        asset_key="positions",
        passed=negative.empty,
        severity=AssetCheckSeverity.WARN,
        metadata=frame_check_metadata(negative),
    )


@op(description="Value one chunk of the run's shards over the run's business days.")
def value_chunk(
    context: OpExecutionContext,
    chunk: dict,
    transactions: pd.DataFrame,
    prices: pd.DataFrame,
    portfolios: pd.DataFrame,
    fx_rates: pd.DataFrame,
    input_digests: pd.DataFrame,
    calculation_settings: CalculationSettings,
    partition_store: PartitionStore,
) -> dict:
    """Value the chunk's portfolios, in their base currencies, from the stored close before
    the range (opening_state), store their rows, and return what the checks found."""
    part = Chunk.of(chunk)
    chunk, start, end = part.shards, part.start, part.end
    opening = opening_state(partition_store, chunk, start, input_digests)
    panel = value_entities(
        transactions,
        prices,
        end,
        timing=calculation_settings.timing,
        portfolios=list(part.portfolios),
        opening=opening,
        base_currencies=portfolios.set_index("portfolio_id")["base_currency"],
        fx_rates=fx_rates,
        fx_pivot=calculation_settings.fx_pivot,
    )
    daily = panel.to_frame()
    daily["shard"] = part.shard_column(daily, partition_store)
    where = Slice(chunk, start.date(), end.date())
    partition_store.replace("computed_from", no_digests(), where)  # uncertified until done
    partition_store.replace("daily_valuations", daily, where)
    partition_store.replace(
        "valued_from", partition_digests(input_digests, chunk, start, end), where
    )
    context.log.info(
        f"valued shards {','.join(chunk)}: {len(panel.entities)} entities over "
        f"{len(panel.dates)} business days"
    )
    return {
        "rows": len(daily),
        **written(part, daily, "date"),
        "found": {name: findings(find(daily)) for name, (_, find) in CHECKS.items()},
    }


@op(
    out={"result": Out(), **{f"daily_valuations_{name}": Out() for name in CHECK_NAMES}},
    description="The run's valuation summary and checks, over every chunk.",
)
def valuations_done(
    context: OpExecutionContext, chunks: list, partition_store: PartitionStore
) -> Iterator[Output | AssetCheckResult]:
    day = whole_store_on_last_day(
        context, partition_store, "daily_valuations", chunks, BOOK_COLUMNS
    )
    figures = {} if day is None else book_figures(day)
    yield from partition_outputs(context, partition_store, "daily_valuations", chunks, figures)
    for name, (severity, _) in CHECKS.items():
        yield check_result(
            "daily_valuations",
            name,
            severity,
            [part["found"][name] for part in chunks],
            CHECK_METADATA.get(name, {}),
        )


BOOK_COLUMNS = ["entity_type", "market_value", "price_age_days", "currency", "fx_age_days"]


def book_figures(day: pd.DataFrame) -> dict[str, MetadataValue]:
    """The figures of one day's valuations of the whole book (BOOK_COLUMNS), as numbers the
    Plots tab draws: the total market value of the portfolios (``market_value_total``; with
    portfolios in several base currencies, one ``market_value_total_<currency>`` each), the
    entities and portfolios valued, and the age in days of the oldest price of a held security
    (``oldest_price_age_days``) and of the oldest exchange rate a held position was converted
    at (``oldest_rate_age_days``)."""
    kind = day["entity_type"].astype(str)
    held = day["market_value"].fillna(0) != 0
    portfolios = day.loc[kind == "portfolio"]
    by_currency = portfolios.groupby("currency")["market_value"].sum()
    totals = (
        {f"market_value_total_{ccy}": value for ccy, value in by_currency.items()}
        if len(by_currency) > 1
        else {"market_value_total": portfolios["market_value"].sum()}
    )
    figures = {name: MetadataValue.float(float(value)) for name, value in totals.items()}
    figures |= {
        "entities": MetadataValue.int(len(day)),
        "portfolios": MetadataValue.int(len(portfolios)),
    }
    for name, age, kinds in (
        ("oldest_price_age_days", "price_age_days", ("security",)),
        ("oldest_rate_age_days", "fx_age_days", POSITION_TYPES),
    ):
        oldest = day.loc[held & kind.isin(kinds), age].max()
        if pd.notna(oldest):
            figures[name] = MetadataValue.int(int(oldest))
    return figures


def build_daily_valuations(partitions_def: PartitionsDefinition) -> AssetsDefinition:
    """The daily_valuations asset over `partitions_def` (partitions.MONTHS): the
    run's shards fan out as one value_chunk step per chunk (assets.fanout)."""

    @graph_asset(
        group_name=VALUATION,
        partitions_def=partitions_def,
        backfill_policy=BackfillPolicy.single_run(),
        kinds={"pandas", "parquet"},
        description="One row per entity and business day: market value, flows, daily return, "
        "performance index, price age, holding, inception; for positions also in their own "
        "currency, with the exchange rate used and the currency part of the return.",
        check_specs=[
            AssetCheckSpec(
                "every_holding_priced",
                asset="daily_valuations",
                blocking=True,
                description="Every held security has a close or a trade price.",
            ),
            AssetCheckSpec(
                "every_amount_converted",
                asset="daily_valuations",
                blocking=True,
                description="Every position in another currency than its portfolio's has an "
                "exchange rate on or before the day (names the pair and the day).",
            ),
            AssetCheckSpec(
                "values_add_up",
                asset="daily_valuations",
                blocking=True,
                description="Security + cash positions = account; accounts = portfolio (1e-6).",
            ),
            AssetCheckSpec(
                "prices_fresh",
                asset="daily_valuations",
                description="No held security priced more than 5 business days ago (warning).",
            ),
            AssetCheckSpec(
                "rates_fresh",
                asset="daily_valuations",
                description="No position converted at a rate more than 5 business days old "
                "(warning).",
            ),
            AssetCheckSpec(
                "returns_within_bounds",
                asset="daily_valuations",
                description="Daily returns between -50% and +100% (warning).",
            ),
        ],
    )
    def daily_valuations(transactions, prices, portfolios, fx_rates, input_digests):
        chunks = run_chunks(transactions, prices)
        done = chunks.map(
            lambda chunk: value_chunk(
                chunk, transactions, prices, portfolios, fx_rates, input_digests
            )
        )
        return valuations_done(done.collect())

    return daily_valuations


def negative_holdings(held: pd.DataFrame) -> pd.DataFrame:
    """Holdings below zero (a short position or an overdraft)."""
    return held.loc[held["quantity"] < -SUM_TOLERANCE]


def unpriced_holdings(daily: pd.DataFrame) -> pd.DataFrame:
    """Held securities whose value is unknown in their own currency (no close and no trade
    price yet), by day: the cause, not the accounts and portfolios whose sums it leaves
    unknown."""
    unpriced = daily["market_value_local"].isna() & (daily["entity_type"] == "security")
    return daily.loc[unpriced, ["date", "portfolio_id", "account_id", "security_id", "entity_id"]]


def unconverted_amounts(daily: pd.DataFrame) -> pd.DataFrame:
    """Positions with something to convert (a value or a flow) and no exchange rate from their
    currency into their portfolio's base currency on or before the day: the pair (currency ->
    base) and the day. Their base values are unknown; nothing is converted at 1."""
    portfolios = daily.loc[daily["entity_type"] == "portfolio"]
    base = portfolios.drop_duplicates("portfolio_id").set_index("portfolio_id")["currency"]
    unknown = (
        daily["entity_type"].isin(POSITION_TYPES)
        & daily["fx_rate"].isna()
        & ((daily["market_value_local"] != 0) | daily["inflow"].isna() | daily["outflow"].isna())
    )
    found = daily.loc[unknown, ["date", "portfolio_id", "entity_id", "currency"]]
    return found.assign(base=base.reindex(found["portfolio_id"]).to_numpy())


def sums_off(daily: pd.DataFrame) -> pd.DataFrame:
    """Accounts whose value is not the sum of their security and cash positions, and portfolios
    whose value is not the sum of their accounts, beyond SUM_TOLERANCE x max(1, |expected|).

    Each parent's expected value is a bincount of its children's values over integer
    (day, parent) keys: no join of the long table."""
    kind = daily["entity_type"].to_numpy()
    day = pd.factorize(daily["date"])[0].astype(np.int64)
    value = daily["market_value"].to_numpy(dtype=float)
    off = []
    for level, parts, key in (
        ("account", POSITION_TYPES, "account_id"),
        ("portfolio", ("account",), "portfolio_id"),
    ):
        parent, names = pd.factorize(daily[key])
        cell = day * max(len(names), 1) + parent
        children, rows = np.isin(kind, parts), np.flatnonzero(kind == level)
        totals = np.bincount(
            cell[children], weights=value[children], minlength=int(cell.max(initial=0)) + 1
        )
        expected = totals[cell[rows]]
        # an unknown value (an unpriced holding below) is every_holding_priced's finding, not
        # a sum that is off: only a known value that differs, or one unknown alone, is
        off_by = np.abs(value[rows] - expected)
        found = (off_by > SUM_TOLERANCE * np.maximum(1.0, np.abs(expected))) | (
            np.isnan(value[rows]) != np.isnan(expected)
        )
        off.append(
            daily.iloc[rows[found]][["date", key, "entity_id", "market_value", "holding"]].assign(
                expected=expected[found]
            )
        )
    return pd.concat(off, ignore_index=True)


def stale(daily: pd.DataFrame, age: str, kinds: tuple[str, ...]) -> pd.DataFrame:
    """Held positions of `kinds` whose `age` (calendar days since the price's or the rate's own
    date) is more than STALE_BUSINESS_DAYS business days."""
    held = (
        daily["entity_type"].isin(kinds) & (daily["market_value_local"] != 0) & daily[age].notna()
    ).to_numpy()
    day = daily["date"].to_numpy()[held].astype("datetime64[D]")
    source = day - daily[age].to_numpy()[held].astype("timedelta64[D]")
    late = np.zeros(len(daily), dtype=bool)
    late[held] = np.busday_count(source, day) > STALE_BUSINESS_DAYS
    return daily.loc[late]  # only the offending rows are copied


def stale_prices(daily: pd.DataFrame) -> pd.DataFrame:
    """Held securities whose price is more than STALE_BUSINESS_DAYS business days old."""
    return stale(daily, "price_age_days", ("security",))


def stale_rates(daily: pd.DataFrame) -> pd.DataFrame:
    """Positions converted at a rate more than STALE_BUSINESS_DAYS business days old."""
    return stale(daily, "fx_age_days", POSITION_TYPES)


def wild_returns(daily: pd.DataFrame) -> pd.DataFrame:
    """Daily returns outside RETURN_BOUNDS (likely a bad price or a missing flow)."""
    low, high = RETURN_BOUNDS
    r = daily["daily_return"]
    return daily.loc[(r < low) | (r > high)]


WARN, ERROR = AssetCheckSeverity.WARN, AssetCheckSeverity.ERROR
CHECKS = {  # checks of daily_valuations: (severity, finder of offending rows)
    "every_holding_priced": (ERROR, unpriced_holdings),
    "every_amount_converted": (ERROR, unconverted_amounts),
    "values_add_up": (ERROR, sums_off),
    "prices_fresh": (WARN, stale_prices),
    "rates_fresh": (WARN, stale_rates),
    "returns_within_bounds": (WARN, wild_returns),
}
CHECK_METADATA = {  # each rule's own limits, beside observed and threshold (check_metadata)
    "values_add_up": {"tolerance": SUM_TOLERANCE},
    "prices_fresh": {"max_business_days": STALE_BUSINESS_DAYS},
    "rates_fresh": {"max_business_days": STALE_BUSINESS_DAYS},
    "returns_within_bounds": {"lower": RETURN_BOUNDS[0], "upper": RETURN_BOUNDS[1]},
}
