"""Portfolio reports end to end on the local target: a sample input through `perf-pipeline
run`, then `perf-pipeline report`.

The figure cross-check reads the numbers each report displays from its embedded data
(`<script id="report-data">`) and compares them with performance_metrics and
daily_valuations read straight from the DuckDB file with SQL (not through the report
package), and with figures computed here by hand (statistics.pstdev for the three-year
standard deviation). Headless Chromium renders the index and one report
(test_reports_render_in_chromium).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import statistics
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from chromium import Browser, chromium_path
from dagster import AssetKey, DagsterInstance
from fx_outputs import fx_daily, fx_metrics

from perf_pipeline.cli import main
from perf_pipeline.report.charts import CHARTS
from perf_pipeline.report.data import METRIC_FIELDS, PortfolioData
from perf_pipeline.report.figures import report_figures
from perf_pipeline.report.render import index_html, index_row, report_html
from perf_pipeline.resources.parquet_store import ParquetStore
from perf_pipeline.sample_data import generate

END = "2024-06-28"
PORTFOLIOS = ["P00001", "P00002", "P00003"]
CHANGED = "P00002"


def embedded(page: Path, element_id: str) -> dict:
    """The JSON of one <script type="application/json" id=...> element of a page."""
    found = re.search(
        rf'<script type="application/json" id="{element_id}">(.*?)</script>',
        page.read_text(),
        re.S,
    )
    assert found, f"{page} has no {element_id}"
    return json.loads(found.group(1))


def sql(store: Path, query: str, *params) -> pd.DataFrame:
    with duckdb.connect(str(store), read_only=True) as con:
        return con.execute(query, list(params)).df()


def report(store: Path, out: Path, capsys, *extra: str) -> str:
    assert (
        main(["report", "--store", str(store), "--target", "local", "--out", str(out), *extra]) == 0
    )
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    """Three portfolios over 3.5 years, computed, and their reports written."""
    home = tmp_path_factory.mktemp("reports")
    root, store, out = home / "input", home / "perf.duckdb", home / "reports"
    generate(root, portfolios=len(PORTFOLIOS), years=3.5, end=END, seed=7)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("DAGSTER_HOME", raising=False)
        assert main(["run", "--input", str(root), "--store", str(store), "--target", "local"]) == 0
        args = ["report", "--store", str(store), "--target", "local", "--out", str(out)]
        assert main(args) == 0
    return root, store, out


def portfolio_metrics(store: Path, pid: str) -> pd.DataFrame:
    return sql(
        store,
        "SELECT * FROM performance_metrics WHERE entity_type = 'portfolio' AND entity_id = ? "
        "ORDER BY calculation_date, time_period",
        pid,
    )


def close(a, b, rel: float = 1e-12) -> bool:
    if a is None or b is None or (isinstance(b, float) and math.isnan(b)):
        return a is None and (b is None or (isinstance(b, float) and math.isnan(b)))
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-12)


@pytest.mark.parametrize("pid", PORTFOLIOS)
def test_every_figure_a_report_shows_is_the_stored_one(reported, pid):
    _, store, out = reported
    page = out / "latest" / f"{pid}.html"
    shown = embedded(page, "report-data")
    metrics = portfolio_metrics(store, pid)
    as_of = metrics["calculation_date"].max()
    latest = metrics.loc[metrics["calculation_date"] == as_of].set_index("time_period")
    assert shown["header"]["as_of"] == f"{as_of:%Y-%m-%d}"

    key = shown["key"]
    for name, period, column in [
        ("itd_twr", "ITD", "twr"),
        ("itd_twr_annualized", "ITD", "twr_annualized"),
        ("ytd_twr", "YTD", "twr"),
        ("one_year_twr", "1Y", "twr"),
        ("itd_mwr", "ITD", "mwr"),
        ("one_year_volatility", "1Y", "volatility"),
        ("three_year_volatility", "3Y", "volatility"),
        ("sharpe_ratio", "ITD", "sharpe_ratio"),
        ("max_drawdown", "ITD", "max_drawdown"),
        ("beta", "ITD", "beta"),
        ("tracking_error", "ITD", "tracking_error"),
        ("information_ratio", "ITD", "information_ratio"),
    ]:
        stored = latest[column].get(period, float("nan"))
        assert close(key[name], float(stored)), (name, key[name], stored)

    for row in shown["periods"]:
        stored = latest.loc[row["period"]]
        for column in ("twr", "twr_annualized", "benchmark_twr", "mwr", "volatility", "beta"):
            assert close(row[column], float(stored[column])), (row["period"], column)
        if row["benchmark_twr"] is not None:
            assert close(row["excess_return"], stored["twr"] - stored["benchmark_twr"])
    assert {r["period"] for r in shown["periods"]} >= {"MTD", "YTD", "1Y", "ITD"}

    daily = sql(
        store,
        "SELECT date, market_value, twr_index, sum(inflow - outflow) OVER (ORDER BY date) AS net "
        "FROM daily_valuations WHERE entity_type = 'portfolio' AND entity_id = ? ORDER BY date",
        pid,
    )
    growth = shown["growth"]
    assert growth["portfolio"][0] == 10_000  # the base day, before inception
    np.testing.assert_allclose(growth["portfolio"][1:], 10_000 * daily["twr_index"], rtol=1e-12)
    assert growth["dates"][1:] == [f"{d:%Y-%m-%d}" for d in daily["date"]]
    itd = latest.loc["ITD"]
    # the benchmark line over the same days ends where the stored ITD benchmark return does
    if pd.isna(itd["benchmark_twr"]):
        assert growth["benchmark"] is None and shown["header"]["benchmark_id"] is None
    else:
        end = growth["benchmark"][-1] / 10_000 - 1
        assert end == pytest.approx(itd["benchmark_twr"], rel=1e-9)
    np.testing.assert_allclose(shown["money"]["market_value"], daily["market_value"], rtol=1e-12)
    np.testing.assert_allclose(shown["money"]["net_invested"], daily["net"], rtol=1e-9)

    worst = shown["drawdown"]["worst"][0]
    assert worst["depth"] == pytest.approx(itd["max_drawdown"], rel=1e-9)
    assert shown["drawdown"]["current"] == pytest.approx(
        daily["twr_index"].iloc[-1] / max(1.0, daily["twr_index"].max()) - 1, abs=1e-12
    )

    holdings = sql(
        store,
        "SELECT account_id, security_id, market_value FROM daily_valuations "
        "WHERE portfolio_id = ? AND date = ? AND entity_type IN ('security', 'cash') "
        "ORDER BY ALL",
        pid,
        as_of,
    )
    positions = sorted(
        (h["account_id"], h["security_id"], h["market_value"])
        for h in shown["holdings"]
        if h["security_id"] is not None
    )
    assert [p[2] for p in positions] == pytest.approx(list(holdings["market_value"]), rel=1e-12)


def test_monthly_and_annual_tables_are_the_stored_mtd_and_ytd_rows(reported):
    _, store, out = reported
    pid = "P00001"
    shown = embedded(out / "latest" / f"{pid}.html", "report-data")["monthly"]
    metrics = portfolio_metrics(store, pid)
    mtd = metrics.loc[metrics["time_period"] == "MTD"].copy()
    mtd["month"] = mtd["calculation_date"].dt.strftime("%Y-%m")
    last = mtd.groupby("month").tail(1).set_index("month")
    assert shown["months"] == list(last.index)
    np.testing.assert_allclose(shown["twr"], last["twr"], rtol=1e-12)
    ytd = metrics.loc[metrics["time_period"] == "YTD"]
    years = ytd.groupby(ytd["calculation_date"].dt.year).tail(1)
    assert [a["year"] for a in shown["annual"]] == list(years["calculation_date"].dt.year)
    np.testing.assert_allclose([a["twr"] for a in shown["annual"]], years["twr"], rtol=1e-12)
    # three-year ex-post standard deviation: blank until 36 months, then by hand
    with_sd = [a for a in shown["annual"] if a["sd_3y"] is not None]
    assert with_sd, "the sample should reach 36 months"
    for a in shown["annual"]:
        end = shown["months"].index(a["end"][:7])
        if end < 35:
            assert a["sd_3y"] is None
            continue
        window = list(last["twr"].iloc[end - 35 : end + 1])
        assert a["sd_3y"] == pytest.approx(statistics.pstdev(window) * math.sqrt(12), rel=1e-12)
        bench = list(last["benchmark_twr"].iloc[end - 35 : end + 1])
        assert a["benchmark_sd_3y"] == pytest.approx(
            statistics.pstdev(bench) * math.sqrt(12), rel=1e-12
        )


def test_charts_are_valid_plotly_and_drawn_from_the_embedded_figures(reported):
    _, _, out = reported
    page = out / "latest" / "P00001.html"
    shown = embedded(page, "report-data")
    for name in CHARTS:
        spec = embedded(page, f"spec-{name}")
        figure = go.Figure(spec)  # raises on anything outside Plotly's schema
        assert figure.data and all(len(t.x if t.x is not None else t.z) for t in figure.data)
        assert figure.layout.title.text
    growth = embedded(page, "spec-growth")
    assert growth["data"][0]["y"] == shown["growth"]["portfolio"]
    assert growth["data"][1]["y"] == shown["growth"]["benchmark"]


def test_index_lists_every_portfolio_with_its_stored_figures(reported):
    _, store, out = reported
    text = (out / "index.html").read_text()
    for pid in PORTFOLIOS:
        assert f'href="latest/{pid}.html"' in text
        itd = portfolio_metrics(store, pid).query("time_period == 'ITD'").iloc[-1]
        assert format(itd["twr"], "+.2%") in text
    assert (out / "assets" / "plotly.min.js").stat().st_size > 1_000_000
    assert "cdn" not in text.lower() and "https://" not in text


def test_materialization_shows_summary_and_index(tmp_path, monkeypatch, reported, capsys):
    _, store, _ = reported
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    printed = report(store, tmp_path / "out", capsys)
    index = str((tmp_path / "out" / "index.html").resolve())
    assert f"wrote 3 report(s) of 3 portfolio(s) (0 unchanged); index: {index}" in printed
    with DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(AssetKey("portfolio_reports"))
    metadata = event.asset_materialization.metadata
    assert metadata["index"].value == index
    assert metadata["rebuilt"].value == 3
    summary = metadata["summary"].value
    assert "Best and worst" in summary and "P00001" in summary


def test_only_portfolios_whose_figures_changed_are_rebuilt(reported, tmp_path, capsys, monkeypatch):
    root, store, out = reported
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    store2, out2, root2 = tmp_path / "perf.duckdb", tmp_path / "reports", tmp_path / "input"
    shutil.copyfile(store, store2)
    shutil.copytree(store.with_name(f"{store.stem}_tables"), tmp_path / f"{store2.stem}_tables")
    shutil.copytree(out, out2)
    shutil.copytree(root, root2)
    assert "wrote 0 report(s) of 3 portfolio(s) (3 unchanged)" in report(store2, out2, capsys)
    before = {p: (out2 / "latest" / f"{p}.html").read_bytes() for p in PORTFOLIOS}
    # a deposit into one portfolio a few weeks back
    extra = root2 / "transactions" / "2024" / "zz-correction.csv"
    extra.write_text(
        "transaction_id,portfolio_id,account_id,security_id,trade_date,type,quantity,price,"
        f"amount,fee,currency\nTX-NEW,{CHANGED},{CHANGED}-A1,,2024-06-03,DEPOSIT,,,5000.00,,USD\n"
    )
    args = ["run", "--input", str(root2), "--store", str(store2), "--target", "local"]
    assert main(args) == 0
    capsys.readouterr()
    printed = report(store2, out2, capsys)
    assert "wrote 1 report(s) of 3 portfolio(s) (2 unchanged)" in printed
    for pid in PORTFOLIOS:
        same = (out2 / "latest" / f"{pid}.html").read_bytes() == before[pid]
        assert same == (pid != CHANGED), pid
    flows = embedded(out2 / "latest" / f"{CHANGED}.html", "report-data")["growth"]["flows"]
    assert any(f["date"] == "2024-06-03" and f["amount"] >= 5000 for f in flows)


def test_unknown_portfolio_fails_naming_it(reported, tmp_path, capsys, monkeypatch):
    _, store, _ = reported
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    args = ["report", "--store", str(store), "--out", str(tmp_path), "--portfolio", "NOPE"]
    assert main(args) == 1
    assert "no such portfolio in the portfolios input: NOPE" in capsys.readouterr().err


@pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"), reason="chromium is not installed"
)
def test_reports_render_in_chromium(reported):
    """The index and one report open offline in headless Chromium: no console error, no
    failed request, no request off the machine, every chart drawn with data. With
    REPORT_SCREENSHOTS=<folder> the screenshots are kept there (docs/img for the README)."""
    _, _, out = reported
    keep = os.environ.get("REPORT_SCREENSHOTS")
    pages = {"index": out / "index.html", "report": out / "latest" / "P00001.html"}
    with Browser() as browser:
        for name, page in pages.items():
            visit = browser.visit(page.as_uri())
            assert visit.problems() == [], name
            assert any(r.endswith("assets/plotly.min.js") for r in visit.requests)
            charts = browser.evaluate(
                "Array.from(document.querySelectorAll('[data-spec]')).map(d => "
                "[d.dataset.spec, d.classList.contains('js-plotly-plot') && d.data ? "
                "d.data.map(t => (t.x || t.z || []).length) : null])"
            )
            expected = len(CHARTS) if name == "report" else len(PORTFOLIOS)
            assert len(charts) == expected, name
            for spec, traces in charts:
                assert traces and all(n > 0 for n in traces), f"{name}: {spec} drew no data"
            if keep:
                browser.screenshot(Path(keep) / f"report-{name}.png")
        # the index sorts by a column and filters by id
        browser.visit(pages["index"].as_uri(), settle=0.5)
        itd = browser.evaluate(
            "document.querySelectorAll('th[data-sort]')[2].click();"  # ITD TWR
            "Array.from(document.querySelectorAll('#portfolios tbody tr'))"
            ".map(r => Number(r.cells[3].dataset.value))"
        )
        assert itd == sorted(itd) and len(itd) == len(PORTFOLIOS)
        shown = browser.evaluate(
            "const box = document.getElementById('filter'); box.value = 'p00002';"
            "box.dispatchEvent(new Event('input'));"
            "Array.from(document.querySelectorAll('#portfolios tbody tr'))"
            ".filter(r => !r.hidden).map(r => r.cells[0].dataset.value)"
        )
        assert shown == ["P00002"]


def test_reports_written_to_s3_are_served_by_the_lambda(reported, aws, monkeypatch):
    """The aws target's layout: the writer puts the reports under an S3 prefix of moto's
    server, and GET /reports/{id} answers a URL that fetches exactly the stored page."""
    import urllib.request

    import boto3
    from test_lambda_api import auth, call, rest_event, token, use

    from lambda_trigger import handler
    from lambda_trigger.reports import ReportLinks, ReportSettings, s3_client
    from lambda_trigger.settings import Settings
    from perf_pipeline.report.writer import S3Sink, write_reports

    _, store, _ = reported
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket="assets")
    tables = store.with_name(f"{store.stem}_tables")
    written = write_reports(
        ParquetStore(root=str(tables)),
        pd.read_parquet(tables / "portfolios.parquet"),
        pd.read_parquet(tables / "benchmarks.parquet"),
        S3Sink(s3, "assets", "reports"),
        portfolio_ids=["P00001"],
    )
    assert written.rebuilt == ["P00001"] and written.index == "s3://assets/reports/index.html"
    stored = s3.get_object(Bucket="assets", Key="reports/latest/P00001.html")["Body"].read()
    assert b'id="report-data"' in stored
    use(monkeypatch)
    links = ReportLinks(
        ReportSettings(location="s3://assets/reports"), lambda: s3_client(Settings())
    )
    monkeypatch.setattr(handler, "reports", links)
    as_of = written.figures["P00001"]["header"]["as_of"]
    headers = auth(token(portfolios=["P00001"]))
    status, body = call(
        rest_event("GET", "/reports/P00001", query={"date": as_of}, headers=headers)
    )
    assert status == 200
    with urllib.request.urlopen(body["url"], timeout=10) as answer:
        assert answer.read() == stored


def test_default_location_is_beside_the_store():
    from perf_pipeline.assets.reports import default_location

    assert default_location(ParquetStore(root="/data/x/perf_tables")) == "/data/x/reports"
    s3 = ParquetStore(root="s3://b/_perf_pipeline/assets")
    assert default_location(s3) == "s3://b/reports"


@pytest.mark.skipif(
    chromium_path() is None and not os.environ.get("CI"), reason="chromium is not installed"
)
def test_pdf_of_a_report(reported, tmp_path, capsys, monkeypatch):
    _, store, _ = reported
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    target = tmp_path / "out"
    printed = report(store, target, capsys, "--pdf", "--portfolio", "P00003")
    assert "wrote 1 report(s) of 1 portfolio(s)" in printed
    (pdf,) = (target / "P00003").glob("*.pdf")
    assert pdf.read_bytes().startswith(b"%PDF-") and pdf.stat().st_size > 20_000


def test_ten_years_of_daily_data_stay_under_1_5_mb():
    """A made-up portfolio valued on every business day of ten years, with 30 positions."""
    from perf_pipeline.report.data import METRIC_FIELDS, PortfolioData
    from perf_pipeline.report.figures import TABLE_PERIODS, report_figures
    from perf_pipeline.report.render import report_html

    rng = np.random.default_rng(1)
    days = pd.bdate_range("2014-07-01", "2024-06-28")
    index = np.cumprod(1 + rng.normal(0.0003, 0.01, len(days)))
    daily = pd.DataFrame(
        {
            "date": days,
            "entity_type": "portfolio",
            "market_value": 1e6 * index,
            "inflow": np.where(rng.random(len(days)) < 0.02, 5000.0, 0.0),
            "outflow": 0.0,
            "twr_index": index,
        }
    )
    month_ends = pd.Series(days).groupby(days.to_period("M")).max()
    metrics = pd.DataFrame(
        [
            {
                "calculation_date": day,
                "entity_id": "P1",
                "time_period": period,
                "start_date": days[0],
                "end_date": day,
                "partial_period": False,
                **{name: rng.normal(0.01, 0.05) for name in METRIC_FIELDS[7:]},
            }
            for day in month_ends
            for period in TABLE_PERIODS
        ]
    )
    holdings = pd.DataFrame(
        {
            "entity_type": ["account"] * 2 + ["security"] * 30,
            "account_id": ["A1", "A2"] + ["A1"] * 15 + ["A2"] * 15,
            "security_id": [None, None] + [f"S{i:03d}" for i in range(30)],
            "market_value": rng.uniform(1e4, 1e5, 32),
            "price_age_days": [np.nan, np.nan] + [0.0] * 30,
        }
    )
    bench = pd.Series(100 * index[::-1], index=days).reindex(pd.bdate_range("2014-06-30", days[-1]))
    bench = bench.bfill()  # a close on the base day
    data = PortfolioData(
        portfolio={
            "portfolio_id": "P1",
            "client_id": "C1",
            "base_currency": "USD",
            "benchmark_id": "B1",
        },
        metrics=metrics,
        daily=daily,
        holdings=holdings,
        benchmark=bench,
    )
    figures = report_figures(data)
    assert figures["growth"]["benchmark"] is not None
    page = report_html(figures).encode()
    assert len(days) > 2600
    assert len(page) < 1.5 * 2**20, f"{len(page) / 2**20:.2f} MiB"


def fx_portfolio(several_currencies: bool = True) -> PortfolioData:
    """P1 of tests/fx_outputs.py as the report reads it: its MTD, YTD and ITD rows on
    2024-06-28 (the ITD figures), two days of history, and its holdings (A1, the USD cash,
    S1); without the fields of several currencies when `several_currencies` is False."""
    p1 = fx_metrics().query("entity_id == 'P1'")
    fields = list(dict.fromkeys([*METRIC_FIELDS, "twr_local", "fx_effect"]))
    metrics = pd.concat([p1.assign(time_period=p) for p in ("MTD", "YTD", "ITD")])
    metrics = metrics.reindex(columns=[c for c in fields if c != "entity_type"])
    daily = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-06-27", "2024-06-28"]),
            "portfolio_id": "P1",
            "holding": np.nan,
            "market_value": [1800.0, 1845.18],
            "inflow": [1800.0, 0.0],
            "outflow": 0.0,
            "twr_index": [1.0, 1.0251],
        }
    )
    positions = fx_daily().query("entity_type in ('cash', 'security') and currency == 'USD'")
    account = {"entity_type": "account", "account_id": "A1", "security_id": None}
    account |= {"currency": "EUR", "market_value": 1845.18, "market_value_local": np.nan}
    holdings = pd.concat([positions, pd.DataFrame([account])], ignore_index=True)
    holdings = holdings.assign(date=pd.Timestamp("2024-06-28"), portfolio_id="P1")
    holdings["price_age_days"] = [np.nan, 0.0, np.nan]  # only S1 has a price
    if not several_currencies:
        metrics = metrics.drop(columns=["twr_local", "fx_effect"])
        holdings = holdings.drop(columns=["currency", "market_value_local"])
    portfolio = {"portfolio_id": "P1", "client_id": "C1", "base_currency": "EUR"}
    return PortfolioData(portfolio, metrics, daily, holdings, benchmark=None)


def test_a_report_in_two_currencies_shows_local_return_fx_effect_and_currencies():
    figures = report_figures(fx_portfolio())
    assert figures["several_currencies"]
    [itd] = [p for p in figures["periods"] if p["period"] == "ITD"]
    assert (itd["twr"], itd["twr_local"], itd["fx_effect"]) == (0.875, 0.25, 0.5)
    assert (figures["key"]["itd_twr_local"], figures["key"]["itd_fx_effect"]) == (0.25, 0.5)
    shown = {
        h["security_id"]: (h["currency"], h["market_value_local"], h["market_value"], h["weight"])
        for h in figures["holdings"]
    }
    assert shown == {
        None: ("EUR", None, 1845.18, 1.0),
        "CASH.USD": ("USD", 1000.0, 918.0, pytest.approx(918 / 1845.18, rel=1e-15)),
        "S1": ("USD", 1010.0, 927.18, pytest.approx(927.18 / 1845.18, rel=1e-15)),
    }
    page = report_html(figures)
    periods = re.search(r'<table class="numbers" id="periods">.*?</table>', page, re.S).group(0)
    assert "<th>TWR</th><th>TWR local</th><th>FX effect</th><th>TWR a year</th>" in periods
    itd_row = re.search(r'<th scope="row">ITD</th>.*?</tr>', periods, re.S).group(0)
    assert re.findall(r"<td>([^<]*)</td>", itd_row)[1:4] == ["+87.50%", "+25.00%", "+50.00%"]
    cash = re.search(r"<td>A1</td><td>CASH.USD</td>.*?</tr>", page, re.S).group(0)
    assert re.findall(r"<td>([^<]*)</td>", cash)[2:5] == ["USD", "1,000.00 USD", "918.00 EUR"]
    assert "ITD currency effect</span><strong>+50.00%</strong>" in page
    [year] = figures["monthly"]["annual"]  # the YTD row of 2024-06-28
    assert (year["twr"], year["twr_local"], year["fx_effect"]) == (0.875, 0.25, 0.5)
    annual = re.search(r'<table class="numbers" id="annual">.*?</table>', page, re.S).group(0)
    assert "<th>Portfolio return</th><th>In local currencies</th><th>Currency effect</th>" in annual
    row = re.search(r'<th scope="row">2024.*?</tr>', annual, re.S).group(0)
    assert re.findall(r"<td>([^<]*)</td>", row)[:3] == ["+87.50%", "+25.00%", "+50.00%"]

    # the index: a column each when any report has them; a row kept from a report written
    # before them (its manifest row has no such keys) shows a dash
    before = {
        k: v
        for k, v in index_row(report_figures(fx_portfolio(False)), "P0.html").items()
        if k not in ("itd_twr_local", "itd_fx_effect", "several_currencies")
    }
    index = index_html([index_row(figures, "P1.html"), {**before, "portfolio_id": "P0"}], None)
    assert '<th data-sort="number">ITD TWR local</th><th data-sort="number">ITD FX effect</th>' in (
        index
    )
    p1 = re.search(r'<td data-value="P1">.*?</tr>', index, re.S).group(0)
    assert '<td data-value="0.25">+25.00%</td>' in p1 and '<td data-value="0.5">+50.00%</td>' in p1
    p0 = re.search(r'<td data-value="P0">.*?</tr>', index, re.S).group(0)
    cells = re.findall(r'<td data-value="([^"]*)">(.*?)</td>', p0, re.S)
    assert cells[2][0] == "0.875"  # ITD TWR (after portfolio and client), then the two it lacks
    assert [value for value, _ in cells[3:5]] == ["", ""]
    assert 'class="null"' in cells[3][1] and 'title="no exchange rate"' in cells[4][1]


def test_a_report_without_the_fields_of_several_currencies_leaves_their_columns_out():
    """A store computed before several currencies (or a single-currency one, until calc
    publishes the fields) gives the report it gave before."""
    figures = report_figures(fx_portfolio(several_currencies=False))
    assert not figures["several_currencies"]
    [itd] = [p for p in figures["periods"] if p["period"] == "ITD"]
    assert "twr_local" not in itd and itd["twr"] == 0.875
    page = report_html(figures)
    assert "TWR local" not in page and "currency effect" not in page
    assert "<th>Security</th><th>Market value</th>" in page
    index = index_html([index_row(figures, "P1.html")], None)
    assert "FX effect" not in index and "TWR local" not in index
