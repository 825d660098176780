"""Performance metrics of every entity, calculation date and period from a ValuationPanel.

For each calculation date D (each month-end business day from the entity's inception on, and
the latest valuation date) and each period of `periods.PERIODS` with base date b
(`periods.period_bounds`), over (b, D]:

- twr = I_D / I_b - 1, from the performance index; twr_annualized for periods of >= 365 days.
- fx_effect = F_D / F_b - 1 with F the index of the daily fx_return (the currency part of
  each daily return), and twr_local = (1 + twr) / (1 + fx_effect) - 1, so that
  (1 + twr) = (1 + twr_local)(1 + fx_effect) for every entity and period (0 and twr for an
  entity in its own currency). Both are null in an uninvested window, as every figure but twr.
- modified_dietz (`dietz.modified_dietz_many`) with F = inflow - outflow on each flow day.
- mwr: the annual XIRR of -MV_b at b, -IN and +OUT on each flow day, +MV_D at D; with several
  roots, the one whose period rate is closest to modified_dietz (0 when that is null). mwr is
  the period's own rate, mwr_annualized the annual rate for periods of >= 365 days. Modified
  Dietz and XIRR each run once over the flows of all windows.
- risk metrics (`risk.risk_metrics_array`) on the non-null daily returns of the window, with
  the portfolio's benchmark returns on the same days; benchmark metrics and benchmark_twr are
  null when the portfolio has no benchmark or the benchmark has no close at or before b.
- a period in which every daily return is null has twr 0 and every other figure null.

Dates x entities matrices throughout: the loop runs over (calculation date, period) pairs, each
step vectorized over all entities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perf_pipeline.calc.calendar import business_days, roll_to_business_day
from perf_pipeline.calc.dietz import modified_dietz_many
from perf_pipeline.calc.periods import PERIODS, annualize, calculation_dates, period_bounds
from perf_pipeline.calc.returns import performance_index
from perf_pipeline.calc.risk import RISK_METRICS, risk_metrics_array
from perf_pipeline.calc.segments import ranges_to_indices
from perf_pipeline.calc.valuation import ValuationPanel
from perf_pipeline.calc.xirr import xirr_many_detailed

METRIC_COLUMNS = [
    "id",
    "calculation_date",
    "entity_type",
    "entity_id",
    "portfolio_id",
    "client_id",
    "time_period",
    "start_date",
    "end_date",
    "partial_period",
    "twr",
    "twr_annualized",
    "twr_local",
    "fx_effect",
    "mwr",
    "mwr_annualized",
    "modified_dietz",
    "volatility",
    "downside_deviation",
    "sharpe_ratio",
    "sortino_ratio",
    "max_drawdown",
    "calmar_ratio",
    "benchmark_id",
    "benchmark_twr",
    "beta",
    "alpha",
    "tracking_error",
    "information_ratio",
    "correlation",
    "var_95",
    "cvar_95",
    "calculation_method",
]
ISSUE_COLUMNS = ["id", "calculation_date", "time_period", "status"]
RISK_COLUMNS = [name for name in RISK_METRICS if name in METRIC_COLUMNS]
BENCHMARK_COLUMNS = [
    "benchmark_twr",
    "beta",
    "alpha",
    "tracking_error",
    "information_ratio",
    "correlation",
]


def benchmark_closes(benchmarks: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.DataFrame:
    """Forward-filled benchmark closes on a business-day calendar covering `dates`.

    One column per benchmark_id; rows are business days from the earliest close (or the first
    of `dates`) to the last of `dates`; NaN before a benchmark's first close. A weekend close
    counts from its date (it fills the next business day unless that day has its own close).
    """
    if benchmarks.empty or len(dates) == 0:
        return pd.DataFrame(index=dates)
    start = min(pd.Timestamp(benchmarks["date"].min()), dates[0])
    calendar = business_days(start, dates[-1])
    closes = benchmarks.loc[benchmarks["date"] <= dates[-1]].sort_values("date", kind="stable")
    rolled = closes.assign(day=np.asarray(roll_to_business_day(pd.DatetimeIndex(closes["date"]))))
    table = rolled.pivot_table(index="day", columns="benchmark_id", values="close", aggfunc="last")
    return table.reindex(calendar).ffill()


def performance_metrics(
    panel: ValuationPanel,
    portfolios: pd.DataFrame,
    benchmarks: pd.DataFrame,
    risk_free_rate: float = 0.0,
    periods_per_year: int = 252,
    ddof: int = 0,
    dates: pd.DatetimeIndex | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The performance_metrics table and the MWR windows that have no rate, with the reason.

    `portfolios` gives client_id and benchmark_id per portfolio_id; `benchmarks` holds the
    validated closes. `dates` restricts the calculation dates (default: every month-end
    business day in the panel and its last date). Returns (metrics, mwr_issues); metrics has
    METRIC_COLUMNS, mwr_issues ISSUE_COLUMNS.
    """
    if panel.market_value.size == 0:
        return _nothing()
    ctx = _Context(panel, portfolios, benchmarks)
    if dates is None:
        dates = calculation_dates(panel.dates[0], panel.dates[-1])
    chunks, issues = [], []
    for calc_date in pd.DatetimeIndex(dates):  # one date at a time bounds the XIRR's memory
        periods = [
            ctx.period_chunk(calc_date, period, risk_free_rate, periods_per_year, ddof)
            for period in PERIODS
        ]
        periods = [chunk for chunk in periods if chunk is not None]
        if periods:
            day = pd.concat(periods, ignore_index=True)
            issues.append(ctx.attach_money_weighted(day))
            chunks.append(day[METRIC_COLUMNS])
    if not chunks:
        return _nothing()
    return pd.concat(chunks, ignore_index=True), pd.concat(issues, ignore_index=True)


def _nothing() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The empty result: no metrics, no MWR issues."""
    return pd.DataFrame(columns=METRIC_COLUMNS), pd.DataFrame(columns=ISSUE_COLUMNS)


class _Context:
    """Running totals and lookups shared by every (calculation date, period) step."""

    def __init__(
        self, panel: ValuationPanel, portfolios: pd.DataFrame, benchmarks: pd.DataFrame
    ) -> None:
        self.panel = panel
        n_dates, n_ent = panel.market_value.shape
        zero = np.zeros((1, n_ent))
        self.index = np.vstack([np.ones((1, n_ent)), panel.twr_index])
        self.fx_index = np.vstack([np.ones((1, n_ent)), performance_index(panel.fx_return)])
        self.value = np.vstack([zero, panel.market_value])
        self.valid_count = np.vstack([zero, np.cumsum(~np.isnan(panel.daily_return), axis=0)])
        self.inception_row = panel.dates.searchsorted(panel.entities["inception"].to_numpy())
        self.inception = panel.entities["inception"].to_numpy()
        # entities x dates copies: a window's rows of a set of entities are contiguous runs
        self.return_by_entity = np.ascontiguousarray(panel.daily_return.T)

        ports = portfolios.set_index("portfolio_id")
        ent = panel.entities
        client_id = ports["client_id"].reindex(ent["portfolio_id"]).to_numpy()
        benchmark_id = ports["benchmark_id"].reindex(ent["portfolio_id"]).to_numpy()
        # the text columns of a metrics row, per entity, typed once (a step only takes rows)
        self.text = {
            name: pd.array(values, dtype="str")
            for name, values in {
                "id": (ent["entity_type"] + "#" + ent["entity_id"]).to_numpy(),
                "entity_type": ent["entity_type"].to_numpy(),
                "entity_id": ent["entity_id"].to_numpy(),
                "portfolio_id": ent["portfolio_id"].to_numpy(),
                "client_id": np.where(pd.isna(client_id), ent["portfolio_id"], client_id),
                "benchmark_id": benchmark_id,
            }.items()
        }

        closes = benchmark_closes(benchmarks, panel.dates)
        self.bench_calendar = closes.index
        bench_col = closes.columns.get_indexer(pd.Index(benchmark_id))
        table = np.column_stack([closes.to_numpy(dtype=float), np.full(len(closes), np.nan)])
        self.bench_close = table[:, bench_col]  # column -1 (no benchmark) is all NaN
        prev = np.vstack([np.full((1, n_ent), np.nan), self.bench_close[:-1]])
        rows = self.bench_calendar.get_indexer(panel.dates)
        self.bench_return_by_entity = np.ascontiguousarray((self.bench_close / prev - 1.0)[rows].T)

        nonzero = (panel.inflow != 0) | (panel.outflow != 0)
        f_row, f_ent = np.nonzero(nonzero.T)[1], np.nonzero(nonzero.T)[0]
        self.flow_key = f_ent.astype(np.int64) * n_dates + f_row
        self.flow_in = (panel.inflow - panel.outflow)[f_row, f_ent]  # net external flow, + in
        self.flow_row = f_row

    def bench_close_at(self, when: np.ndarray, ent: np.ndarray) -> np.ndarray:
        """Each entity's benchmark close at `when` (forward-filled), NaN if none yet."""
        row = self.bench_calendar.searchsorted(when, side="right") - 1
        safe = np.maximum(row, 0)
        return np.where(row >= 0, self.bench_close[safe, ent], np.nan)

    def period_chunk(
        self, calc_date: pd.Timestamp, period: str, rf: float, ppy: int, ddof: int
    ) -> pd.DataFrame | None:
        """Metrics of every live entity for one calculation date and period."""
        panel = self.panel
        d = int(panel.dates.searchsorted(calc_date))
        alive = np.nonzero(self.inception_row <= d)[0]
        if d >= len(panel.dates) or panel.dates[d] != calc_date or alive.size == 0:
            return None
        inception = self.inception[alive]
        bounds = period_bounds(np.full(alive.size, calc_date.to_datetime64()), period, inception)
        keep = bounds["reported"].to_numpy()
        ent = alive[keep]
        if ent.size == 0:
            return None
        base = bounds["start_date"].to_numpy()[keep].astype("datetime64[ns]")
        b = np.asarray(panel.dates.searchsorted(base, side="right"))  # extended row of b
        e = d + 1
        days = (calc_date.to_datetime64() - base).astype("timedelta64[D]").astype(np.int64)

        twr = self.index[e, ent] / self.index[b, ent] - 1.0
        fx_effect = self.fx_index[e, ent] / self.fx_index[b, ent] - 1.0
        invested = (self.valid_count[e, ent] - self.valid_count[b, ent]) > 0
        lo = int(b.min())
        r = self.return_by_entity[ent, lo:e]  # entities x days; NaN before each row of b
        r[np.arange(lo, e)[None, :] < b[:, None]] = np.nan
        close_b = self.bench_close_at(base, ent)
        has_bench = ~np.isnan(close_b)
        m = self.bench_return_by_entity[ent, lo:e]
        m[~has_bench] = np.nan
        risk = risk_metrics_array(r.T, m.T, risk_free_rate=rf, periods_per_year=ppy, ddof=ddof)
        close_d = self.bench_close_at(np.full(ent.size, calc_date.to_datetime64()), ent)

        def figure(values: np.ndarray, benchmark: bool = False) -> np.ndarray:
            """values where the window is invested (and has a benchmark), else NaN."""
            shown = invested & has_bench if benchmark else invested
            return np.where(shown, values, np.nan)

        columns = {
            **{name: values.take(ent) for name, values in self.text.items()},
            "calculation_date": calc_date,
            "time_period": period,
            "start_date": pd.DatetimeIndex(base),
            "end_date": calc_date,
            "partial_period": bounds["partial_period"].to_numpy()[keep],
            "twr": np.where(invested, twr, 0.0),
            "twr_local": figure((1.0 + twr) / (1.0 + fx_effect) - 1.0),
            "fx_effect": figure(fx_effect),
            "twr_annualized": figure(annualize(twr, days)),
            **{name: figure(risk[name], name in BENCHMARK_COLUMNS) for name in RISK_COLUMNS},
            "benchmark_twr": figure(close_d / close_b - 1.0, benchmark=True),
            "calculation_method": "daily",
            "_ent": ent,
            "_b": b,
            "_e": e,
            "_days": days,
            "_invested": invested,
        }
        return pd.DataFrame(columns)

    def window_flows(self, metrics: pd.DataFrame) -> pd.DataFrame:
        """Net external flows (+ in) of every window on each of its flow days in (b, D].

        Long frame: window (row number of `metrics`), date, amount.
        """
        n_dates = len(self.panel.dates)
        ent, b, e = (metrics[c].to_numpy() for c in ("_ent", "_b", "_e"))
        lo = np.searchsorted(self.flow_key, ent * n_dates + b, side="left")
        hi = np.searchsorted(self.flow_key, ent * n_dates + (e - 1), side="right")
        window, idx = ranges_to_indices(lo, hi)
        return pd.DataFrame(
            {
                "entity": window,
                "date": self.panel.dates[self.flow_row[idx]],
                "amount": self.flow_in[idx],
            }
        )

    def attach_money_weighted(self, metrics: pd.DataFrame) -> pd.DataFrame:
        """Set modified_dietz, mwr and mwr_annualized of every window in place.

        One Modified Dietz pass and one XIRR call over all windows; returns the windows that
        have no MWR, with the solver's reason.
        """
        ent, b, e = (metrics[c].to_numpy() for c in ("_ent", "_b", "_e"))
        days, invested = metrics["_days"].to_numpy(), metrics["_invested"].to_numpy()
        window = pd.RangeIndex(len(metrics))
        start = pd.Series(metrics["start_date"].to_numpy(), index=window)
        end = pd.Series(metrics["end_date"].to_numpy(), index=window)
        begin = pd.Series(self.value[b, ent], index=window)
        final = pd.Series(self.value[e, ent], index=window)
        flows = self.window_flows(metrics)
        dietz = modified_dietz_many(begin, final, flows, start, end).to_numpy()
        metrics["modified_dietz"] = np.where(invested, dietz, np.nan)

        investor = pd.concat(
            [  # the investor's side: pays MV_b and inflows, receives the rest
                pd.DataFrame({"entity": window, "date": start.to_numpy(), "amount": -begin}),
                flows.assign(amount=-flows["amount"]),
                pd.DataFrame({"entity": window, "date": end.to_numpy(), "amount": final}),
            ],
            ignore_index=True,
        )
        investor = investor.loc[(investor["amount"] != 0) & invested[investor["entity"].to_numpy()]]
        near = pd.Series(np.nan_to_num(metrics["modified_dietz"].to_numpy()), index=window)
        solved = xirr_many_detailed(
            investor, near_period_rate=near, horizon_days=pd.Series(days, index=window)
        ).reindex(window)
        rate = solved["rate"].to_numpy(dtype=float)
        period_rate = np.expm1(solved["log1p_rate"].to_numpy(dtype=float) * days / 365.0)
        metrics["mwr"] = np.where(invested, period_rate, np.nan)  # exact for extreme rates too
        metrics["mwr_annualized"] = np.where(invested & (days >= 365), rate, np.nan)
        status = solved["status"].fillna("no_flows").to_numpy()
        failed = invested & (status != "ok")
        issues = metrics.loc[failed, ["id", "calculation_date", "time_period"]]
        return issues.assign(status=status[failed]).reset_index(drop=True)
