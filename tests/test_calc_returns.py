"""Daily returns, performance index and linking, against figures worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perf_pipeline.calc.returns import (
    TIMINGS,
    daily_returns,
    daily_returns_array,
    linked_return,
    performance_index,
)

DAYS = pd.bdate_range("2024-03-04", periods=5)  # Monday to Friday

# A small portfolio: 1,000 in on day 1, 500 in on day 3, 200 out on day 4, 100 in and 100 out
# on day 5.
VALUES = np.array([1010.0, 1030.0, 1560.0, 1400.0, 1420.0])
IN = np.array([1000.0, 0.0, 500.0, 0.0, 100.0])
OUT = np.array([0.0, 0.0, 0.0, 200.0, 100.0])

# r_t by hand for each timing (value before day 1 = 0)
EXPECTED = {
    # (MV_t + OUT_t) / (MV_{t-1} + IN_t) - 1
    "bod_in_eod_out": [1010 / 1000, 1030 / 1010, 1560 / 1530, 1600 / 1560, 1520 / 1500],
    # MV_t / (MV_{t-1} + IN_t - OUT_t) - 1
    "start": [1010 / 1000, 1030 / 1010, 1560 / 1530, 1400 / 1360, 1420 / 1400],
    # (MV_t - IN_t + OUT_t) / MV_{t-1} - 1; day 1 has MV_{t-1} = 0: not invested
    "end": [math.nan, 1030 / 1010, 1060 / 1030, 1600 / 1560, 1420 / 1400],
}
EXPECTED_TWR = {
    "bod_in_eod_out": 1030 / 1000 * 1600 / 1530 * 1520 / 1500 - 1,
    "start": 1030 / 1000 * 1560 / 1530 * 1400 / 1360 * 1420 / 1400 - 1,
    "end": 1030 / 1010 * 1060 / 1030 * 1600 / 1560 * 1420 / 1400 - 1,
}


@pytest.mark.parametrize("timing", TIMINGS)
def test_hand_built_portfolio_each_timing(timing):
    expected = np.array(EXPECTED[timing]) - 1.0
    out = daily_returns_array(VALUES, IN, OUT, timing)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-15, equal_nan=True)

    series = daily_returns(
        pd.Series(VALUES, index=DAYS),
        pd.Series(IN[IN > 0], index=DAYS[IN > 0]),
        pd.Series(OUT[OUT > 0], index=DAYS[OUT > 0]),
        timing=timing,
    )
    assert series.index.equals(DAYS) and series.name == "daily_return"
    np.testing.assert_allclose(series.to_numpy(), expected, rtol=0, atol=1e-15, equal_nan=True)
    assert linked_return(series) == pytest.approx(EXPECTED_TWR[timing], abs=1e-14)
    index = performance_index(series)
    assert index.iloc[-1] - 1 == pytest.approx(EXPECTED_TWR[timing], abs=1e-14)


def test_design_document_daily_valuation_example():
    # 10,000 in on day 1, 10,200 at day 2's close, 1,000 in after it = at the start of day 3
    # (default timing), 11,330 at day 3's close.
    days = DAYS[:3]
    values = pd.Series([10_000.0, 10_200.0, 11_330.0], index=days)
    inflows = pd.Series([10_000.0, 1_000.0], index=[days[0], days[2]])
    returns = daily_returns(values, inflows)
    assert returns.iloc[1] == pytest.approx(0.02, abs=1e-15)
    assert returns.iloc[2] == pytest.approx(11_330 / 11_200 - 1, abs=1e-15)  # 1.1607%
    assert round(linked_return(returns) * 100, 4) == 3.1839


def test_value_before_the_first_date_is_zero():
    values = pd.Series([100.0, 110.0], index=DAYS[:2])
    without_inflow = daily_returns(values)
    assert math.isnan(without_inflow.iloc[0])  # 0 before, nothing in: not invested
    assert without_inflow.iloc[1] == pytest.approx(0.10, abs=1e-15)
    with_inflow = daily_returns(values, pd.Series([100.0], index=DAYS[:1]))
    assert with_inflow.iloc[0] == 0.0
    assert daily_returns_array(np.array([110.0]), 0.0, 0.0, previous_value=100.0)[0] == (
        pytest.approx(0.10, abs=1e-15)
    )


def test_not_invested_days_are_null_and_link_as_zero():
    values = np.array([0.0, 0.0, 100.0, 110.0, 0.0, 0.0])
    inflows = np.array([0.0, 0.0, 100.0, 0.0, 0.0, 0.0])
    outflows = np.array([0.0, 0.0, 0.0, 0.0, 110.0, 0.0])
    out = daily_returns_array(values, inflows, outflows)
    assert np.isnan(out[[0, 1, 5]]).all()
    np.testing.assert_allclose(out[[2, 3, 4]], [0.0, 0.10, 0.0], atol=1e-15)
    assert linked_return(out) == pytest.approx(0.10, abs=1e-15)
    np.testing.assert_allclose(performance_index(out), [1, 1, 1, 1.1, 1.1, 1.1], atol=1e-15)


def test_tolerance_is_on_the_absolute_denominator():
    tiny = daily_returns_array(np.array([5e-10, 1.0]), np.array([5e-10, 0.0]), np.zeros(2))
    assert np.isnan(tiny).all()  # denominators 5e-10 and 5e-10: not invested
    small = daily_returns_array(np.array([4e-9]), np.array([2e-9]), np.zeros(1))
    assert small[0] == pytest.approx(1.0)
    negative = daily_returns_array(np.array([-90.0]), 0.0, 0.0, "end", previous_value=-100.0)
    assert negative[0] == pytest.approx(-0.10)


def test_nan_and_empty_inputs():
    out = daily_returns_array(np.array([100.0, np.nan, 121.0]), np.array([100.0, 0, 0]), 0.0)
    assert out[0] == 0.0 and np.isnan(out[1:]).all()  # NaN enters day 2 and day 3
    assert daily_returns_array(np.array([]), np.array([]), np.array([])).shape == (0,)
    assert daily_returns(pd.Series([], dtype=float, index=pd.DatetimeIndex([]))).empty
    assert linked_return([]) == 0.0
    assert linked_return([np.nan, np.nan]) == 0.0
    with pytest.raises(ValueError):
        daily_returns_array(VALUES, IN, OUT, "midday")
    with pytest.raises(ValueError):
        linked_return(np.zeros((2, 2)))


def test_flows_are_aligned_summed_and_rolled_to_the_next_date():
    days = pd.bdate_range("2024-03-07", periods=3)  # Thu, Fri, Mon
    values = pd.Series([100.0, 100.0, 170.0], index=days)
    saturday, sunday = pd.Timestamp("2024-03-09"), pd.Timestamp("2024-03-10")
    inflows = pd.Series([100.0, 30.0, 20.0, 999.0], index=[days[0], saturday, sunday, "2024-03-12"])
    out = daily_returns(values, inflows)
    # Monday: (170 + 0) / (100 + 50) - 1; the Tuesday flow is after the last date: ignored
    np.testing.assert_allclose(out.to_numpy(), [0.0, 0.0, 170 / 150 - 1], atol=1e-15)


def test_two_dimensional_kernel_and_index_base():
    values = np.column_stack([VALUES, VALUES * 2])
    out = daily_returns_array(
        values, np.column_stack([IN, IN * 2]), np.column_stack([OUT, OUT * 2])
    )
    expected = np.array(EXPECTED["bod_in_eod_out"]) - 1
    np.testing.assert_allclose(out, np.column_stack([expected, expected]), atol=1e-15)
    continued = daily_returns_array(
        np.array([[110.0, 50.0]]), np.zeros((1, 2)), np.zeros((1, 2)), previous_value=[100.0, 0.0]
    )
    assert continued[0, 0] == pytest.approx(0.1) and np.isnan(continued[0, 1])

    returns = np.array([[0.10, np.nan], [0.10, 0.50]])
    index = performance_index(returns, base=np.array([2.0, 3.0]))
    np.testing.assert_allclose(index, [[2.2, 3.0], [2.42, 4.5]], atol=1e-14)
    frame = pd.DataFrame(returns, index=DAYS[:2], columns=["a", "b"])
    frame_index = performance_index(frame)
    assert isinstance(frame_index, pd.DataFrame) and list(frame_index.columns) == ["a", "b"]
    np.testing.assert_allclose(frame_index.to_numpy(), [[1.1, 1.0], [1.21, 1.5]], atol=1e-14)


# --- properties -------------------------------------------------------------------------------

small_returns = st.lists(st.floats(min_value=-0.5, max_value=0.5, allow_nan=False), max_size=30)


@settings(max_examples=100, deadline=None)
@given(
    begin=st.floats(min_value=1.0, max_value=1e7),
    growth=st.lists(st.floats(min_value=0.8, max_value=1.25), min_size=1, max_size=30),
    timing=st.sampled_from(TIMINGS),
)
def test_without_flows_linking_gives_end_over_begin(begin, growth, timing):
    # daily moves within -20% / +25%, so 1 + r_t keeps its precision
    mv = begin * np.cumprod(growth)
    zeros = np.zeros(len(mv))
    returns = daily_returns_array(mv, zeros, zeros, timing, previous_value=begin)
    assert 1 + linked_return(returns) == pytest.approx(mv[-1] / begin, rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(first=small_returns, second=small_returns)
def test_linking_is_associative(first, second):
    combined = linked_return(first + second)
    split = (1 + linked_return(first)) * (1 + linked_return(second)) - 1
    assert combined == pytest.approx(split, rel=1e-12, abs=1e-12)


amounts = st.integers(min_value=0, max_value=10**6)


def _denominator(previous, inflows, outflows, timing):
    """The daily return's denominator under each timing (docs/methodology.md)."""
    return {
        "bod_in_eod_out": previous + inflows,
        "start": previous + inflows - outflows,
        "end": previous,
    }[timing]


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(st.tuples(amounts, amounts, amounts), min_size=1, max_size=20),
    scale=st.floats(min_value=1e-2, max_value=1e4, allow_nan=False),
    timing=st.sampled_from(TIMINGS),
)
def test_scaling_values_and_flows_leaves_returns_unchanged(rows, scale, timing):
    # integer amounts: every denominator is an exact integer, 0 or at least 1 (times scale)
    values, inflows, outflows = (
        np.array(column, dtype=float) for column in zip(*rows, strict=True)
    )
    base = daily_returns_array(values, inflows, outflows, timing)
    scaled = daily_returns_array(values * scale, inflows * scale, outflows * scale, timing)
    # Exact in real arithmetic; in floats, scaling rounds each term (relative 1e-16) and a
    # denominator like 155,209 + 1 - 155,194 = 16 magnifies that by (sum of its terms) / 16.
    previous = np.r_[0.0, values[:-1]]
    terms = previous + inflows + outflows + values
    denominator = np.maximum(np.abs(_denominator(previous, inflows, outflows, timing)), 1.0)
    tolerance = 1e-14 * terms / denominator * (np.abs(base) + 1)
    finite = ~np.isnan(base)
    assert np.array_equal(np.isnan(scaled), ~finite)
    assert (np.abs(scaled - base)[finite] <= np.maximum(tolerance, 1e-12)[finite]).all()


@settings(max_examples=50, deadline=None)
@given(
    columns=st.lists(st.lists(amounts, min_size=3, max_size=3), min_size=1, max_size=5),
    timing=st.sampled_from(TIMINGS),
)
def test_two_dimensional_kernel_equals_column_by_column(columns, timing):
    values = np.array(columns, dtype=float).T  # 3 dates x N entities
    inflows = np.roll(values, 1, axis=1) / 3
    outflows = np.roll(values, 2, axis=1) / 7
    whole = daily_returns_array(values, inflows, outflows, timing)
    for j in range(values.shape[1]):
        one = daily_returns_array(values[:, j], inflows[:, j], outflows[:, j], timing)
        np.testing.assert_array_equal(whole[:, j], one)
