"""Modified Dietz, scalar and many-entity forms, against figures worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perf_pipeline.calc.dietz import modified_dietz, modified_dietz_many
from perf_pipeline.calc.returns import daily_returns_array, linked_return

B, D = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-31")  # 30 days apart


def flows(**by_day: float) -> pd.Series:
    """Net flows by day of January 2024: flows(d16=1000.0)."""
    return pd.Series(
        list(by_day.values()), index=[pd.Timestamp(2024, 1, int(k[1:])) for k in by_day]
    )


def test_design_document_example_is_zero():
    # 10,000 -> 11,000 with 1,000 in half-way (day 16 of a 30-day period: w = 15 / 30)
    assert modified_dietz(10_000, 11_000, flows(d16=1000.0), B, D) == 0.0


def test_hand_computed_returns():
    # (11,500 - 10,000 - 1,000) / (10,000 + 0.5 * 1,000)
    assert modified_dietz(10_000, 11_500, flows(d16=1000.0), B, D) == pytest.approx(
        500 / 10_500, abs=1e-15
    )
    # 2,000 out on 11 Jan: w = 20 / 30; (9,000 - 10,000 + 2,000) / (10,000 - 2,000 * 2 / 3)
    assert modified_dietz(10_000, 9_000, flows(d11=-2000.0), B, D) == pytest.approx(
        1000 / (10_000 - 4000 / 3), abs=1e-15
    )
    # no flows: end / begin - 1
    assert modified_dietz(100, 110, None, B, D) == pytest.approx(0.10, abs=1e-15)
    assert modified_dietz(100, 110, pd.Series(dtype=float), B, D) == pytest.approx(0.10)


def test_only_flows_in_the_half_open_period_count():
    # a flow on b and one after D are outside (b, D]; one on D counts with weight 0
    outside = pd.concat([flows(d1=500.0), pd.Series([700.0], index=[pd.Timestamp("2024-02-01")])])
    assert modified_dietz(100, 110, outside, B, D) == pytest.approx(0.10, abs=1e-15)
    assert modified_dietz(100, 150, flows(d31=40.0), B, D) == pytest.approx(0.10, abs=1e-15)


def test_null_cases():
    assert math.isnan(modified_dietz(100, 110, None, D, B))  # start after end
    assert math.isnan(modified_dietz(100, 110, None, D, D))  # empty period
    assert math.isnan(modified_dietz(0, 0, None, B, D))  # denominator 0
    assert math.isnan(modified_dietz(0, 40, flows(d31=40.0), B, D))  # weight 0: denominator 0
    assert math.isnan(modified_dietz(math.nan, 110, None, B, D))
    assert math.isnan(modified_dietz(100, 110, flows(d5=math.nan), B, D))
    assert math.isnan(modified_dietz(100, 110, None, pd.NaT, D))


def test_many_entities_by_hand():
    begin = pd.Series([10_000.0, 10_000.0, 0.0, 100.0], index=["a", "b", "c", "d"])
    end = pd.Series([11_500.0, 9_000.0, 0.0], index=["a", "b", "c"])  # no end value for d
    long = pd.DataFrame(
        {
            "entity": ["a", "b", "zz", "a"],
            "date": pd.to_datetime(["2024-01-16", "2024-01-11", "2024-01-16", "2024-02-05"]),
            "amount": [1000.0, -2000.0, 5.0, 99.0],  # zz is unknown, a's second is after D
        }
    )
    out = modified_dietz_many(begin, end, long, B, D)
    assert list(out.index) == ["a", "b", "c", "d"]
    assert out["a"] == pytest.approx(500 / 10_500, abs=1e-15)
    assert out["b"] == pytest.approx(1000 / (10_000 - 4000 / 3), abs=1e-15)
    assert math.isnan(out["c"]) and math.isnan(out["d"])

    # per-entity periods: a over (1 Jan, 16 Jan] -> its 16 Jan flow has weight 0
    starts = pd.Series([B, B, B, B], index=begin.index)
    ends = pd.Series([pd.Timestamp("2024-01-16"), D, D, D], index=begin.index)
    per_entity = modified_dietz_many(begin, end, long, starts, ends)
    assert per_entity["a"] == pytest.approx((11_500 - 10_000 - 1000) / 10_000, abs=1e-15)
    assert per_entity["b"] == out["b"]


def test_many_entities_empty_and_duplicates():
    empty = pd.DataFrame({"entity": [], "date": pd.to_datetime([]), "amount": []})
    out = modified_dietz_many(
        pd.Series([100.0], index=["a"]), pd.Series([110.0], index=["a"]), empty, B, D
    )
    assert out["a"] == pytest.approx(0.10)
    with pytest.raises(ValueError):
        modified_dietz_many(
            pd.Series([1.0, 2.0], index=["a", "a"]), pd.Series(dtype=float), empty, B, D
        )


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    begin=st.floats(min_value=1.0, max_value=1e7),
    growth=st.lists(st.floats(min_value=0.8, max_value=1.25), min_size=1, max_size=40),
)
def test_without_flows_modified_dietz_equals_twr(begin, growth):
    values = begin * np.cumprod(growth)
    zeros = np.zeros(len(values))
    twr = linked_return(daily_returns_array(values, zeros, zeros, previous_value=begin))
    end_date = B + pd.Timedelta(days=len(values))
    dietz = modified_dietz(begin, values[-1], None, B, end_date)
    assert 1 + dietz == pytest.approx(1 + twr, rel=1e-12)


entity_flows = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=4),  # entity
        st.integers(min_value=-5, max_value=45),  # day offset from 1 Jan (some outside)
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(
    rows=entity_flows,
    begins=st.lists(st.floats(min_value=0, max_value=1e7), min_size=5, max_size=5),
    ends=st.lists(st.floats(min_value=0, max_value=1e7), min_size=5, max_size=5),
    spans=st.lists(st.integers(min_value=0, max_value=40), min_size=5, max_size=5),
)
def test_many_entity_form_equals_the_scalar_form(rows, begins, ends, spans):
    entities = [f"e{i}" for i in range(5)]
    long = pd.DataFrame(
        {
            "entity": [entities[e] for e, _, _ in rows],
            "date": [B + pd.Timedelta(days=offset) for _, offset, _ in rows],
            "amount": [amount for _, _, amount in rows],
        }
    )
    end_dates = pd.Series([B + pd.Timedelta(days=s) for s in spans], index=entities)
    many = modified_dietz_many(
        pd.Series(begins, index=entities), pd.Series(ends, index=entities), long, B, end_dates
    )
    for i, entity in enumerate(entities):
        mine = long[long["entity"] == entity]
        scalar = modified_dietz(
            begins[i], ends[i], pd.Series(mine["amount"].to_numpy(), index=mine["date"]),
            B, end_dates[entity],
        )  # fmt: skip
        np.testing.assert_allclose(many[entity], scalar, rtol=1e-12, atol=1e-12, equal_nan=True)
