"""Tests for perf_pipeline.calc.xirr: worked example, hand cases, pyxirr, properties."""

import datetime as dt
import importlib
import math

import numpy as np
import pandas as pd
import pytest
import pyxirr
from hypothesis import given, settings
from hypothesis import strategies as st

from perf_pipeline.calc.xirr import STATUSES, xirr, xirr_many, xirr_many_detailed

DAY0 = pd.Timestamp("2023-01-01")
# the package exports a function named xirr, which hides the module of the same name
xirr_module = importlib.import_module("perf_pipeline.calc.xirr")


def _series(days: list[int], amounts: list[float]) -> pd.Series:
    return pd.Series(amounts, index=DAY0 + pd.to_timedelta(days, unit="D"), dtype=float)


def _long(series: dict[object, pd.Series]) -> pd.DataFrame:
    return pd.concat(
        pd.DataFrame({"entity": key, "date": s.index, "amount": s.to_numpy()})
        for key, s in series.items()
    )


def _relative_npv(days: np.ndarray, amounts: np.ndarray, log1p_rate: float) -> float:
    """NPV at r = exp(log1p_rate) - 1 over the sum of |discounted flows|, computed in logs
    (1 + r near 0 or huge loses no precision)."""
    days, amounts = days[amounts != 0], amounts[amounts != 0]
    t = (days - days.min()) / 365.0
    log_abs = np.log(np.abs(amounts)) - t * log1p_rate
    weights = np.exp(log_abs - log_abs.max())
    return float(np.sum(np.sign(amounts) * weights) / np.sum(weights))


def _npv_sign(days: np.ndarray, amounts: np.ndarray, log1p_rate: float) -> float:
    """Sign of NPV at r = exp(log1p_rate) - 1 (the relative NPV, computed in logs)."""
    return float(np.sign(_relative_npv(days, amounts, log1p_rate)))


def _roots_from_quadratic(r1: float, r2: float) -> list[float]:
    """Flows at years 0, 1, 2 whose NPV is -100 (v - v1)(v - v2), v = 1 / (1 + r)."""
    v1, v2 = 1 / (1 + r1), 1 / (1 + r2)
    return [-100 * v1 * v2, 100 * (v1 + v2), -100.0]


# --- the worked example of docs/methodology.md and hand cases ------------------------------


def test_spec_worked_example():
    flows = pd.Series(
        [-10_000.0, -2_000.0, 13_200.0],
        index=pd.to_datetime(["2023-01-01", "2023-04-01", "2023-12-31"]),
    )
    assert round(xirr(flows) * 100, 4) == 10.4769


def test_two_flows_closed_form():
    # 731 days (2024 is a leap year): (1 + r) ** (731 / 365) = 1.21
    flows = _series([0, 731], [-100.0, 121.0])
    assert xirr(flows) == pytest.approx(1.21 ** (365 / 731) - 1, rel=1e-14)


def test_duplicate_dates_are_summed_and_order_does_not_matter():
    split = pd.Series(
        [13_200.0, -1_500.0, -10_000.0, -500.0],
        index=pd.to_datetime(["2023-12-31", "2023-04-01", "2023-01-01", "2023-04-01"]),
    )
    assert round(xirr(split) * 100, 4) == 10.4769


def test_week_long_position_has_an_extreme_rate():
    # bought at 100, sold a week later at 110: (1 + r) ** (7 / 365) = 1.1
    assert xirr(_series([0, 7], [-100.0, 110.0])) == pytest.approx(1.1 ** (365 / 7) - 1)
    # through Newton (three flows): the rate must still solve the equation
    days, amounts = np.array([0, 1, 7]), np.array([-100.0, -50.0, 170.0])
    detail = xirr_many_detailed(_long({"a": _series(list(days), list(amounts))})).loc["a"]
    rate = detail["rate"]
    # 100 (1 + d) ** 7 + 50 (1 + d) ** 6 = 170 with 1 + d = (1 + r) ** (1 / 365)
    assert (17 / 15) ** (365 / 7) < 1 + rate < (17 / 15) ** (365 / 6)
    assert abs(_relative_npv(days, amounts, detail["log1p_rate"])) < 1e-12
    assert rate == xirr(_series(list(days), list(amounts)))


def test_two_day_horizon_rate_of_order_1e28():
    days, amounts = np.array([0, 1, 2]), np.array([-100.0, -100.0, 260.0])
    detail = xirr_many_detailed(_long({"a": _series(list(days), list(amounts))})).loc["a"]
    rate = detail["rate"]
    # u = (1 + r) ** (1 / 365) solves 100 u ** 2 + 100 u = 260
    u = (-1 + math.sqrt(1 + 4 * 2.6)) / 2
    assert rate == pytest.approx(u**365 - 1, rel=1e-10)
    assert detail["log1p_rate"] == pytest.approx(365 * math.log(u), rel=1e-13)
    assert abs(_relative_npv(days, amounts, detail["log1p_rate"])) < 1e-12


def test_rate_too_close_to_minus_one_is_nan_not_minus_one():
    # 10,000 paid, 1 back a week later: (1 + r) ** (7 / 365) = 1e-4, 1 + r = 1e-208
    detail = xirr_many_detailed(_long({"a": _series([7, 0], [1.0, -10_000.0])})).loc["a"]
    assert detail["status"] == "rate_underflow"
    assert math.isnan(detail["rate"])
    assert detail["log1p_rate"] == pytest.approx(365 / 7 * math.log(1e-4), rel=1e-14)
    assert math.isnan(xirr(_series([7, 0], [1.0, -10_000.0])))
    # just above the edge (1 + r = 1e-15) it is a rate
    edge = xirr(_series([0, 365], [-1e15, 1.0]))
    assert edge > -1 and 1 + edge == pytest.approx(1e-15, rel=1e-6)


def test_rate_too_large_for_float64_is_nan_not_inf():
    detail = xirr_many_detailed(_long({"a": _series([0, 1], [-1.0, 1e10])}))
    assert math.isnan(detail.loc["a", "rate"])
    assert detail.loc["a", "status"] == "rate_overflow"


def test_multiple_roots_closest_to_zero_and_near_rate():
    flows = _series([0, 365, 730], [-100.0, 230.0, -132.0])  # roots 10% and 20%
    assert xirr(flows) == pytest.approx(0.10, abs=1e-12)
    long = _long({"a": flows})
    detail = xirr_many_detailed(long)
    assert detail.loc["a", "roots"] == 2
    near = pd.Series({"a": 0.19})
    assert xirr_many(long, near_period_rate=near)["a"] == pytest.approx(0.20, abs=1e-12)
    # over a 2-year horizon the period rates are 21% and 44%: 40% is closest to 44%
    two_years = xirr_many(long, pd.Series({"a": 0.40}), pd.Series({"a": 730}))
    assert two_years["a"] == pytest.approx(0.20, abs=1e-12)


def test_multiple_roots_on_both_sides_of_zero():
    flows = _series([0, 365, 730], _roots_from_quadratic(-0.10, 0.20))
    assert xirr(flows) == pytest.approx(-0.10, abs=1e-12)


def test_multiple_roots_one_of_them_extreme():
    long = _long({"a": _series([0, 365, 730], _roots_from_quadratic(0.10, 50.0))})
    assert xirr_many(long)["a"] == pytest.approx(0.10, abs=1e-12)
    far = xirr_many(long, near_period_rate=pd.Series({"a": 45.0}))["a"]
    assert far == pytest.approx(50.0, rel=1e-12)


@pytest.mark.parametrize(
    ("days", "amounts", "status"),
    [
        ([0, 100, 200], [-1.0, -2.0, -3.0], "no_sign_change"),
        ([0, 100], [5.0, 5.0], "no_sign_change"),
        ([0, 365, 730], [-100.0, 250.0, -200.0], "no_root"),  # 200 v^2 - 250 v + 100 > 0
        ([0, 0, 30], [-1.0, 1.0, 0.0], "zero_flows"),
        ([0, 30], [-1.0, 0.0], "too_few_flows"),
        ([0, 0], [-1.0, 2.0], "too_few_flows"),
        ([0, 30], [-1.0, np.nan], "non_finite_input"),
        ([0, 30], [-1.0, np.inf], "non_finite_input"),
    ],
)
def test_statuses_of_degenerate_series(days, amounts, status):
    detail = xirr_many_detailed(_long({"a": _series(days, amounts)}))
    assert detail.loc["a", "status"] == status
    assert status in STATUSES
    assert math.isnan(detail.loc["a", "rate"])
    assert math.isnan(xirr(_series(days, amounts)))


def test_missing_date_is_non_finite_input_and_other_entities_still_solve():
    frame = pd.DataFrame(
        {
            "entity": ["b", "b", "a", "a"],
            "date": [DAY0, pd.NaT, DAY0, DAY0 + pd.Timedelta(days=365)],
            "amount": [-1.0, 2.0, -100.0, 110.0],
        }
    )
    detail = xirr_many_detailed(frame)
    assert list(detail.index) == ["a", "b"]
    assert detail["status"].tolist() == ["ok", "non_finite_input"]
    assert detail.loc["a", "rate"] == pytest.approx(0.10, abs=1e-14)


def test_unsolvable_entities_between_others_leave_them_alone():
    year = DAY0 + pd.Timedelta(days=365)
    frame = pd.DataFrame(
        {
            "entity": ["a", "a", "b", "b", "c", "c", "d", "d"],
            "date": [DAY0, year] * 4,
            "amount": [-100.0, 110.0, 0.0, 0.0, -1.0, np.nan, -100.0, 121.0],
        }
    )
    detail = xirr_many_detailed(frame)
    assert detail["status"].tolist() == ["ok", "zero_flows", "non_finite_input", "ok"]
    assert detail.loc["a", "rate"] == pytest.approx(0.10, abs=1e-14)
    assert detail.loc["d", "rate"] == pytest.approx(0.21, abs=1e-14)


@pytest.mark.parametrize("unit", ["s", "ms", "ns"])
def test_times_of_day_are_dropped_before_and_after_1970(unit):
    # 18:00 on 1969-12-31 is that day (not 1970-01-01): 365 days to 1970-12-31
    dates = pd.to_datetime(["1969-12-31 18:00", "1970-12-31 06:00"]).as_unit(unit)
    frame = pd.DataFrame({"entity": [1, 1], "date": dates, "amount": [-100.0, 110.0]})
    assert xirr_many(frame)[1] == pytest.approx(0.10, abs=1e-14)


def test_empty_input_and_missing_column():
    empty = pd.DataFrame({"entity": [], "date": pd.to_datetime([]), "amount": []})
    assert xirr_many(empty).empty
    assert math.isnan(xirr(pd.Series([], index=pd.DatetimeIndex([]), dtype=float)))
    with pytest.raises(ValueError, match="amount"):
        xirr_many(empty.drop(columns="amount"))


def test_unparseable_date_or_amount_raises_value_error():
    frame = pd.DataFrame({"entity": ["a", "a"], "date": ["2023-01-01", "soon"], "amount": [-1, 2]})
    with pytest.raises(ValueError):
        xirr_many(frame)
    frame = pd.DataFrame({"entity": ["a", "a"], "date": [DAY0, DAY0], "amount": [-1, "lots"]})
    with pytest.raises(ValueError):
        xirr_many(frame)


def test_rows_with_null_entity_are_ignored():
    frame = _long({"a": _series([0, 365], [-100.0, 110.0])})
    frame = pd.concat([frame, pd.DataFrame({"entity": [None], "date": [DAY0], "amount": [5.0]})])
    assert list(xirr_many(frame).index) == ["a"]


def test_row_order_and_timezone_do_not_matter():
    cases = _cases(seed=11, count=30)
    long = pd.concat(
        pd.DataFrame({"entity": i, "date": DAY0 + pd.to_timedelta(d, unit="D"), "amount": a})
        for i, (d, a) in enumerate(cases)
    )
    expected = xirr_many(long)
    shuffled = long.sample(frac=1.0, random_state=3)
    pd.testing.assert_series_equal(xirr_many(shuffled), expected)
    zoned = shuffled.assign(date=shuffled["date"].dt.tz_localize("Europe/Zurich"))
    pd.testing.assert_series_equal(xirr_many(zoned), expected)


def test_near_rate_nan_means_zero_and_bad_horizon_raises():
    long = _long({"a": _series([0, 365, 730], [-100.0, 230.0, -132.0])})
    assert xirr_many(long, near_period_rate=pd.Series({"a": np.nan}))["a"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="horizon"):
        xirr_many(long, horizon_days=pd.Series({"a": 0.0}))


def test_brent_fallback_when_newton_is_cut_short(monkeypatch):
    cases = _cases(seed=5, count=60)
    long = pd.concat(
        pd.DataFrame({"entity": i, "date": DAY0 + pd.to_timedelta(d, unit="D"), "amount": a})
        for i, (d, a) in enumerate(cases)
    )
    expected = xirr_many_detailed(long)
    monkeypatch.setattr(xirr_module, "_MAX_NEWTON", 1)
    spec = pd.Series(
        [-10_000.0, -2_000.0, 13_200.0],
        index=pd.to_datetime(["2023-01-01", "2023-04-01", "2023-12-31"]),
    )
    assert round(xirr(spec) * 100, 4) == 10.4769
    fallback = xirr_many_detailed(long)
    assert (fallback["status"] == expected["status"]).all()
    ok = expected["status"] == "ok"
    np.testing.assert_allclose(
        fallback.loc[ok, "log1p_rate"], expected.loc[ok, "log1p_rate"], rtol=1e-9, atol=1e-11
    )


def _certificates_off(monkeypatch, *which: str) -> None:
    """Turn off the TRM certificate ("trm", inside _certify) and/or the interval bounds."""
    if "trm" in which:
        certify = xirr_module._certify

        def root_only(rows, x):
            is_root, _ = certify(rows, x)
            return is_root, np.zeros_like(is_root)

        monkeypatch.setattr(xirr_module, "_certify", root_only)
    if "bounds" in which:
        monkeypatch.setattr(
            xirr_module, "_unique_by_bounds", lambda rows, x: np.zeros(len(x), dtype=bool)
        )


@pytest.mark.parametrize("certificates", [("trm",), ("bounds",), ("trm", "bounds")])
def test_scan_agrees_with_the_uniqueness_certificates(monkeypatch, certificates):
    """Where a certificate says a root is the only one, the grid scan finds it and no other."""
    cases = _cases(seed=6, count=150)
    long = pd.concat(
        pd.DataFrame({"entity": i, "date": DAY0 + pd.to_timedelta(d, unit="D"), "amount": a})
        for i, (d, a) in enumerate(cases)
    )
    expected = xirr_many_detailed(long)
    _certificates_off(monkeypatch, *certificates)
    scanned = xirr_many_detailed(long)
    assert (scanned["status"] == expected["status"]).all()
    certified = (expected["roots"] == 1) & (expected["status"] == "ok")
    assert certified.sum() > 50
    assert (scanned.loc[certified, "roots"] == 1).all()
    np.testing.assert_allclose(
        scanned.loc[certified, "log1p_rate"],
        expected.loc[certified, "log1p_rate"],
        rtol=1e-9,
        atol=1e-11,
    )


@pytest.mark.parametrize(
    ("days", "amounts", "roots"),
    [
        ([0, 365, 730], [-100.0, 230.0, -132.0], (0.10, 0.20)),
        ([0, 365, 730], _roots_from_quadratic(-0.10, 0.20), (-0.10, 0.20)),
        ([0, 365, 730], _roots_from_quadratic(0.10, 50.0), (0.10, 50.0)),
        ([0, 365, 730], _roots_from_quadratic(0.05, 0.0501), (0.05, 0.0501)),
        # first and last flows paid in, money back in between: one root near -1, one huge
        (
            list(range(8)),
            [-0.6073, 0.0751, 0.4187, 0.3087, 1.3999, 1.0281, -0.5533, -0.7225],
            None,
        ),
    ],
)
def test_bounds_certificate_never_vouches_for_one_of_two_roots(monkeypatch, days, amounts, roots):
    """With the TRM certificate off, two roots must reach the scan: the interval-bounds
    certificate may not call either of them the only one."""
    _certificates_off(monkeypatch, "trm")
    long = _long({"a": _series(days, amounts)})
    detail = xirr_many_detailed(long).loc["a"]
    assert detail["roots"] == 2
    if roots is not None:
        # roots 1e-4 apart are ill-conditioned: 1e-9 is what the flows' rounding allows
        assert detail["rate"] == pytest.approx(min(roots, key=abs), abs=1e-9)
        far = max(roots, key=abs)
        chosen = xirr_many(long, near_period_rate=pd.Series({"a": far}))["a"]
        assert chosen == pytest.approx(far, rel=1e-9)


# --- pyxirr cross-check ---------------------------------------------------------------------


def _random_case(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(2, 40))
    horizon = int(rng.choice([1, 3, 7, 30, 180, 365, 1000, 3650]))
    n = min(n, horizon + 1)
    days = np.sort(rng.choice(horizon + 1, n, replace=False))
    days[0], days[-1] = 0, horizon
    scale = float(rng.choice([0.01, 1.0, 1e4, 1e10]))
    if kind == "invest":  # outflow, mixed flows, final value
        amounts = rng.normal(0.0, 0.2, n) * scale
        amounts[0] = -scale
        amounts[-1] = scale * rng.uniform(0.5, 2.0)
    elif kind == "late_sign_change":  # contributions only until the last flow
        amounts = -rng.uniform(0.01, 1.0, n) * scale
        amounts[-1] = -amounts[:-1].sum() * rng.uniform(0.3, 3.0)
    else:  # "random": anything goes
        amounts = rng.normal(0.0, 1.0, n) * scale
    return days, np.round(amounts, 2) if scale == 0.01 else amounts


def _cases(seed: int = 7, count: int = 400) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    kinds = ["invest", "late_sign_change", "random"]
    return [_random_case(rng, kinds[i % 3]) for i in range(count)]


def _sign_changes(amounts: np.ndarray) -> int:
    signs = np.sign(amounts[amounts != 0])
    return int(np.sum(signs[1:] != signs[:-1]))


def test_agrees_with_pyxirr_on_random_series():
    cases = _cases()
    long = pd.concat(
        pd.DataFrame({"entity": i, "date": DAY0 + pd.to_timedelta(d, unit="D"), "amount": a})
        for i, (d, a) in enumerate(cases)
    )
    detail = xirr_many_detailed(long)
    compared = agreed = pyxirr_short = 0
    for i, (days, amounts) in enumerate(cases):
        dates = [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in days]
        theirs = pyxirr.xirr(dates, amounts.tolist(), silent=True)
        rate, log1p_rate = detail.loc[i, ["rate", "log1p_rate"]]
        if not math.isnan(log1p_rate):  # whatever pyxirr says, ours must be a root
            ours_npv = _relative_npv(days, amounts, log1p_rate)
            assert abs(ours_npv) < 1e-9, (i, rate)
            assert rate > -1 or math.isnan(rate), (i, rate)
            if not math.isnan(rate):
                assert rate == pytest.approx(math.expm1(log1p_rate), rel=1e-15)
        if theirs is None or not math.isfinite(theirs) or theirs <= -1:
            continue
        theirs_npv = _relative_npv(days, amounts, math.log1p(theirs))
        if abs(theirs_npv) > 1e-6:
            continue  # not a root: pyxirr's absolute tolerance accepted tiny discounted flows
        compared += 1
        if detail.loc[i, "status"] == "rate_underflow":  # a root nearer 0 than theirs
            assert abs(_relative_npv(days, amounts, log1p_rate)) < 1e-9, (i, theirs)
            assert _sign_changes(amounts) > 1 and abs(theirs) > 1, (i, theirs)
            continue
        assert not math.isnan(rate), (i, theirs)
        if rate == pytest.approx(theirs, rel=1e-8, abs=1e-8):
            agreed += 1
        elif _sign_changes(amounts) > 1 and abs(rate) < abs(theirs):
            pass  # several roots possible: ours is closer to 0, as the contract asks
        else:  # the same root, where pyxirr's absolute tolerance stopped short of it
            assert log1p_rate == pytest.approx(math.log1p(theirs), rel=1e-5), (i, rate, theirs)
            assert abs(ours_npv) < abs(theirs_npv) / 100, (i, rate, theirs)
            pyxirr_short += 1
    assert compared > 250
    assert agreed > 250
    assert pyxirr_short < agreed / 10


# --- properties -----------------------------------------------------------------------------

_amount = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).filter(lambda a: abs(a) > 1e-3)


@st.composite
def _valid_series(draw) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(min_value=2, max_value=12))
    days = np.sort(
        np.array(draw(st.lists(st.integers(0, 4000), min_size=n, max_size=n, unique=True)))
    )
    amounts = np.array(draw(st.lists(_amount, min_size=n, max_size=n)))
    amounts[0] = -abs(amounts[0])
    amounts[-1] = abs(amounts[-1])
    return days, amounts


@settings(max_examples=150, deadline=None)
@given(_valid_series())
def test_reported_root_solves_npv(case):
    days, amounts = case
    detail = xirr_many_detailed(_long({"a": _series(list(days), list(amounts))})).loc["a"]
    # first and last flows differ in sign, so NPV changes sign: a root must be reported
    assert detail["status"] in ("ok", "rate_overflow", "rate_underflow")
    assert abs(_relative_npv(days, amounts, detail["log1p_rate"])) < 1e-9
    if detail["status"] == "ok":
        assert detail["rate"] > -1
        assert detail["rate"] == pytest.approx(math.expm1(detail["log1p_rate"]), rel=1e-15)
    else:
        assert math.isnan(detail["rate"])


@st.composite
def _one_sign_change_shuffled(draw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(days, amounts, row order): money paid in on the earlier dates, received on the later
    ones (NPV -> +inf as r -> -1, one sign change: exactly one root), rows shuffled. Sizes
    from cents to millions over 1 day to 10 years, so some roots have 1 + r below 1e-16."""
    n = draw(st.integers(min_value=2, max_value=10))
    days = np.sort(
        np.array(draw(st.lists(st.integers(0, 3650), min_size=n, max_size=n, unique=True)))
    )
    paid = draw(st.integers(min_value=1, max_value=n - 1))
    size = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
    amounts = np.array(draw(st.lists(size, min_size=n, max_size=n)))
    amounts[:paid] *= -1
    order = np.array(draw(st.permutations(range(n))))
    return days, amounts, order


@settings(max_examples=300, deadline=None)
@given(_one_sign_change_shuffled())
def test_one_sign_change_in_any_row_order_gives_the_root_never_minus_one(case):
    days, amounts, order = case
    flows = _series(list(days[order]), list(amounts[order]))
    detail = xirr_many_detailed(_long({"a": flows})).loc["a"]
    rate, x = detail["rate"], detail["log1p_rate"]
    assert rate != -1.0 and not rate < -1
    # the root, checked here: NPV ~ 0 relative to the flows, and NPV changes sign around it
    assert abs(_relative_npv(days, amounts, x)) < 1e-9
    step = 1e-7 * (1 + abs(x))
    assert _npv_sign(days, amounts, x - step) == 1.0 and _npv_sign(days, amounts, x + step) == -1.0
    assert detail["roots"] == 1
    if detail["status"] == "rate_underflow":  # 1 + r < 1.1e-16: r would round to -1.0
        assert x < math.log(2.0**-52) and math.isnan(rate)
    elif detail["status"] == "rate_overflow":
        assert x > math.log(np.finfo(float).max) and math.isnan(rate)
    else:
        assert detail["status"] == "ok" and rate == xirr(flows)
        dates = [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in days]
        theirs = pyxirr.xirr(dates, amounts.tolist(), silent=True)
        if (
            theirs is not None
            and theirs > -1
            and abs(_relative_npv(days, amounts, np.log1p(theirs))) < 1e-9
        ):
            assert np.log1p(rate) == pytest.approx(np.log1p(theirs), rel=1e-6, abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(_valid_series(), st.floats(min_value=1e-6, max_value=1e6), st.integers(-30, 30))
def test_scaling_amounts_leaves_rate_unchanged(case, factor, power):
    days, amounts = case
    rate = xirr(_series(list(days), list(amounts)))
    exact = xirr(_series(list(days), list(amounts * 2.0**power)))
    assert exact == rate or (math.isnan(exact) and math.isnan(rate))
    scaled = xirr(_series(list(days), list(amounts * factor)))
    if math.isfinite(rate):
        assert scaled == pytest.approx(rate, rel=1e-9, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(_valid_series(), min_size=1, max_size=6))
def test_many_entities_each_solve_their_own_npv(cases):
    """One call for several entities: each entity's root is checked on its own flows, by an
    NPV computed here (in logs) and by pyxirr where pyxirr converges to a root."""
    series = {f"e{i}": _series(list(d), list(a)) for i, (d, a) in enumerate(cases)}
    detail = xirr_many_detailed(_long(series))
    assert list(detail.index) == list(series)
    for key, (days, amounts) in zip(series, cases, strict=True):
        x = detail.loc[key, "log1p_rate"]
        assert abs(_relative_npv(days, amounts, x)) < 1e-9, key
        assert (
            _npv_sign(days, amounts, x - 1e-6 * (1 + abs(x)))
            != _npv_sign(days, amounts, x + 1e-6 * (1 + abs(x)))
            or detail.loc[key, "roots"] > 1
        ), key
        if _sign_changes(amounts) == 1 and detail.loc[key, "status"] == "ok":
            dates = [dt.date(2023, 1, 1) + dt.timedelta(days=int(d)) for d in days]
            theirs = pyxirr.xirr(dates, amounts.tolist(), silent=True)
            if theirs is not None and abs(_relative_npv(days, amounts, math.log1p(theirs))) < 1e-9:
                assert detail.loc[key, "rate"] == pytest.approx(theirs, rel=1e-6, abs=1e-9)
