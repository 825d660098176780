"""The report's charts as Plotly figure specifications, drawn from report_figures only.

Plotly (plotly.js in the browser) does the drawing, the axes, the number and date formats
(d3-format and d3-time-format strings), the hover values and the log/linear switch. A
figure is built as a plain dict in Plotly's schema from JSON-ready figures and serialized
with the json module, without Plotly's Python validation and encoder, which cost more than
everything else in a report; tests validate every chart against the schema with
plotly.graph_objects.Figure.

Palette: Okabe-Ito (safe for the common colour-vision deficiencies); the benchmark is also
dashed, and a negative figure always carries its sign.
"""

from __future__ import annotations

import json
from typing import Any

PORTFOLIO, BENCHMARK = "#0072B2", "#E69F00"  # Okabe-Ito blue and orange
DEPOSIT, WITHDRAWAL, OTHER = "#009E73", "#D55E00", "#CC79A7"
ACCOUNT_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
PERCENT = "+.2%"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
CONFIG = {"displaylogo": False, "responsive": True}


def _layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}, "automargin": True},
        "legend": {"orientation": "h", "y": -0.2},
        "margin": {"l": 70, "r": 20, "t": 50, "b": 60},
        "hovermode": "x unified",
        "template": "plotly_white",
        **extra,
    }


def growth_chart(figures: dict[str, Any]) -> dict[str, Any]:
    """Growth of 10,000 against the benchmark, deposits and withdrawals marked, log switch."""
    g, currency = figures["growth"], figures["header"]["base_currency"]
    money = f"%{{y:,.2f}} {currency}"
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Portfolio",
            "x": g["dates"],
            "y": g["portfolio"],
            "line": {"color": PORTFOLIO, "width": 2},
            "hovertemplate": money,
        }
    ]
    if g["benchmark"] is not None:
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"Benchmark {figures['header']['benchmark_id']}",
                "x": g["dates"],
                "y": g["benchmark"],
                "line": {"color": BENCHMARK, "width": 2, "dash": "dash"},
                "hovertemplate": money,
            }
        )
    for name, colour, symbol, sign in (
        ("Deposit", DEPOSIT, "triangle-up", 1),
        ("Withdrawal", WITHDRAWAL, "triangle-down", -1),
    ):
        flows = [f for f in g["flows"] if (f["amount"] or 0) * sign > 0]
        if flows:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": name,
                    "x": [f["date"] for f in flows],
                    "y": [f["growth"] for f in flows],
                    "customdata": [f["amount"] for f in flows],
                    "marker": {"color": colour, "symbol": symbol, "size": 9},
                    "hovertemplate": f"{name} %{{customdata:+,.2f}} {currency}<extra></extra>",
                }
            )
    buttons = [
        {"label": label, "method": "relayout", "args": [{"yaxis.type": kind}]}
        for label, kind in (("Linear", "linear"), ("Log", "log"))
    ]
    layout = _layout(
        "Growth of 10,000", "Date", f"Value of 10,000 invested ({currency})", height=420
    )
    layout["yaxis"]["tickformat"] = ",.0f"
    layout["updatemenus"] = [
        {"type": "buttons", "direction": "right", "x": 1, "y": 1.15, "buttons": buttons}
    ]
    return {"data": data, "layout": layout}


def money_chart(figures: dict[str, Any]) -> dict[str, Any]:
    """Market value beside net invested capital."""
    m, currency = figures["money"], figures["header"]["base_currency"]
    money = f"%{{y:,.2f}} {currency}"
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Market value",
            "x": m["dates"],
            "y": m["market_value"],
            "line": {"color": PORTFOLIO},
            "hovertemplate": money,
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Net invested capital",
            "x": m["dates"],
            "y": m["net_invested"],
            "line": {"color": BENCHMARK, "dash": "dash", "shape": "hv"},
            "hovertemplate": money,
        },
    ]
    layout = _layout("Market value and net invested capital", "Date", f"{currency}", height=380)
    layout["yaxis"]["tickformat"] = ",.0f"
    return {"data": data, "layout": layout}


def drawdown_chart(figures: dict[str, Any]) -> dict[str, Any]:
    """The underwater line: the fall from the running high, in percent."""
    d = figures["drawdown"]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Drawdown",
            "x": d["dates"],
            "y": d["underwater"],
            "fill": "tozeroy",
            "line": {"color": WITHDRAWAL},
            "hovertemplate": f"%{{y:{PERCENT}}}",
        }
    ]
    layout = _layout("Drawdown (underwater)", "Date", "Below the running high (%)", height=320)
    layout["yaxis"]["tickformat"] = ".0%"
    return {"data": data, "layout": layout}


def heatmap_chart(figures: dict[str, Any]) -> dict[str, Any]:
    """Monthly returns: years down, months across, then the year's and the benchmark's
    year (stored YTD at the year's last calculation date)."""
    m = figures["monthly"]
    years = sorted({int(month[:4]) for month in m["months"]})
    columns = [*MONTHS, "Year", "Benchmark year"]
    z = [[None] * len(columns) for _ in years]
    for month, value in zip(m["months"], m["twr"], strict=True):
        z[years.index(int(month[:4]))][int(month[5:7]) - 1] = value
    for row in m["annual"]:
        z[years.index(row["year"])][12] = row["twr"]
        z[years.index(row["year"])][13] = row["benchmark_twr"]
    data = [
        {
            "type": "heatmap",
            "x": columns,
            "y": [str(y) for y in years],
            "z": z,
            "colorscale": "RdBu",
            "zmid": 0,
            "texttemplate": f"%{{z:{PERCENT}}}",
            "hovertemplate": f"%{{y}} %{{x}}: %{{z:{PERCENT}}}<extra></extra>",
            "colorbar": {"title": {"text": "Return"}, "tickformat": ".0%"},
            "xgap": 2,
            "ygap": 2,
        }
    ]
    layout = _layout("Monthly returns", "Month", "Year", height=120 + 40 * len(years))
    layout["yaxis"]["autorange"] = "reversed"
    layout["yaxis"]["type"] = "category"
    layout["hovermode"] = "closest"
    return {"data": data, "layout": layout}


def calendar_chart(figures: dict[str, Any]) -> dict[str, Any]:
    """Calendar-year returns, portfolio against benchmark, as bars."""
    annual = figures["monthly"]["annual"]
    years = [str(row["year"]) + (" (part)" if row["partial"] else "") for row in annual]
    data = [
        {
            "type": "bar",
            "name": "Portfolio",
            "x": years,
            "y": [row["twr"] for row in annual],
            "marker": {"color": PORTFOLIO},
            "texttemplate": f"%{{y:{PERCENT}}}",
            "hovertemplate": f"%{{y:{PERCENT}}}",
        }
    ]
    if any(row["benchmark_twr"] is not None for row in annual):
        data.append(
            {
                "type": "bar",
                "name": "Benchmark",
                "x": years,
                "y": [row["benchmark_twr"] for row in annual],
                "marker": {"color": BENCHMARK, "pattern": {"shape": "/"}},
                "texttemplate": f"%{{y:{PERCENT}}}",
                "hovertemplate": f"%{{y:{PERCENT}}}",
            }
        )
    layout = _layout("Calendar-year returns", "Year", "Return (%)", barmode="group", height=360)
    layout["yaxis"]["tickformat"] = ".0%"
    layout["xaxis"]["type"] = "category"
    return {"data": data, "layout": layout}


def rolling_chart(figures: dict[str, Any]) -> dict[str, Any]:
    """Rolling 12-month return, volatility, Sharpe and beta (the stored 1Y rows), stacked."""
    r = figures["rolling"]
    panels = [
        ("twr", "12-month return (%)", ".0%", PERCENT),
        ("volatility", "Volatility (%, annualized)", ".0%", ".2%"),
        ("sharpe_ratio", "Sharpe ratio", ".2f", ".2f"),
    ]
    if any(v is not None for v in r["beta"]):
        panels.append(("beta", "Beta", ".2f", ".2f"))
    colours = (PORTFOLIO, WITHDRAWAL, DEPOSIT, OTHER)
    gap, count = 0.06, len(panels)
    height = (1 - gap * (count - 1)) / count
    data, layout = [], _layout("Rolling 12 months", "Calculation date (month end)", "", height=640)
    for i, (name, title, tick, hover) in enumerate(panels):
        axis = "" if i == 0 else str(i + 1)
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": title,
                "x": r["dates"],
                "y": r[name],
                "xaxis": "x",
                "yaxis": f"y{axis}",
                "line": {"color": colours[i]},
                "hovertemplate": f"%{{y:{hover}}}",
            }
        )
        top = 1 - i * (height + gap)
        layout[f"yaxis{axis}"] = {
            "title": {"text": title},
            "tickformat": tick,
            "domain": [max(top - height, 0), top],
        }
        if i:
            layout[f"yaxis{axis}"]["anchor"] = "x"
    layout["xaxis"]["anchor"] = f"y{count}" if count > 1 else "y"
    return {"data": data, "layout": layout}


def distribution_chart(figures: dict[str, Any]) -> dict[str, Any]:
    """Distribution of monthly returns with the stored 1Y VaR 95% and CVaR 95% (daily, as
    losses) marked."""
    m, key = figures["monthly"], figures["key"]
    data = [
        {
            "type": "histogram",
            "name": "Months",
            "x": [v for v in m["twr"] if v is not None],
            "marker": {"color": PORTFOLIO},
            "hovertemplate": f"%{{x:{PERCENT}}}: %{{y}} months<extra></extra>",
        }
    ]
    shapes, notes = [], []
    for name, value, dash in (
        ("1Y daily VaR 95%", key["one_year_var_95"], "dash"),
        ("1Y daily CVaR 95%", key["one_year_cvar_95"], "dot"),
    ):
        if value is None:
            continue
        shapes.append(
            {
                "type": "line",
                "x0": -value,
                "x1": -value,
                "yref": "paper",
                "y0": 0,
                "y1": 1,
                "line": {"color": WITHDRAWAL, "dash": dash},
            }
        )
        notes.append(
            {
                "x": -value,
                "yref": "paper",
                "y": 1,
                "text": f"{name}",
                "showarrow": False,
                "xanchor": "right" if dash == "dot" else "left",
            }
        )
    layout = _layout("Distribution of monthly returns", "Monthly return (%)", "Months", height=340)
    layout.update(shapes=shapes, annotations=notes, hovermode="closest")
    layout["xaxis"]["tickformat"] = ".0%"
    return {"data": data, "layout": layout}


def holdings_chart(figures: dict[str, Any]) -> dict[str, Any]:
    """Weight of each position on the as-of date, one colour per account."""
    currency = figures["header"]["base_currency"]
    positions = [h for h in figures["holdings"] if h["security_id"] is not None]
    accounts = sorted({h["account_id"] for h in positions})
    data = []
    for i, account in enumerate(accounts):
        rows = [h for h in positions if h["account_id"] == account]
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": f"Account {account}",
                "y": [f"{account} / {h['security_id']}" for h in rows],
                "x": [h["weight"] for h in rows],
                "customdata": [[h["market_value"], h["price_age_days"]] for h in rows],
                "marker": {"color": ACCOUNT_COLOURS[i % len(ACCOUNT_COLOURS)]},
                "hovertemplate": (
                    f"%{{x:.2%}}, %{{customdata[0]:,.2f}} {currency}, "
                    "price %{customdata[1]} days old<extra></extra>"
                ),
            }
        )
    layout = _layout(
        f"Holdings on {figures['header']['as_of']}",
        "Weight in the portfolio (%)",
        "Account / security",
        height=160 + 22 * max(len(positions), 1),
    )
    layout["xaxis"]["tickformat"] = ".0%"
    layout["yaxis"]["autorange"] = "reversed"
    layout["hovermode"] = "closest"
    return {"data": data, "layout": layout}


CHARTS = {
    "growth": growth_chart,
    "money": money_chart,
    "drawdown": drawdown_chart,
    "heatmap": heatmap_chart,
    "calendar": calendar_chart,
    "rolling": rolling_chart,
    "distribution": distribution_chart,
    "holdings": holdings_chart,
}
"""The report's charts in page order."""


def sparkline(figures: dict[str, Any]) -> dict[str, Any]:
    """The index's small growth line (month-end points of the growth of 10,000)."""
    g = figures["growth"]
    dates, values = g["dates"], g["portfolio"]
    keep = [i for i in range(len(dates)) if i + 1 == len(dates) or dates[i][:7] != dates[i + 1][:7]]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines",
                "x": [dates[i] for i in keep],
                "y": [values[i] for i in keep],
                "line": {"color": PORTFOLIO, "width": 1.5},
                "hovertemplate": "%{x|%Y-%m}: %{y:,.0f}<extra></extra>",
            }
        ],
        "layout": {
            "height": 40,
            "width": 160,
            "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "showlegend": False,
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
        },
    }


def to_json(figure: dict[str, Any]) -> str:
    """A figure (plain lists, None for a gap, ISO date strings) as compact JSON; NaN is
    refused, plotly.js reads null as a gap."""
    return json.dumps(figure, separators=(",", ":"), allow_nan=False)
