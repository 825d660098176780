"""A hand-made input set whose every figure is derived by hand, shared by the end-to-end tests.

Portfolio P1 (client C1, benchmark B1) has two accounts, valued 2024-01-02 .. 2024-01-08:
A1  Tue 01-02 DEPOSIT 10,000; BUY 50 S1 @ 100 fee 10 -> cash 4,990
    Thu 01-04 DEPOSIT 1,000
    Fri 01-05 SELL 10 S1 @ 110 fee 5 -> cash + 1,095
A2  Wed 01-03 DEPOSIT 2,000
    Sat 01-06 FEE 20 -> applies Monday 01-08
S1 closes: 01-02 100, 01-03 102, (none on 01-04), 01-05 105, Sat 01-06 106 (counts on 01-08).
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyxirr

TX_HEADER = (
    "transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,price,amount,"
    "fee,currency\n"
)
TRANSACTIONS = (
    TX_HEADER
    + """T1,P1,A1,,2024-01-02,DEPOSIT,,,10000,,USD
T2,P1,A1,S1,2024-01-02,BUY,50,100,,10,USD
T3,P1,A2,,2024-01-03,DEPOSIT,,,2000,,USD
T4,P1,A1,,2024-01-04,DEPOSIT,,,1000,,USD
T5,P1,A1,S1,2024-01-05,SELL,10,110,,5,USD
T6,P1,A2,,2024-01-06,FEE,,,20,,USD
"""
)
PRICES = """security_id,date,close,currency
S1,2024-01-02,100,USD
S1,2024-01-03,102,USD
S1,2024-01-05,105,USD
S1,2024-01-06,106,USD
"""
BENCHMARKS = """benchmark_id,date,close
B1,2023-12-29,100
B1,2024-01-02,101
B1,2024-01-03,100
B1,2024-01-04,102
B1,2024-01-05,103
B1,2024-01-08,104
"""
PORTFOLIOS = """portfolio_id,client_id,base_currency,benchmark_id
P1,C1,USD,B1
"""
DATES = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"])

# Market values and flows by hand, date by date (None: before inception).
A1_MV = [4990 + 50 * 100, 4990 + 50 * 102, 5990 + 50 * 102, 7085 + 40 * 105, 7085 + 40 * 106]
A2_MV = [None, 2000, 2000, 2000, 1980]
S1_MV = [50 * 100, 50 * 102, 50 * 102, 40 * 105, 40 * 106]
P1_MV = [9990, 10090 + 2000, 11090 + 2000, 11285 + 2000, 11325 + 1980]
P1_IN = [10000, 2000, 1000, 0, 0]
S1_IN = [5010, 0, 0, 0, 0]
S1_OUT = [0, 0, 0, 1095, 0]
S1_AGE = [0, 0, 1, 0, 2]


def hand_returns(mv, inflow, outflow) -> list[float]:
    """r_t = (MV_t + OUT_t) / (MV_{t-1} + IN_t) - 1, value 0 before the first date."""
    out, previous = [], 0.0
    for value, i, o in zip(mv, inflow, outflow, strict=True):
        out.append((value + o) / (previous + i) - 1)
        previous = value
    return out


P1_R = hand_returns(P1_MV, P1_IN, [0] * 5)
S1_R = hand_returns(S1_MV, S1_IN, S1_OUT)
A2_R = [0.0, 0.0, 0.0, 1980 / 2000 - 1]


AS_OF = "2024-01-08"


def write_input(root: Path) -> Path:
    for kind, text in (
        ("transactions", TRANSACTIONS),
        ("prices", PRICES),
        ("benchmarks", BENCHMARKS),
        ("portfolios", PORTFOLIOS),
    ):
        (root / kind / "2024").mkdir(parents=True, exist_ok=True)
        (root / kind / "2024" / f"{kind}.csv").write_text(text)
    return root


AS_OF = "2024-01-08"


def p1_itd_expected() -> dict[str, float]:
    """P1's ITD figures at 2024-01-08 (base 2024-01-01, 7 days), each derived by hand."""
    r = np.array(P1_R)
    closes = np.array([100, 101, 100, 102, 103, 104.0])
    m = closes[1:] / closes[:-1] - 1
    index = np.cumprod(1 + r)
    annual_mwr = pyxirr.xirr(
        ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-08"], [-10000, -2000, -1000, 13305]
    )
    return {
        "twr": math.prod(1 + x for x in P1_R) - 1,
        # Modified Dietz over (2024-01-01, 2024-01-08]: flows on days 1, 2 and 3 of 7.
        "modified_dietz": (13305 - 13000) / (10000 * 6 / 7 + 2000 * 5 / 7 + 1000 * 4 / 7),
        "mwr": (1 + annual_mwr) ** (7 / 365) - 1,
        "volatility": float(np.std(r) * math.sqrt(252)),
        "beta": float(np.mean((r - r.mean()) * (m - m.mean())) / np.var(m)),
        "benchmark_twr": 0.04,
        "max_drawdown": float(1 - min(index / np.maximum.accumulate(np.r_[1, index])[1:])),
    }
