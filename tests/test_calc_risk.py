"""Tests for perf_pipeline.calc.risk: worked examples, hand computations, empyrical, NaN policy."""

import math
import statistics
import warnings

import empyrical
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from perf_pipeline.calc.risk import (
    RISK_METRICS,
    drawdown_details,
    drawdowns_many,
    max_drawdown,
    risk_metrics,
    risk_metrics_array,
    risk_metrics_many,
)

P = 252
DATES = pd.bdate_range("2024-01-01", periods=7)
SPEC_INDEX = [100.0, 105.0, 103.0, 110.0, 95.0, 100.0, 105.0]


def _random_frame(seed: int, t: int = 400, n: int = 6) -> tuple[pd.DataFrame, pd.Series]:
    """Random daily returns with NaN days (different per column) and a NaN-free benchmark."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=t)
    bench = pd.Series(rng.normal(0.0004, 0.01, t), index=dates)
    r = 0.9 * bench.to_numpy()[:, None] + rng.normal(0.0002, 0.008, (t, n))
    r[rng.random((t, n)) < 0.1] = np.nan
    r[:30, 0] = np.nan  # a late-starting entity
    return pd.DataFrame(r, index=dates, columns=[f"e{i}" for i in range(n)]), bench


# --- worked examples of the design document ----------------------------------------------


def test_spec_volatility_example_ddof0():
    r = pd.Series([0.02, -0.01, 0.03, -0.02, 0.04])
    vol = risk_metrics(r)["volatility"]
    assert vol / math.sqrt(P) == pytest.approx(0.023152, abs=5e-7)  # docs/methodology.md: 2.3152 %
    assert vol == pytest.approx(statistics.pstdev(r.tolist()) * math.sqrt(P), rel=1e-12)


def test_spec_sharpe_example_built_from_its_pieces():
    # 252 returns alternating c + d, c - d: the population std is d, so volatility = 15 %
    # with d = 0.15 / sqrt(252); the annualized return ((1 + c)^2 - d^2)^126 - 1 = 10 %.
    d = 0.15 / math.sqrt(P)
    c = math.sqrt(1.10 ** (1 / 126) + d * d) - 1
    r = pd.Series([c + d, c - d] * 126)
    got = risk_metrics(r, risk_free_rate=0.02)
    assert got["annualized_return"] == pytest.approx(0.10, rel=1e-10)
    assert got["volatility"] == pytest.approx(0.15, rel=1e-10)
    assert got["sharpe_ratio"] == pytest.approx((0.10 - 0.02) / 0.15, rel=1e-9)
    assert got["sharpe_ratio"] == pytest.approx(0.5333, abs=5e-5)


def test_spec_max_drawdown_example_not_recovered():
    index = pd.Series(SPEC_INDEX, index=DATES)
    assert max_drawdown(SPEC_INDEX) == pytest.approx(15 / 110, rel=1e-14)  # 13.636 %
    details = drawdown_details(index)
    assert details["max_drawdown"] == pytest.approx(0.13636, abs=5e-6)
    assert details["peak_date"] == DATES[3]  # 110
    assert details["trough_date"] == DATES[4]  # 95
    assert details["recovery_date"] is pd.NaT  # 105 < 110


def test_spec_max_drawdown_example_recovered():
    dates = pd.bdate_range("2024-01-01", periods=9)
    index = pd.Series([*SPEC_INDEX, 109.0, 110.0], index=dates)
    details = drawdown_details(index)
    assert details["max_drawdown"] == pytest.approx(15 / 110, rel=1e-14)
    assert (details["peak_date"], details["trough_date"]) == (dates[3], dates[4])
    assert details["recovery_date"] == dates[8]  # first day back at 110


def test_spec_max_drawdown_from_returns_and_drawdowns_many():
    levels = pd.Series([*SPEC_INDEX, 110.0], index=pd.bdate_range("2024-01-01", periods=8))
    returns = levels.pct_change().iloc[1:]  # the first level is the base
    assert risk_metrics(returns)["max_drawdown"] == pytest.approx(15 / 110, rel=1e-12)
    frame = pd.DataFrame({"spec": returns, "short": returns.iloc[:-1]})
    got = drawdowns_many(frame, base_date=levels.index[0])
    assert got.loc["spec", "max_drawdown"] == pytest.approx(15 / 110, rel=1e-12)
    assert got.loc["spec", "peak_date"] == levels.index[3]
    assert got.loc["spec", "trough_date"] == levels.index[4]
    # 110 reached again through returns computed from prices: rounding must not hide it.
    assert got.loc["spec", "recovery_date"] == levels.index[7]
    assert pd.isna(got.loc["short", "recovery_date"])


# --- drawdowns: edge rules ---------------------------------------------------------------


def test_max_drawdown_degenerate_and_flat():
    assert max_drawdown([1.0, 1.0, 1.2, 1.3]) == 0.0
    assert math.isnan(max_drawdown([1.0]))
    assert math.isnan(max_drawdown([]))
    assert math.isnan(max_drawdown([np.nan, 1.0, np.nan]))
    assert max_drawdown(pd.Series([2.0, np.nan, 1.0])) == pytest.approx(0.5)


def test_drawdown_details_zero_drawdown_has_no_dates():
    details = drawdown_details(pd.Series([1.0, 1.1, 1.2], index=DATES[:3]))
    assert details["max_drawdown"] == 0.0
    assert all(details[k] is pd.NaT for k in ("peak_date", "trough_date", "recovery_date"))


def test_drawdown_peak_is_last_high_before_trough():
    index = pd.Series([1.0, 1.2, 1.1, 1.2, 0.9, 1.0, 1.0], index=DATES)
    details = drawdown_details(index)
    assert details["max_drawdown"] == pytest.approx(0.25)
    assert details["peak_date"] == DATES[3]
    assert details["trough_date"] == DATES[4]


def test_drawdowns_many_peak_at_base_and_empty_column():
    dates = pd.bdate_range("2024-01-02", periods=3)
    frame = pd.DataFrame(
        {"down": [-0.1, -0.1, 0.5], "none": [np.nan] * 3, "flat": [0.0, 0.01, np.nan]},
        index=dates,
    )
    base = pd.Timestamp("2024-01-01")
    got = drawdowns_many(frame, base_date=base)
    assert got.loc["down", "max_drawdown"] == pytest.approx(1 - 0.81)
    assert got.loc["down", "peak_date"] == base
    assert got.loc["down", "trough_date"] == dates[1]
    assert got.loc["down", "recovery_date"] == dates[2]  # 0.81 * 1.5 = 1.215 >= 1
    assert math.isnan(got.loc["none", "max_drawdown"])
    assert got.loc["flat", "max_drawdown"] == 0.0
    assert got.loc[["none", "flat"], ["peak_date", "trough_date"]].isna().all().all()
    without_base = drawdowns_many(frame)
    assert pd.isna(without_base.loc["down", "peak_date"])
    assert without_base.loc["down", "trough_date"] == dates[1]
    assert list(got.columns) == ["max_drawdown", "peak_date", "trough_date", "recovery_date"]


# --- every metric by hand ----------------------------------------------------------------


def _hand_metrics(r, m, rf, ddof):
    """The risk table of docs/methodology.md in plain Python, independent of the implementation."""
    n = len(r)
    ann = math.prod(1 + x for x in r) ** (P / n) - 1
    ann_m = math.prod(1 + x for x in m) ** (P / n) - 1
    mr, mm = sum(r) / n, sum(m) / n
    var_r = sum((x - mr) ** 2 for x in r) / (n - ddof)
    var_m = sum((y - mm) ** 2 for y in m) / (n - ddof)
    cov = sum((x - mr) * (y - mm) for x, y in zip(r, m, strict=True)) / (n - ddof)
    a = [x - y for x, y in zip(r, m, strict=True)]
    ma = sum(a) / n
    te = math.sqrt(sum((x - ma) ** 2 for x in a) / (n - ddof)) * math.sqrt(P)
    rf_d = (1 + rf) ** (1 / P) - 1
    dd = math.sqrt(sum(min(x - rf_d, 0) ** 2 for x in r) / n) * math.sqrt(P)
    vol = math.sqrt(var_r) * math.sqrt(P)
    level, peak, mdd = 1.0, 1.0, 0.0
    for x in r:
        level *= 1 + x
        peak = max(peak, level)
        mdd = max(mdd, 1 - level / peak)
    s = sorted(r)
    h = (n - 1) * 0.05
    k = int(h)
    q = s[k] + (h - k) * (s[min(k + 1, n - 1)] - s[k])
    tail = [x for x in r if x <= q]
    beta = cov / var_m
    return {
        "annualized_return": ann,
        "volatility": vol,
        "downside_deviation": dd,
        "sharpe_ratio": (ann - rf) / vol,
        "sortino_ratio": (ann - rf) / dd,
        "max_drawdown": mdd,
        "calmar_ratio": ann / mdd,
        "beta": beta,
        "alpha": ann - (rf + beta * (ann_m - rf)),
        "tracking_error": te,
        "information_ratio": (ann - ann_m) / te,
        "correlation": cov / math.sqrt(var_r * var_m),
        "var_95": -q,
        "cvar_95": -sum(tail) / len(tail),
        "annualized_benchmark_return": ann_m,
    }


@pytest.mark.parametrize("ddof", [0, 1])
def test_every_metric_by_hand(ddof):
    r = [0.01, -0.02, 0.015, 0.03, -0.01, 0.005, -0.004, 0.012]
    m = [0.008, -0.015, 0.01, 0.02, -0.012, 0.004, 0.001, 0.009]
    dates = pd.bdate_range("2024-03-01", periods=len(r) + 1)
    # A null day (with a wild benchmark return) in the middle must be left out entirely.
    returns = pd.Series([*r[:4], np.nan, *r[4:]], index=dates)
    bench = pd.Series([*m[:4], 0.5, *m[4:]], index=dates)
    got = risk_metrics(returns, bench, risk_free_rate=0.02, ddof=ddof)
    want = _hand_metrics(r, m, 0.02, ddof)
    assert list(got) == list(RISK_METRICS)
    for key in RISK_METRICS:
        assert got[key] == pytest.approx(want[key], rel=1e-10, abs=1e-14), key


def test_var_and_cvar_interpolate_between_order_statistics():
    # n = 21: h = 20 * 0.05 = 1 (an order statistic); n = 11: h = 0.5 (half-way).
    r21 = pd.Series([-0.03, -0.02, *np.linspace(0.0, 0.02, 19)])
    assert risk_metrics(r21)["var_95"] == pytest.approx(0.02, rel=1e-12)
    assert risk_metrics(r21)["cvar_95"] == pytest.approx(0.025, rel=1e-12)
    r11 = pd.Series([-0.04, -0.02, *np.linspace(0.0, 0.02, 9)])
    assert risk_metrics(r11)["var_95"] == pytest.approx(0.03, rel=1e-12)
    assert risk_metrics(r11)["cvar_95"] == pytest.approx(0.04, rel=1e-12)


# --- empyrical-reloaded cross-checks -----------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_empyrical_max_drawdown(seed):
    # Same definition: index from the returns, NaN linking as 0, the base as a possible
    # peak; empyrical reports the drawdown as a negative fraction.
    frame, _ = _random_frame(seed)
    ours = risk_metrics_many(frame)["max_drawdown"]
    for col in frame:
        theirs = empyrical.max_drawdown(frame[col].to_numpy())
        assert ours[col] == pytest.approx(-theirs, rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_empyrical_beta(seed):
    # Same definition: cov / var on the days where the entity has a return (empyrical masks
    # the benchmark on the entity's NaN days); ddof cancels in the ratio. empyrical's alpha
    # (arithmetic mean of daily excess returns, compounded) is a different definition.
    frame, bench = _random_frame(seed)
    for ddof in (0, 1):
        ours = risk_metrics_many(frame, bench, ddof=ddof)["beta"]
        for col in frame:
            _, theirs = empyrical.alpha_beta(frame[col], bench)
            assert ours[col] == pytest.approx(theirs, rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_empyrical_annual_volatility_ddof1(seed):
    # Same definition with ddof = 1 (empyrical's sample std) over the non-NaN days.
    frame, _ = _random_frame(seed)
    ours = risk_metrics_many(frame, ddof=1)["volatility"]
    for col in frame:
        assert ours[col] == pytest.approx(empyrical.annual_volatility(frame[col].to_numpy()))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_empyrical_downside_risk(seed):
    # Same definition with required_return = rf_d: root mean square of min(r - rf_d, 0)
    # over all non-NaN days, times sqrt(252).
    frame, _ = _random_frame(seed)
    rf = 0.03
    rf_d = (1 + rf) ** (1 / P) - 1
    ours = risk_metrics_many(frame, risk_free_rate=rf)["downside_deviation"]
    for col in frame:
        theirs = empyrical.downside_risk(frame[col].to_numpy(), required_return=rf_d)
        assert ours[col] == pytest.approx(theirs, rel=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_empyrical_value_at_risk_and_cvar_without_ties(seed):
    # VaR: same definition (np.percentile, linear) once NaN days are dropped (empyrical's
    # value_at_risk does not skip NaN); it reports the quantile, we its negative.
    # CVaR: empyrical averages the floor((n-1) * 0.05) + 1 smallest returns; we average the
    # returns <= the interpolated quantile. Without ties these are the same returns.
    frame, _ = _random_frame(seed)
    ours = risk_metrics_many(frame)
    for col in frame:
        clean = frame[col].dropna().to_numpy()
        assert ours.loc[col, "var_95"] == pytest.approx(-empyrical.value_at_risk(clean))
        theirs = empyrical.conditional_value_at_risk(frame[col].to_numpy())
        assert ours.loc[col, "cvar_95"] == pytest.approx(-theirs, rel=1e-12)


def test_cvar_differs_from_empyrical_on_ties_at_the_quantile():
    # n = 21, h = 1: the quantile is the 2nd smallest return, -2 %, which occurs twice. We
    # average every return <= -2 % (-3, -2, -2); empyrical the 2 smallest only (-3, -2).
    r = np.array([-0.03, -0.02, -0.02, *np.linspace(0.0, 0.02, 18)])
    assert risk_metrics(pd.Series(r))["cvar_95"] == pytest.approx(0.07 / 3, rel=1e-12)
    assert empyrical.conditional_value_at_risk(r) == pytest.approx(-0.025, rel=1e-12)


# --- NaN policy and degenerate input -----------------------------------------------------


def _all_nan(figures) -> bool:
    return all(math.isnan(figures[k]) for k in RISK_METRICS)


def test_fewer_than_two_returns_and_all_nan_give_nan():
    bench = pd.Series([0.01, 0.02, 0.03])
    assert _all_nan(risk_metrics(pd.Series([np.nan, 0.01, np.nan]), bench))
    assert _all_nan(risk_metrics(pd.Series([np.nan, np.nan, np.nan]), bench))
    assert _all_nan(risk_metrics(pd.Series([], dtype=float)))


def test_empty_frames():
    no_rows = risk_metrics_many(pd.DataFrame({"a": pd.Series([], dtype=float)}))
    assert no_rows.shape == (1, len(RISK_METRICS)) and no_rows.isna().all().all()
    no_cols = risk_metrics_many(pd.DataFrame(index=DATES), pd.Series(0.01, index=DATES))
    assert no_cols.shape == (0, len(RISK_METRICS))
    assert list(no_cols.columns) == list(RISK_METRICS)
    assert (
        drawdowns_many(pd.DataFrame({"a": pd.Series([], dtype=float)}))["a":"a"]
        .isna()
        .all(axis=None)
    )


def test_zero_variance_gives_nan_ratios_not_inf():
    flat = pd.Series([0.001] * 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = risk_metrics(flat, pd.Series([0.002] * 10))
    assert got["volatility"] < 1e-12
    assert got["downside_deviation"] == 0.0 and got["max_drawdown"] == 0.0
    for key in ("sharpe_ratio", "sortino_ratio", "calmar_ratio", "beta", "alpha", "correlation"):
        assert math.isnan(got[key]), key
    assert math.isnan(got["information_ratio"])  # r - m is constant too
    assert got["var_95"] == pytest.approx(-0.001) and got["cvar_95"] == pytest.approx(-0.001)
    assert not any(math.isinf(v) for v in got.values())


def test_total_loss_is_finite():
    got = risk_metrics(pd.Series([0.01, -1.0, 0.0]))
    assert got["annualized_return"] == -1.0
    assert got["max_drawdown"] == 1.0
    assert got["calmar_ratio"] == -1.0


def test_benchmark_missing_on_an_entity_day_nulls_benchmark_metrics_only():
    frame, bench = _random_frame(4, t=60, n=3)
    frame.iloc[10, 1] = 0.01  # entity e1 has a return on day 10
    frame.iloc[10, 2] = np.nan  # entity e2 has none
    gappy = bench.drop(bench.index[10])  # the benchmark has no return on day 10
    got = risk_metrics_many(frame, gappy)
    full = risk_metrics_many(frame, bench)
    bench_keys = [
        "beta", "alpha", "tracking_error", "information_ratio", "correlation",
        "annualized_benchmark_return",
    ]  # fmt: skip
    assert got.loc["e1", bench_keys].isna().all()
    other = [k for k in RISK_METRICS if k not in bench_keys]
    pd.testing.assert_series_equal(got.loc["e1", other], full.loc["e1", other])
    assert got.loc["e2"].notna().all()
    pd.testing.assert_series_equal(got.loc["e2"], full.loc["e2"])  # e2 does not need it
    assert risk_metrics_many(frame)[bench_keys].isna().all(axis=None)


def test_benchmark_frame_per_entity_matches_series_per_entity():
    frame, bench = _random_frame(5, t=80, n=3)
    per_entity = pd.DataFrame({c: bench * (1 + i) for i, c in enumerate(frame)})
    got = risk_metrics_many(frame, per_entity.iloc[::-1])  # aligned by label, not position
    for i, col in enumerate(frame):
        want = risk_metrics(frame[col], bench * (1 + i))
        for key in RISK_METRICS:
            assert got.loc[col, key] == pytest.approx(want[key], rel=1e-12, nan_ok=True)


def test_invalid_arguments_raise_value_error():
    r = np.zeros((5, 2))
    with pytest.raises(ValueError):
        risk_metrics_array(r, periods_per_year=0)
    with pytest.raises(ValueError):
        risk_metrics_array(r, ddof=-1)
    with pytest.raises(ValueError):
        risk_metrics_array(r, np.zeros(4))
    with pytest.raises(ValueError):
        risk_metrics_array(np.zeros(5))
    with pytest.raises(ValueError):
        risk_metrics_array(r, risk_free_rate=-1.5)


def test_array_kernel_shapes():
    r = np.full((4, 3), 0.01)
    r[:, 1] = [0.01, -0.02, 0.03, np.nan]
    out = risk_metrics_array(r, np.array([0.0, 0.01, -0.01, 0.02]))
    assert set(out) == set(RISK_METRICS)
    assert all(v.shape == (3,) for v in out.values())


# --- properties --------------------------------------------------------------------------


@st.composite
def _frames(draw):
    t = draw(st.integers(0, 30))
    n = draw(st.integers(1, 4))
    # Basis-point returns keep the data away from denominators near the 1e-12 cut-off,
    # where an ulp decides between NaN and a number.
    bp = draw(hnp.arrays(np.int64, (t, n), elements=st.integers(-800, 800)))
    null = draw(hnp.arrays(np.bool_, (t, n)))
    bench = draw(hnp.arrays(np.int64, (t,), elements=st.integers(-800, 800)))
    r = np.where(null, np.nan, bp / 10_000)
    dates = pd.bdate_range("2024-01-01", periods=t)
    frame = pd.DataFrame(r, index=dates, columns=[f"c{i}" for i in range(n)])
    return frame, pd.Series(bench / 10_000, index=dates)


@settings(max_examples=60, deadline=None)
@given(_frames(), st.sampled_from([0, 1]))
def test_many_entities_match_the_hand_formulas_per_column(data, ddof):
    """Each column of one many-entity call against the spec's table in plain Python on that
    column's non-null days (a figure ours leaves NaN is checked by the NaN tests above)."""
    frame, bench = data
    many = risk_metrics_many(frame, bench, risk_free_rate=0.01, ddof=ddof)
    for col in frame:
        day = frame[col].notna().to_numpy()
        r = [np.float64(v) for v in frame[col].to_numpy()[day]]  # 0/0 -> nan, not an error
        m = [np.float64(v) for v in bench.to_numpy()[day]]
        if len(r) < 2:
            assert many.loc[col, list(RISK_METRICS)].isna().all()
            continue
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = _hand_metrics(r, m, 0.01, ddof)
        assert many.loc[col, "annualized_return"] == pytest.approx(want["annualized_return"])
        for key in RISK_METRICS:
            got = many.loc[col, key]
            if not math.isnan(got):
                # 1e-7 relative, 1e-9 absolute: a ratio over a near-zero spread (a tracking
                # error of 1e-4 returns, or of rounding noise only) loses digits differently
                # in the two orders of summation
                assert got == pytest.approx(float(want[key]), rel=1e-7, abs=1e-9), (col, key)


@settings(max_examples=60, deadline=None)
@given(_frames(), st.randoms(use_true_random=False))
def test_permuting_columns_permutes_results(data, rnd):
    frame, bench = data
    cols = list(frame.columns)
    rnd.shuffle(cols)
    pd.testing.assert_frame_equal(
        risk_metrics_many(frame[cols], bench), risk_metrics_many(frame, bench).loc[cols]
    )


@settings(max_examples=60, deadline=None)
@given(_frames(), st.lists(st.tuples(st.integers(0, 30), st.floats(-0.05, 0.05)), max_size=5))
def test_adding_nan_days_changes_nothing(data, inserts):
    # Null days (any benchmark return on them) inserted anywhere, time order kept.
    frame, bench = data
    t = len(frame)
    r = frame.to_numpy()
    labels = list(range(t))
    rows, bench_values = list(r), list(bench)
    for j, (pos, bench_value) in enumerate(inserts):
        at = min(pos, len(rows))
        rows.insert(at, np.full(r.shape[1], np.nan))
        bench_values.insert(at, bench_value)
        labels.insert(at, 1000 + j)
    padded = pd.DataFrame(
        np.array(rows).reshape(-1, r.shape[1]), index=labels, columns=frame.columns
    )
    got = risk_metrics_many(padded, pd.Series(bench_values, index=labels, dtype=float))
    plain = pd.DataFrame(r, index=range(t), columns=frame.columns)
    want = risk_metrics_many(plain, pd.Series(bench.to_numpy(), index=range(t)))
    # The inserted zeros change the order of the sums, so figures move by rounding; a
    # ratio whose numerator is itself a rounding residue (r a permutation of m gives
    # ann - ann_bench ~ 1e-16) moves by up to ~1e-12 in absolute terms.
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("seed", [1, 2])
def test_kernel_drawdown_matches_drawdowns_many(seed):
    # Two code paths (in-place kernel, positions for the date table): one figure.
    frame, _ = _random_frame(seed)
    np.testing.assert_allclose(
        risk_metrics_many(frame)["max_drawdown"],
        drawdowns_many(frame)["max_drawdown"],
        rtol=1e-14,
    )


# --- paths of the block kernel -----------------------------------------------------------


def test_several_blocks_agree_with_references():
    # 300 columns span three blocks of the kernel; figures of columns at the block edges
    # against numpy and empyrical.
    frame, bench = _random_frame(7, t=300, n=300)
    got = risk_metrics_many(frame, bench)
    for col in frame.columns[[0, 127, 128, 255, 299]]:
        clean = frame[col].dropna().to_numpy()
        assert got.loc[col, "var_95"] == pytest.approx(-np.quantile(clean, 0.05), rel=1e-12)
        assert got.loc[col, "volatility"] == pytest.approx(np.std(clean) * math.sqrt(P), rel=1e-12)
        theirs = -empyrical.max_drawdown(frame[col].to_numpy())
        assert got.loc[col, "max_drawdown"] == pytest.approx(theirs, rel=1e-12)
        assert got.loc[col, "beta"] == pytest.approx(empyrical.alpha_beta(frame[col], bench)[1])


def test_var_of_a_right_skewed_sample():
    # 990 small returns and 10 gains of 100 %: no return lies 1.2 standard deviations below
    # the mean, so the quantile comes from the whole sample.
    rng = np.random.default_rng(3)
    r = np.concatenate([rng.uniform(0.0, 0.001, 990), np.full(10, 1.0)])
    rng.shuffle(r)
    got = risk_metrics(pd.Series(r))
    q = np.quantile(r, 0.05)
    assert got["var_95"] == pytest.approx(-q, rel=1e-12)
    assert got["cvar_95"] == pytest.approx(-r[r <= q].mean(), rel=1e-12)


def test_max_drawdown_within_a_few_days_of_a_long_rise():
    r = np.full(400, 0.002)
    r[200:203] = [-0.05, -0.03, 0.01]  # the peak is day 199, the trough day 201
    got = risk_metrics(pd.Series(r))["max_drawdown"]
    assert got == pytest.approx(1 - 0.95 * 0.97, rel=1e-12)
    assert got == pytest.approx(-empyrical.max_drawdown(r), rel=1e-12)


def test_row_and_column_major_input_and_benchmark_forms_agree():
    frame, bench = _random_frame(8, t=200, n=5)
    r, m = frame.to_numpy(), bench.to_numpy()
    by_rows = risk_metrics_array(np.ascontiguousarray(r), m)
    by_cols = risk_metrics_array(np.asfortranarray(r), m)
    per_column = risk_metrics_array(r, np.repeat(m[:, None], r.shape[1], axis=1))
    for key in RISK_METRICS:
        np.testing.assert_array_equal(by_rows[key], by_cols[key])
        np.testing.assert_allclose(by_rows[key], per_column[key], rtol=1e-12, atol=1e-15)


def test_benchmark_return_below_minus_one():
    frame, bench = _random_frame(9, t=60, n=2)
    frame.iloc[5] = 0.01  # every entity has a return on the benchmark's day of -150 %
    bench.iloc[5] = -1.5
    got = risk_metrics_many(frame, bench)
    assert got["annualized_benchmark_return"].isna().all()  # a negative product: no root
    for col in frame:
        ok = frame[col].notna().to_numpy()
        x, y = frame[col].to_numpy()[ok], bench.to_numpy()[ok]
        beta = np.mean((x - x.mean()) * (y - y.mean())) / np.var(y)
        assert got.loc[col, "beta"] == pytest.approx(beta, rel=1e-12)
