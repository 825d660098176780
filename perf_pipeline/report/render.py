"""HTML of a report and of the index, laid out by Jinja2 templates (templates/).

Numbers are formatted by Python's format specification in Jinja filters (`pct`, `fall`,
`money`, `num`): percentages with two decimals and a sign (a drawdown as a loss), money
with thousands separators and the currency, plain numbers with two decimals. A null figure
shows as a dash whose title (hover) gives the reason. The page embeds every figure it shows as JSON
(`<script id="report-data">`) and each chart's Plotly specification; the shared script
and style are beside the pages (ASSETS), never on another host.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from perf_pipeline.report.charts import CHARTS, CONFIG, sparkline, to_json

ASSETS = "assets"
NOT_STORED = "not available for this period"


def _dash(reason: str | None) -> Markup:
    return Markup('<span class="null" title="{}">–</span>').format(reason or NOT_STORED)


def pct(value: float | None, reason: str | None = None) -> Markup:
    """+1.23% / -1.23%, or a dash with its reason."""
    return _dash(reason) if value is None else escape(format(value, "+.2%"))


def fall(value: float | None, reason: str | None = None) -> Markup:
    """A drawdown (stored as a positive fall) shown as a loss: -12.34%."""
    return pct(None if value is None else -value, reason)


def money(value: float | None, currency: str = "", reason: str | None = None) -> Markup:
    """1,234,567.89 USD, or a dash with its reason."""
    if value is None:
        return _dash(reason)
    return escape(f"{format(value, ',.2f')} {currency}".strip())


def num(value: float | None, reason: str | None = None, spec: str = ",.2f") -> Markup:
    """A plain figure (a ratio, a count), or a dash with its reason."""
    return _dash(reason) if value is None else escape(format(value, spec))


def script_json(text: str) -> Markup:
    """JSON to put inside a <script type="application/json"> element: every '<' written as
    the JSON escape \\u003c (it can only stand inside a JSON string), so neither '</script'
    nor '<!--' can occur in the element."""
    # nosec B704: the text is JSON from json.dumps and holds no '<' after the replace
    return Markup(text.replace("<", "\\u003c"))  # nosec B704


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("perf_pipeline.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, fall=fall, money=money, num=num, script_json=script_json)
    return env


def report_html(
    figures: dict[str, Any], assets: str = f"../{ASSETS}", index: str = "../index.html"
) -> str:
    """One portfolio's report page; `assets` and `index` are relative to where it is written."""
    charts = {name: to_json(build(figures)) for name, build in CHARTS.items()}
    return (
        environment()
        .get_template("report.html.j2")
        .render(
            f=figures,
            charts=charts,
            config=to_json(CONFIG),
            data=to_json(figures),
            assets=assets,
            index=index,
        )
    )


def index_html(rows: list[dict[str, Any]], as_of: str | None, assets: str = ASSETS) -> str:
    """The index page: one row per portfolio (index_row), with its sparkline; the ITD TWR in
    local currencies and the FX effect when any report has them (a row kept from a report
    written before them shows a dash)."""
    return (
        environment()
        .get_template("index.html.j2")
        .render(
            rows=rows,
            as_of=as_of,
            assets=assets,
            config=to_json({"staticPlot": True}),
            fx=any(row.get("several_currencies") for row in rows),
        )
    )


def index_row(figures: dict[str, Any], link: str) -> dict[str, Any]:
    """What the index shows of one report (stored figures, as the report shows them)."""
    key, head = figures["key"], figures["header"]
    return {
        "portfolio_id": head["portfolio_id"],
        "client_id": head["client_id"],
        "as_of": head["as_of"],
        "itd_twr": key["itd_twr"],
        "itd_twr_local": key["itd_twr_local"],
        "itd_fx_effect": key["itd_fx_effect"],
        "several_currencies": figures["several_currencies"],
        "ytd_twr": key["ytd_twr"],
        "one_year_volatility": key["one_year_volatility"],
        "max_drawdown": key["max_drawdown"],
        "link": link,
        "sparkline": to_json(sparkline(figures)),
    }
