"""Business-day calendar and reporting periods, checked against dates worked out by hand.

Weekdays used below (no holidays): 2024-06-28 Fri, 2024-05-31 Fri, 2024-03-29 Fri,
2024-02-29 Thu, 2023-12-29 Fri, 2023-12-31 Sun, 2024-01-01 Mon, 2023-06-30 Fri,
2023-07-03 Mon, 2023-05-31 Wed, 2023-02-28 Tue, 2024-08-30 Fri.
"""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perf_pipeline.calc.calendar import (
    business_days,
    month_end_business_days,
    next_business_day,
    previous_business_day,
    roll_to_business_day,
)
from perf_pipeline.calc.periods import PERIODS, annualize, calculation_dates, period_bounds

T = pd.Timestamp


# --- calendar -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "rolled", "previous", "following"),
    [
        ("2024-06-28", "2024-06-28", "2024-06-27", "2024-07-01"),  # Friday
        ("2024-06-29", "2024-07-01", "2024-06-28", "2024-07-01"),  # Saturday
        ("2024-06-30", "2024-07-01", "2024-06-28", "2024-07-01"),  # Sunday
        ("2024-07-01", "2024-07-01", "2024-06-28", "2024-07-02"),  # Monday
        ("2024-02-29", "2024-02-29", "2024-02-28", "2024-03-01"),  # Thursday, leap day
    ],
)
def test_calendar_scalars(day, rolled, previous, following):
    assert roll_to_business_day(T(day)) == T(rolled)
    assert previous_business_day(T(day)) == T(previous)
    assert next_business_day(T(day)) == T(following)


def test_calendar_keeps_the_kind_labels_and_nat():
    days = pd.to_datetime(["2024-06-29 00:00", None, "2024-07-02 15:30"])
    expected = pd.to_datetime(["2024-07-01", None, "2024-07-02"])

    series = pd.Series(days, index=["x", "y", "z"], name="trade_date")
    out = roll_to_business_day(series)
    assert isinstance(out, pd.Series)
    assert list(out.index) == ["x", "y", "z"] and out.name == "trade_date"
    pd.testing.assert_series_equal(out, pd.Series(expected, index=series.index, name="trade_date"))

    index_out = roll_to_business_day(pd.DatetimeIndex(days, name="d"))
    assert isinstance(index_out, pd.DatetimeIndex) and index_out.name == "d"
    assert index_out.equals(pd.DatetimeIndex(expected))

    array = np.array(["2024-06-29", "NaT", "2024-07-05"], dtype="datetime64[D]")
    array_out = next_business_day(array)
    assert isinstance(array_out, np.ndarray) and array_out.dtype == array.dtype
    assert array_out[0] == np.datetime64("2024-07-01") and np.isnat(array_out[1])
    assert array_out[2] == np.datetime64("2024-07-08")

    assert roll_to_business_day(pd.NaT) is pd.NaT


def test_business_days_inclusive_and_empty():
    days = business_days("2024-06-27", "2024-07-02")
    assert list(days) == [T("2024-06-27"), T("2024-06-28"), T("2024-07-01"), T("2024-07-02")]
    assert len(business_days("2024-06-29", "2024-06-30")) == 0
    assert len(business_days("2024-07-02", "2024-07-01")) == 0


def test_month_end_business_days():
    ends = month_end_business_days("2023-12-29", "2024-05-30")
    assert list(ends) == [T("2023-12-29"), T("2024-01-31"), T("2024-02-29"), T("2024-03-29"),
                          T("2024-04-30")]  # fmt: skip
    assert list(month_end_business_days("2023-12-30", "2024-01-31")) == [T("2024-01-31")]


# --- period base dates ----------------------------------------------------------------------

OLD = "2010-01-04"
# (as_of, inception, period, start_date or None when not reported, partial_period)
CASES = [
    # Friday month-end: month-end to month-end
    ("2024-06-28", OLD, "1M", "2024-05-31", False),
    ("2024-06-28", OLD, "3M", "2024-03-29", False),
    ("2024-06-28", OLD, "6M", "2023-12-29", False),
    ("2024-06-28", OLD, "1Y", "2023-06-30", False),
    ("2024-06-28", OLD, "3Y", "2021-06-30", False),  # 2021-06-30 is a Wednesday
    ("2024-06-28", OLD, "10Y", "2014-06-30", False),  # Monday
    ("2024-06-28", OLD, "MTD", "2024-05-31", False),
    ("2024-06-28", OLD, "QTD", "2024-03-29", False),
    ("2024-06-28", OLD, "YTD", "2023-12-29", False),
    ("2024-06-28", OLD, "ITD", "2010-01-01", False),  # Friday before Monday 2010-01-04
    # month-end vs. mid-month, clipped day
    ("2024-03-29", OLD, "1M", "2024-02-29", False),  # month-end: last business day of Feb
    ("2024-03-28", OLD, "1M", "2024-02-28", False),  # same day of month
    ("2023-08-31", OLD, "3M", "2023-05-31", False),  # month-end from a 31st
    ("2023-05-30", OLD, "3M", "2023-02-28", False),  # 30 Feb clipped to 28 Feb (Tue)
    ("2024-05-30", OLD, "3M", "2024-02-29", False),  # 30 Feb clipped to 29 Feb (Thu)
    ("2024-07-08", OLD, "1M", "2024-06-07", False),  # 8 Jun is a Saturday -> Friday
    # 29 February
    ("2024-02-29", OLD, "1M", "2024-01-31", False),
    ("2024-02-29", OLD, "1Y", "2023-02-28", False),
    ("2025-02-28", OLD, "1Y", "2024-02-29", False),  # Friday month-end
    ("2024-08-29", OLD, "6M", "2024-02-29", False),  # Thursday, not month-end (30th is)
    ("2024-02-29", OLD, "QTD", "2023-12-29", False),
    # weekend as-of dates are valued at Friday's close
    ("2024-06-29", OLD, "1M", "2024-05-31", False),  # Saturday after a month-end Friday
    ("2024-06-09", OLD, "1M", "2024-05-07", False),  # Sunday -> Fri 7 Jun -> Tue 7 May
    ("2024-06-09", OLD, "MTD", "2024-05-31", False),
    # partial MTD / QTD / YTD
    ("2024-06-28", "2024-06-10", "MTD", "2024-06-07", True),
    ("2024-06-28", "2024-06-03", "MTD", "2024-05-31", False),  # born the day after b
    ("2024-06-28", "2024-06-01", "MTD", "2024-05-31", False),  # Saturday -> Monday 3 Jun
    ("2024-06-28", "2024-05-15", "QTD", "2024-05-14", True),
    ("2024-06-28", "2024-05-15", "MTD", "2024-05-31", False),
    ("2024-06-28", "2024-01-02", "YTD", "2024-01-01", True),  # business day after b is 1 Jan
    ("2024-06-28", "2024-01-01", "YTD", "2023-12-29", False),
    # too young for a trailing period
    ("2024-06-28", "2023-07-04", "1Y", None, False),
    ("2024-06-28", "2023-07-03", "1Y", "2023-06-30", False),  # born the business day after b
    ("2024-06-28", "2023-07-01", "1Y", "2023-06-30", False),  # Saturday -> Monday 3 Jul
    ("2024-06-28", "2024-06-10", "1M", None, False),
    ("2024-06-28", "2020-01-02", "5Y", None, False),
    # ITD
    ("2024-06-28", "2024-01-01", "ITD", "2023-12-29", False),
    ("2024-06-28", "2024-06-10", "ITD", "2024-06-07", False),
    ("2024-06-28", "2024-06-29", "ITD", None, False),  # Saturday -> Monday 1 Jul > as-of
    # born after the as-of date: nothing is reported
    ("2024-06-28", "2024-07-01", "ITD", None, False),
    ("2024-06-28", "2024-07-01", "MTD", None, False),
    ("2024-06-28", "2024-07-01", "1M", None, False),
]


@pytest.mark.parametrize(("as_of", "inception", "period", "start", "partial"), CASES)
def test_period_bounds_hand_checked(as_of, inception, period, start, partial):
    out = period_bounds(pd.to_datetime([as_of]), period, pd.to_datetime([inception]))
    assert list(out.columns) == ["start_date", "partial_period", "reported"]
    row = out.iloc[0]
    assert bool(row["reported"]) is (start is not None)
    assert bool(row["partial_period"]) is partial
    if start is None:
        assert pd.isna(row["start_date"])
    else:
        assert row["start_date"] == T(start)


@pytest.mark.parametrize("period", sorted({case[2] for case in CASES}))
def test_period_bounds_vectorized_equals_row_by_row(period):
    rows = [case for case in CASES if case[2] == period]
    as_of = pd.Series(
        pd.to_datetime([c[0] for c in rows]), index=[f"r{i}" for i in range(len(rows))]
    )
    inception = np.array([c[1] for c in rows], dtype="datetime64[D]")  # another input kind
    out = period_bounds(as_of, period, inception)
    assert list(out.index) == list(as_of.index)
    expected = [T(c[3]) if c[3] is not None else pd.NaT for c in rows]
    assert [x if pd.notna(x) else pd.NaT for x in out["start_date"]] == expected
    assert out["partial_period"].tolist() == [c[4] for c in rows]
    assert out["reported"].tolist() == [c[3] is not None for c in rows]


def test_period_bounds_missing_dates_and_bad_arguments():
    out = period_bounds(
        pd.to_datetime([None, "2024-06-28"]), "ITD", pd.to_datetime(["2024-01-01", None])
    )
    assert out["reported"].tolist() == [False, False]
    assert out["start_date"].isna().all()
    with pytest.raises(ValueError):
        period_bounds(pd.to_datetime(["2024-06-28"]), "2W", pd.to_datetime(["2024-01-01"]))
    with pytest.raises(ValueError):
        period_bounds(pd.to_datetime(["2024-06-28"] * 2), "ITD", pd.to_datetime(["2024-01-01"]))


@settings(max_examples=200, deadline=None)
@given(
    as_of=st.dates(
        min_value=pd.Timestamp("2001-01-01").date(), max_value=pd.Timestamp("2040-12-31").date()
    ),
    age=st.integers(min_value=0, max_value=5000),
    period=st.sampled_from(PERIODS),
)
def test_period_base_is_a_business_day_before_the_as_of_date(as_of, age, period):
    inception = pd.Timestamp(as_of) - pd.Timedelta(days=age)
    row = period_bounds([pd.Timestamp(as_of)], period, [inception]).iloc[0]
    if row["reported"]:
        base = row["start_date"]
        assert base.day_of_week < 5
        assert base < pd.Timestamp(as_of)
        born = roll_to_business_day(inception)
        if period == "ITD":
            assert base == previous_business_day(born)
        elif period not in ("MTD", "QTD", "YTD"):
            assert born <= next_business_day(base)  # the entity existed at b
    else:
        assert pd.isna(row["start_date"])


# --- annualize and calculation dates --------------------------------------------------------


def test_annualize_threshold_and_values():
    assert math.isnan(annualize(0.10, 364))
    assert annualize(0.10, 365) == pytest.approx(0.10, abs=1e-15)
    assert annualize(0.21, 730) == pytest.approx(0.10, abs=1e-12)  # 1.21 ** 0.5 = 1.1
    out = annualize(np.array([0.21, 0.21, np.nan, -1.5, -1.0]), np.array([730, 100, 730, 730, 730]))
    assert isinstance(out, np.ndarray)
    assert out[0] == pytest.approx(0.10, abs=1e-12)
    assert np.isnan(out[1:4]).all()
    assert out[4] == -1.0  # a total loss annualizes to a total loss
    assert math.isnan(annualize(0.1, float("nan")))


def test_calculation_dates():
    dates = calculation_dates(T("2024-01-15"), T("2024-04-10"))
    assert list(dates) == [T("2024-01-31"), T("2024-02-29"), T("2024-03-29"), T("2024-04-10")]
    month_end_latest = calculation_dates(T("2024-01-31"), T("2024-02-29"))
    assert list(month_end_latest) == [T("2024-01-31"), T("2024-02-29")]
    assert list(calculation_dates(T("2024-02-01"), T("2024-02-05"))) == [T("2024-02-05")]
    assert len(calculation_dates(T("2024-02-05"), T("2024-02-01"))) == 0
