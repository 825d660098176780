"""The pipeline's backfill, increment, idle rerun and two-worker backfill, in one run.

    python bench/pipeline.py --portfolios 1000 --years 5 [--fx-share 0.33]
                             [--workdir /tmp/perf-bench]

1. writes the input with the sample generator, ending on --end (a business day), once (with
   --fx-share F, round(N x F) of the N portfolios multi-currency), and
   derives the "base" root: the same files minus every row dated on that last day
   (transactions trade_date, prices date, benchmarks date), and those rows as one new file
   per kind (the night's delivery), so base + delivery is the full input;
2. backfill: `perf-pipeline run --input ROOT --store A`, ROOT a copy of the base, in a child
   process, on a Dagster
   instance of its own (DAGSTER_HOME in the workdir, SQLite event log): wall time, peak
   resident memory of the largest process and of the whole process tree, the
   materialization events it wrote and the share of its time spent outside its steps
   (Dagster's bookkeeping: planning, event writes, process start-up); then the I/O floor in
   another process: DuckDB alone reads the same input files and writes the same rows as
   Parquet files;
3. increment: the delivery lands in ROOT, and a copy of store A (its ingest cache with it) is
   run on it: wall time, ratio to the backfill and the partition runs it made; then the same
   run again, with nothing new (no calculation);
4. two workers: `perf-pipeline run --workers 2 --input base --store B` (the multiprocess
   executor): wall time, peaks, ratio to the backfill, and whether A and B hold the same
   daily_valuations and performance_metrics (to 1e-12 relative, ignoring request_id,
   created_at, updated_at);
5. prints every figure beside the issue's goals (at 1,000 portfolios x 5 years: backfill
   <= 3x the floor and <= 4 GiB, increment <= 5 % of the backfill, idle rerun <= 3 %, two
   workers <= 0.6x one, bookkeeping <= 5 %).

The 1-minute load average is sampled every 0.5 s during each measurement (the benchmark's
own processes count in it: about 1 for one process, 2 for two).
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

import perf_pipeline
from perf_pipeline.ingest import KINDS
from perf_pipeline.sample_data import fx_split, generate

BIN = Path(sys.executable).parent
DATE_FIELD = {
    "transactions": "trade_date",
    "prices": "date",
    "benchmarks": "date",
    "fx_rates": "date",
}
IGNORED = ("request_id", "created_at", "updated_at")
COMPARED = ("daily_valuations", "performance_metrics")
PAGE = os.sysconf("SC_PAGE_SIZE")
GIB = 2**30


@dataclass
class Measured:
    """One timed child process: wall seconds, peaks in GiB, load average while it ran."""

    wall: float
    peak_process: float
    peak_tree: float
    load: float
    load_max: float
    stdout: str = ""
    rss_timeline: list[tuple[float, float]] = field(default_factory=list)


def ensure_input(
    full: Path, base: Path, portfolios: int, years: float, end: str, fx_share: float = 0.0
) -> None:
    """The full root (generated, ending on `end`; a share `fx_share` of the portfolios
    multi-currency), the base root without `end`'s rows, and beside the base (``<base>-day``)
    those rows as one new file per kind: what a night delivers."""
    usd, fx = fx_split(portfolios, fx_share)
    marker = full / (f".generated-{portfolios}-{years}-{end}" + (f"-fx{fx}" if fx else ""))
    if not marker.exists():
        started = time.perf_counter()
        counts = generate(full, portfolios=usd, years=years, end=end, fx_portfolios=fx)
        marker.touch()
        print(f"generated {counts} in {time.perf_counter() - started:.1f} s", flush=True)
    base_marker = base / marker.name
    if not base_marker.exists() or not day_root(base).exists():
        dropped = without_day(full, base, end)
        base_marker.touch()
        print(f"base input: the full input minus {dropped} on {end}", flush=True)


def day_root(base: Path) -> Path:
    """The folder of the rows the base leaves out, one file per kind (the next delivery)."""
    return base.with_name(f"{base.name}-day")


def without_day(full: Path, base: Path, day: str) -> dict[str, int]:
    """Copy every input file of `full` to `base`, leaving out the rows dated `day` (the
    other lines are copied byte for byte) and writing them to day_root(base), one file per
    kind; the rows left out per kind."""
    for folder in (base, day_root(base)):
        if folder.exists():
            shutil.rmtree(folder)
    delivered = {}
    for kind in DATE_FIELD:
        target = day_root(base) / kind / f"delivery-{day}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        delivered[kind] = open(target, "w", newline="")  # noqa: SIM115 - closed below
    dropped = dict.fromkeys(DATE_FIELD, 0)
    for source in sorted(full.rglob("*.csv")):
        target = base / source.relative_to(full)
        target.parent.mkdir(parents=True, exist_ok=True)
        kind = source.relative_to(full).parts[0]
        if kind not in DATE_FIELD:
            shutil.copyfile(source, target)
            continue
        with open(source, newline="") as lines, open(target, "w", newline="") as out:
            header = next(lines)
            column = next(csv.reader([header])).index(DATE_FIELD[kind])
            out.write(header)
            if delivered[kind].tell() == 0:
                delivered[kind].write(header)
            for line in lines:
                if next(csv.reader([line]))[column] == day:
                    dropped[kind] += 1
                    delivered[kind].write(line)
                else:
                    out.write(line)
    for kind, handle in delivered.items():
        handle.close()
        if not dropped[kind]:  # e.g. no rates in a single-currency input: no delivery file
            (day_root(base) / kind / f"delivery-{day}.csv").unlink()
    return dropped


def tree_rss(root: int) -> tuple[int, int]:
    """(sum, largest) resident bytes of `root` and its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, largest, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            with open(f"/proc/{pid}/statm") as statm:
                resident = int(statm.read().split()[1]) * PAGE
        except (OSError, IndexError, ValueError):
            continue
        total, largest = total + resident, max(largest, resident)
    return total, largest


def run_cli(label: str, arguments: list[str], log: Path, home: Path) -> Measured:
    """Run `perf-pipeline run ...` in a child process on the Dagster instance in `home` (made
    afresh) and measure it."""
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    command = [str(BIN / "perf-pipeline"), "run", "--target", "local", *arguments]
    print(f"[{label}] {' '.join(command)}", flush=True)
    samples: list[tuple[float, float, float, float]] = []
    started = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        stop = threading.Event()

        def sample() -> None:
            last_print = 0.0
            while not stop.wait(0.5):
                elapsed = time.perf_counter() - started
                rss, largest = (b / GIB for b in tree_rss(child.pid))
                samples.append((elapsed, rss, largest, os.getloadavg()[0]))
                if elapsed - last_print >= 60:
                    last_print = elapsed
                    print(
                        f"[{label}] {elapsed:6.0f} s  tree RSS {rss:5.2f} GiB  "
                        f"load {samples[-1][3]:.2f}",
                        flush=True,
                    )

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        stop.set()
        sampler.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    stdout = log.read_text()
    if child.returncode != 0:
        sys.exit(f"[{label}] perf-pipeline run failed ({child.returncode}):\n{stdout[-3000:]}")
    loads = [load for *_, load in samples] or [os.getloadavg()[0]]
    return Measured(
        wall=wall,
        # getrusage's ru_maxrss (KiB) of the child: the max over its process tree, sampled
        # largest process as a floor for runs shorter than the sampling period
        peak_process=max(
            usage.ru_maxrss * 1024 / GIB, max((p for _, _, p, _ in samples), default=0.0)
        ),
        peak_tree=max((rss for _, rss, _, _ in samples), default=float("nan")),
        load=sum(loads) / len(loads),
        load_max=max(loads),
        stdout=stdout,
        rss_timeline=[(t, rss) for t, rss, _, _ in samples],
    )


def io_floor(root: Path, store: Path, scratch: Path) -> tuple[float, float]:
    """(seconds, mean load) for DuckDB alone to read the input files and write the rows the
    run's store holds (every table), as one Parquet file per table in a fresh folder.

    The rows are first copied, untimed, into an in-memory DuckDB database; the timed part is
    reading the CSV files with DuckDB's reader and writing those tables (and the input) as
    Parquet.
    """
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    con.execute(f"ATTACH '{store}' AS source (READ_ONLY)")
    tables = [
        name
        for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'source'"
        ).fetchall()
    ]
    for name in tables:
        con.execute(f'CREATE TABLE memory."{name}" AS SELECT * FROM source."{name}"')
    con.execute("DETACH source")
    load = [os.getloadavg()[0]]
    started = time.perf_counter()
    for kind in KINDS:
        if not any((root / kind).rglob("*.csv")):  # an optional kind the data set lacks
            continue
        pattern = str(root / kind / "**" / "*.csv")
        con.execute(
            f"COPY (SELECT * FROM read_csv('{pattern}', all_varchar = true)) "
            f"TO '{scratch}/input_{kind}.parquet' (FORMAT parquet, COMPRESSION zstd)"
        )
    for name in tables:
        con.execute(
            f"COPY memory.\"{name}\" TO '{scratch}/{name}.parquet' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
    elapsed = time.perf_counter() - started
    load.append(os.getloadavg()[0])
    con.close()
    shutil.rmtree(scratch, ignore_errors=True)
    return elapsed, sum(load) / len(load)


def bookkeeping(home: Path) -> tuple[int, float, float]:
    """(materialization events, seconds of the runs' wall time outside their steps, the
    runs' wall time) of every run on the instance in `home`: a step's time is from its
    STEP_START to its STEP_SUCCESS or STEP_FAILURE, and overlapping steps count once."""
    from dagster import DagsterEventType, DagsterInstance

    events, outside, total = 0, 0.0, 0.0
    with DagsterInstance.from_config(str(home)) as instance:
        for record in instance.get_run_records():
            run_id = record.dagster_run.run_id
            logs = instance.all_logs(run_id)
            events += sum(
                e.dagster_event is not None
                and e.dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION
                for e in logs
            )
            steps: dict[str, list[float]] = {}
            for entry in logs:
                kind = entry.dagster_event.event_type if entry.dagster_event else None
                if kind == DagsterEventType.STEP_START:
                    steps[entry.step_key] = [entry.timestamp, entry.timestamp]
                elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
                    steps[entry.step_key][1] = entry.timestamp
            start, end = record.start_time, record.end_time
            if start is None or end is None:
                continue
            covered, reach = 0.0, start
            for first, last in sorted(steps.values()):
                first, last = max(first, reach), max(last, reach)
                covered, reach = covered + (last - first), last
            total += end - start
            outside += max(0.0, (end - start) - covered)
    return events, outside, total


def compare_stores(left: Path, right: Path, table: str, rtol: float = 1e-12) -> str:
    """Whether `table` holds the same rows in both stores, ignoring IGNORED columns: rows are
    matched on every non-floating column; floating columns agree when both are null/NaN or
    |a - b| <= rtol * max(|a|, |b|). A line saying what differs (empty when nothing)."""
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{left}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{right}' AS b (READ_ONLY)")
    types = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_catalog = 'a' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    other = {
        name
        for (name,) in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_catalog = 'b' AND table_name = ?",
            [table],
        ).fetchall()
    }
    columns = [(n, t) for n, t in types if n not in IGNORED]
    mismatched = {n for n, _ in columns} ^ (other - set(IGNORED))
    if mismatched:
        return f"{table}: columns differ: {sorted(mismatched)}"
    floats = [n for n, t in columns if t in ("DOUBLE", "FLOAT", "REAL")]
    keys = [n for n, _ in columns if n not in floats]
    counts = [
        con.execute(
            f'SELECT count(*), count(DISTINCT ({", ".join(keys)})) FROM {s}."{table}"'
        ).fetchone()
        for s in ("a", "b")
    ]
    if counts[0] != counts[1] or counts[0][0] != counts[0][1]:
        return f"{table}: rows / distinct keys {counts[0]} vs {counts[1]}"
    on = " AND ".join(f'a."{k}" IS NOT DISTINCT FROM b."{k}"' for k in keys)
    agree = [
        f"(isnan(coalesce(a.\"{f}\", 'nan'::DOUBLE)) AND isnan(coalesce(b.\"{f}\", 'nan'::DOUBLE)))"
        f' OR abs(a."{f}" - b."{f}") <= {rtol} * greatest(abs(a."{f}"), abs(b."{f}"))'
        for f in floats
    ]
    sums = ", ".join(f"count(*) FILTER (WHERE NOT coalesce({cond}, false))" for cond in agree)
    worst = ", ".join(
        f'max(abs(a."{f}" - b."{f}") / nullif(greatest(abs(a."{f}"), abs(b."{f}")), 0))'
        for f in floats
    )
    found = con.execute(
        f'SELECT count(a."{keys[0]}"), count(b."{keys[0]}"), count(*), {sums}, {worst} '
        f'FROM a."{table}" a FULL OUTER JOIN b."{table}" b ON {on}'
    ).fetchone()
    con.close()
    matched, total = found[0] + found[1] - found[2], counts[0][0]
    bad = {f: n for f, n in zip(floats, found[3 : 3 + len(floats)], strict=True) if n}
    worst_rel = max((w for w in found[3 + len(floats) :] if w is not None), default=0.0)
    if matched != total or bad:
        return (
            f"{table}: {total - matched:,} rows unmatched, floating columns differing: "
            f"{bad}, worst relative difference {worst_rel:.1e}"
        )
    print(f"  {table}: {total:,} rows identical (worst relative difference {worst_rel:.1e})")
    return ""


def tables_of(store: Path) -> Path:
    """The Parquet folder beside a local store's DuckDB file."""
    return store.with_name(f"{store.stem}_tables")


def copy_store(source: Path, target: Path) -> None:
    fresh_store(target)
    for suffix in ("", ".wal"):
        origin = Path(f"{source}{suffix}")
        if origin.exists():
            shutil.copyfile(origin, f"{target}{suffix}")
    shutil.copytree(tables_of(source), tables_of(target))


def fresh_store(path: Path) -> Path:
    for suffix in ("", ".wal", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(tables_of(path), ignore_errors=True)
    return path


def partition_runs(stdout: str) -> int:
    found = re.search(r"then (\d+) partition run", stdout)
    return int(found.group(1)) if found else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=100)
    parser.add_argument("--years", type=float, default=5)
    parser.add_argument("--end", default="2024-07-01", help="the extra business day")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/perf-bench"))
    parser.add_argument(
        "--backfill-only",
        action="store_true",
        help="only the backfill and its floor (e.g. 10,000 portfolios x 1 year: memory per shard)",
    )
    parser.add_argument(
        "--fx-share",
        type=float,
        default=0.0,
        help="share of the portfolios in EUR or GBP holding USD and JPY (e.g. 0.33)",
    )
    args = parser.parse_args()
    size = f"{args.portfolios}x{args.years:g}" + (f"-fx{args.fx_share:g}" if args.fx_share else "")
    full, base = args.workdir / f"input-{size}-{args.end}", args.workdir / f"base-{size}-{args.end}"
    print(f"code under test: {Path(perf_pipeline.__file__).parent}", flush=True)
    ensure_input(full, base, args.portfolios, args.years, args.end, args.fx_share)
    store_a, store_b = (fresh_store(args.workdir / f"{name}-{size}.duckdb") for name in "AB")
    store_inc = fresh_store(args.workdir / f"A-plus-day-{size}.duckdb")

    homes = {name: args.workdir / f"dagster-{name}" for name in ("A", "inc", "idle", "B")}
    # the backfill's own root, which the night's delivery then lands in: the ingest cache
    # knows its files by path
    root = args.workdir / f"root-{size}"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root)
    backfill = run_cli(
        "backfill",
        ["--input", str(root), "--store", str(store_a)],
        args.workdir / f"backfill-{size}.log",
        homes["A"],
    )
    print(f"[backfill] {backfill.wall:.1f} s", flush=True)
    # in its own process: the floor holds every table in memory, and a child started later
    # would inherit this process's peak resident size in its getrusage figure
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        floor, floor_load = pool.submit(io_floor, base, store_a, args.workdir / "floor").result()
        events, outside, runs_wall = pool.submit(bookkeeping, homes["A"]).result()
    print(f"[floor] {floor:.1f} s", flush=True)
    if args.backfill_only:
        shards = int(os.environ.get("PERF_SHARDS", "8"))
        print(
            f"| backfill, {args.portfolios:,} portfolios x {args.years:g} years, {shards} shards "
            f"(about {args.portfolios / shards:,.0f} portfolios a shard) | {backfill.wall:.1f} s "
            f"| {backfill.peak_process:.2f} / {backfill.peak_tree:.2f} GiB "
            f"| {backfill.wall / floor:.1f}x the floor ({floor:.1f} s) | {events:,} events, "
            f"{outside / max(runs_wall, 1e-9):.1%} outside steps |"
        )
        return

    copy_store(store_a, store_inc)
    shutil.copytree(day_root(base), root, dirs_exist_ok=True)  # the night's delivery lands
    increment = run_cli(
        "increment",
        ["--input", str(root), "--store", str(store_inc)],
        args.workdir / f"increment-{size}.log",
        homes["inc"],
    )
    print(f"[increment] {increment.wall:.1f} s", flush=True)
    idle = run_cli(
        "nothing new",
        ["--input", str(root), "--store", str(store_inc)],
        args.workdir / f"idle-{size}.log",
        homes["idle"],
    )
    print(f"[nothing new] {idle.wall:.1f} s", flush=True)

    two = run_cli(
        "2 workers",
        ["--workers", "2", "--input", str(base), "--store", str(store_b)],
        args.workdir / f"two-{size}.log",
        homes["B"],
    )
    print(f"[2 workers] {two.wall:.1f} s", flush=True)
    print("A (one worker) vs B (two workers):")
    differences = [line for table in COMPARED if (line := compare_stores(store_a, store_b, table))]
    for line in differences:
        print(f"  {line}")

    with duckdb.connect(str(store_a), read_only=True) as con:
        rows = con.execute("SELECT count(*) FROM daily_valuations").fetchone()[0]
        entities = con.execute(
            "SELECT count(DISTINCT (entity_type, entity_id)) FROM daily_valuations"
        ).fetchone()[0]
    print(
        f"\n{args.portfolios} portfolios x {args.years:g} years: {entities:,} entities, "
        f"{rows:,} valuation rows; base input ends the business day before {args.end}"
    )
    print("peak: largest single process (getrusage) / whole process tree (/proc, 0.5 s)")
    print("| step | wall | peak process / tree | figure | goal | load 1 min mean (max) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for label, m, figure, goal in (
        (
            "backfill, 1 worker",
            backfill,
            f"{backfill.wall / floor:.1f}x the floor",
            "<= 3x, <= 4 GiB",
        ),
        (
            f"increment, +1 day ({partition_runs(increment.stdout)} partition runs)",
            increment,
            f"{increment.wall / backfill.wall:.1%} of backfill",
            "<= 5 %",
        ),
        (
            f"again, nothing new ({partition_runs(idle.stdout)} partition runs)",
            idle,
            f"{idle.wall / backfill.wall:.1%} of backfill",
            "<= 3 %",
        ),
        (
            f"backfill, 2 workers ({partition_runs(two.stdout)} partition runs)",
            two,
            f"{two.wall / backfill.wall:.2f}x one worker",
            "<= 0.6x, identical",
        ),
    ):
        print(
            f"| {label} | {m.wall:.1f} s | {m.peak_process:.2f} / {m.peak_tree:.2f} GiB "
            f"| {figure} | {goal} | {m.load:.2f} ({m.load_max:.2f}) |"
        )
    print(f"| I/O floor (DuckDB alone, Parquet) | {floor:.1f} s | | | | {floor_load:.2f} |")
    print(
        f"backfill bookkeeping: {events:,} materialization events; {outside:.1f} s of the "
        f"runs' {runs_wall:.1f} s outside their steps ({outside / max(runs_wall, 1e-9):.1%}; "
        "goal <= 5 %)"
    )
    print(
        "results of 1 and 2 workers: "
        + ("identical to 1e-12 relative" if not differences else "DIFFERENT")
    )


if __name__ == "__main__":
    main()
