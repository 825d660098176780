"""Screenshots of the Dagster UI for the README (docs/img/ui-*.png), taken reproducibly.

    .venv/bin/python scripts/screenshots.py [--out docs/img]

Writes the sample input of `perf-pipeline generate` (its default seed, one year up to
2024-06-28, four portfolios) to a temporary folder, starts a dagster-webserver and
dagster-daemon on 127.0.0.1 over a temporary instance (tests/dagster_services.py), runs
`perf-pipeline run` on that instance, then opens each page in headless Chromium
(tests/chromium.py; Debian's `chromium` package) and saves a PNG of it. A page that logs a
console error or fails a request stops the script. Everything temporary is removed at the
end; the services are stopped even after a failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the service and browser helpers the tests use

from chromium import Browser  # noqa: E402
from dagster_services import PIPELINE_ENV, dagster_services  # noqa: E402

from perf_pipeline.cli import main as cli  # noqa: E402
from perf_pipeline.sample_data import generate  # noqa: E402

PAGES = {
    "ui-lineage": "/assets/performance_metrics?view=lineage&lineageScope=upstream&lineageDepth=4",
    "ui-performance-metrics": "/assets/performance_metrics",
    "ui-partitions": "/assets/performance_metrics?view=partitions",
    "ui-jobs": "/jobs",
    "ui-performance-job-runs": "/locations/perf_pipeline/jobs/performance_job/runs",
    "ui-timeline": "/overview/activity/timeline",
}
"""File name (without .png) -> path of the page on the webserver."""
SETTLE_S = 8.0
"""Seconds a page is given after its load event to fetch and draw its data."""


def take(out: Path, years: float) -> list[Path]:
    """The screenshots of PAGES, written to `out`; their paths."""
    with tempfile.TemporaryDirectory(prefix="perf-screenshots-") as temporary:
        folder = Path(temporary)
        generate(folder / "input", years=years)
        env = {"PERF_INPUT": str(folder / "input"), "PERF_STORE": str(folder / "perf.duckdb")}
        with dagster_services(folder, env) as services:
            os.environ.update({**env, **PIPELINE_ENV, "DAGSTER_HOME": str(services.home)})
            os.environ.pop("PERF_TARGET", None)
            if cli(["run"]) != 0:
                raise SystemExit("perf-pipeline run failed")
            base = services.graphql_url.removesuffix("/graphql")
            written = []
            with Browser(1440, 900) as browser:
                for name, path in PAGES.items():
                    visit = browser.visit(base + path, settle=SETTLE_S, served_from=base)
                    if visit.problems():
                        raise SystemExit(f"{path}: {visit.problems()}")
                    browser.click_button("Skip")  # Dagster's community dialog, first visit
                    browser.screenshot(out / f"{name}.png", whole_page=False)
                    written.append(out / f"{name}.png")
            return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--years", type=float, default=1.0, help="of sample input (default 1)")
    args = parser.parse_args(argv)
    for path in take(args.out, args.years):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
