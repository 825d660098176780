"""Portfolio reports beside the backfill they are drawn from.

    python bench/reports.py --portfolios 1000 --years 5 [--workdir /tmp/perf-bench-reports]

1. writes the input once (bench/pipeline.py's ensure_input: the full root ending on --end,
   and the base root without --end's rows);
2. backfill: `perf-pipeline run --input base --store A` in a child process: wall time;
3. reports: `perf-pipeline report --store A --out R` in a child process: wall time, its
   ratio to the backfill (goal <= 10 %), the portfolios written, the size of one report and
   of the shared script; then the same again, nothing changed (nothing is rebuilt);
4. one more day: `perf-pipeline run --input full` on a copy of A, then the reports again
   into R: wall time and how many reports were rebuilt, against how many portfolios have a
   stored metrics row that A does not hold (DuckDB over both files).

Every measured step is kept in <workdir>/reports-<size>.json: run the script again and the
steps already measured are reused (the stores stay in the workdir), so a run cut short
resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
from pipeline import BIN, copy_store, ensure_input, fresh_store, run_cli


def report_cli(label: str, store: Path, out: Path, log: Path) -> dict:
    """Run `perf-pipeline report` in a child process; wall time and what it printed."""
    command = [
        str(BIN / "perf-pipeline"),
        "report",
        "--target",
        "local",
        "--store",
        str(store),
        "--out",
        str(out),
    ]
    print(f"[{label}] {' '.join(command)}", flush=True)
    loads: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            loads.append(os.getloadavg()[0])

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    sampler.start()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    stop.set()
    sampler.join()
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        sys.exit(f"[{label}] perf-pipeline report failed ({done.returncode}):\n{done.stderr}")
    written = re.search(r"wrote (\d+) report", done.stdout)
    changed = re.search(r"of (\d+) portfolio", done.stdout)
    return {
        "wall": wall,
        "load": sum(loads) / len(loads) if loads else os.getloadavg()[0],
        "written": int(written.group(1)) if written else -1,
        "portfolios": int(changed.group(1)) if changed else -1,
        "stdout": done.stdout[-2000:],
    }


def changed_portfolios(before: Path, after: Path) -> int:
    """Portfolios with a performance_metrics row in `after` that `before` does not hold
    (same date, period and figures), counted by DuckDB over both files."""
    columns = "entity_id, calculation_date, time_period, twr, mwr, volatility, benchmark_twr"
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{before}' AS a (READ_ONLY)")
        con.execute(f"ATTACH '{after}' AS b (READ_ONLY)")
        return con.execute(
            f"SELECT count(DISTINCT entity_id) FROM (SELECT {columns} FROM b.performance_metrics "
            f"WHERE entity_type = 'portfolio' EXCEPT SELECT {columns} FROM a.performance_metrics "
            "WHERE entity_type = 'portfolio')"
        ).fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=100)
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--end", default="2024-07-01", help="the extra business day")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/perf-bench-reports"))
    args = parser.parse_args()
    size = f"{args.portfolios}x{args.years:g}"
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    full, base = work / f"input-{size}-{args.end}", work / f"base-{size}-{args.end}"
    ensure_input(full, base, args.portfolios, args.years, args.end)
    record = work / f"reports-{size}.json"
    done: dict = json.loads(record.read_text()) if record.exists() else {}

    def keep(step: str, value: dict) -> None:
        done[step] = value
        record.write_text(json.dumps(done, indent=1))

    store, plus = work / f"A-{size}.duckdb", work / f"A-plus-day-{size}.duckdb"
    out = work / f"reports-{size}"
    if "backfill" not in done:
        m = run_cli("backfill", ["--input", str(base), "--store", str(fresh_store(store))],
                    work / f"backfill-{size}.log")  # fmt: skip
        keep("backfill", {"wall": m.wall, "load": m.load})
        done.pop("reports", None)
    if "increment" not in done:
        copy_store(store, fresh_store(plus))
        m = run_cli("increment", ["--input", str(full), "--store", str(plus)],
                    work / f"increment-{size}.log")  # fmt: skip
        keep("increment", {"wall": m.wall, "load": m.load})
        done.pop("rebuild", None)
    if "reports" not in done:
        if out.exists():
            subprocess.run(["rm", "-rf", str(out)], check=True)
        keep("reports", report_cli("reports", store, out, work / f"reports-{size}.log"))
        done.pop("unchanged", None)
        done.pop("rebuild", None)
    if "unchanged" not in done:
        keep("unchanged", report_cli("unchanged", store, out, work / f"unchanged-{size}.log"))
    if "rebuild" not in done:
        keep(
            "rebuild",
            {
                **report_cli("rebuild", plus, out, work / f"rebuild-{size}.log"),
                "changed": changed_portfolios(store, plus),
            },
        )

    backfill, reports, rebuild = done["backfill"], done["reports"], done["rebuild"]
    unchanged = done["unchanged"]
    latest = sorted((out / "latest").glob("*.html"))
    one = latest[0].stat().st_size if latest else 0
    script = sum(path.stat().st_size for path in (out / "assets").glob("*"))
    print(f"\n{args.portfolios} portfolios x {args.years:g} years; base input ends the "
          f"business day before {args.end}")  # fmt: skip
    print("| step | wall | figure | goal | load 1 min mean |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| backfill, 1 process | {backfill['wall']:.1f} s | | | {backfill['load']:.2f} |")
    print(
        f"| reports, all {reports['written']} portfolios | {reports['wall']:.1f} s "
        f"| {reports['wall'] / backfill['wall']:.1%} of the backfill | <= 10 % "
        f"| {reports['load']:.2f} |"
    )
    print(
        f"| again, nothing changed | {unchanged['wall']:.1f} s | {unchanged['written']} of "
        f"{unchanged['portfolios']} rebuilt | none | {unchanged['load']:.2f} |"
    )
    print(
        f"| one more day: rebuild | {rebuild['wall']:.1f} s | {rebuild['written']} of "
        f"{rebuild['portfolios']} rebuilt | the {rebuild['changed']} whose stored metrics "
        f"changed | {rebuild['load']:.2f} |"
    )
    index = (out / "index.html").stat().st_size
    name = latest[0].name if latest else "-"
    print(
        f"one 5-year report: {one / 1024:.0f} KiB ({name}); index: {index / 1024:.0f} KiB; "
        f"shared scripts and styles: {script / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
