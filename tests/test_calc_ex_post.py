"""The three-year annualized ex-post standard deviation against figures computed apart:
the population formula written out with Python's statistics module, and empyrical's
annual_volatility (sample std, so compared with ddof=1)."""

from __future__ import annotations

import math
import statistics

import empyrical
import numpy as np
import pandas as pd
import pytest

from perf_pipeline.calc.ex_post import rolling_ex_post_std_array, three_year_ex_post_std


def monthly(n: int, seed: int = 3) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2018-01-31", periods=n, freq="ME")
    return pd.Series(rng.normal(0.006, 0.04, n), index=index, name="P1")


def test_blank_until_36_months_then_population_std_times_sqrt_12() -> None:
    r = monthly(40)
    sd = three_year_ex_post_std(r)
    assert sd.iloc[:35].isna().all()
    for t in range(35, 40):
        window = list(r.iloc[t - 35 : t + 1])
        expected = statistics.pstdev(window) * math.sqrt(12)
        assert sd.iloc[t] == pytest.approx(expected, rel=1e-12)


def test_sample_std_matches_empyrical_annual_volatility() -> None:
    r = monthly(48, seed=11)
    sd = three_year_ex_post_std(r, ddof=1)
    for t in (35, 41, 47):
        window = r.iloc[t - 35 : t + 1]
        expected = empyrical.annual_volatility(window, period="monthly")
        assert sd.iloc[t] == pytest.approx(expected, rel=1e-12)


def test_worked_example_by_hand() -> None:
    # 36 months alternating +1% and -1%: mean 0, population std exactly 1%, so 1% * sqrt(12)
    r = np.array([0.01, -0.01] * 18)
    assert rolling_ex_post_std_array(r)[-1] == pytest.approx(0.01 * math.sqrt(12), rel=1e-12)


def test_a_missing_month_blanks_every_window_that_holds_it() -> None:
    r = monthly(40)
    r.iloc[2] = np.nan
    sd = three_year_ex_post_std(r)
    assert sd.iloc[35:38].isna().all()  # windows ending 35, 36, 37 start at 0, 1, 2
    assert sd.iloc[38:].notna().all()


def test_columns_are_entities_computed_independently() -> None:
    a, b = monthly(37, seed=1), monthly(37, seed=2)
    frame = pd.DataFrame({"A": a, "B": b})
    sd = three_year_ex_post_std(frame)
    assert list(sd.columns) == ["A", "B"]
    assert sd["A"].iloc[-1] == pytest.approx(statistics.pstdev(a.iloc[1:]) * math.sqrt(12))
    assert sd["B"].iloc[-1] == pytest.approx(statistics.pstdev(b.iloc[1:]) * math.sqrt(12))


def test_short_input_is_all_blank_and_bad_arguments_raise() -> None:
    assert np.isnan(rolling_ex_post_std_array(np.full(10, 0.01))).all()
    with pytest.raises(ValueError, match="ddof"):
        rolling_ex_post_std_array(np.zeros(40), ddof=36)
    with pytest.raises(ValueError, match="window"):
        rolling_ex_post_std_array(np.zeros(40), window=0)
