"""The calculation engine's benchmarks in one run, each beside the library a user would pick.

    python bench/calc.py [repeats]

- risk_metrics_many on 1,000 entities x 2,520 daily returns with a benchmark, against a loop of
  empyrical-reloaded calls over the same columns (goal: ratio >= 3, peak memory < 1 GB);
- xirr_many on 10,000 series of 50 dated flows, against a loop of pyxirr.xirr (goal: ratio > 1,
  a root wherever pyxirr finds one, agreement to 1e-8).
Fixed seeds; best of `repeats` for every timing. Figures are recorded in bench/README.md.
"""

import os
import platform
import sys

import risk_bench  # bench/ is on sys.path when this file runs as a script
import xirr_bench


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f}; best of {repeats}"
    )
    risk = risk_bench.run(repeats)
    print(
        f"risk_metrics_many  {risk['entities']:,} x {risk['days']:,}: "
        f"{risk['ours_s']:.3f} s  empyrical loop {risk['empyrical_s']:.3f} s  "
        f"ratio {risk['ratio']:.2f}x (goal >= 3)  peak "
        f"{risk['peak_memory_bytes'] / 2**20:.0f} MiB (goal < 1024)"
    )
    xirr = xirr_bench.run(repeats)
    print(
        f"xirr_many          {xirr['series']:,} x {xirr['flows_per_series']} flows: "
        f"{xirr['xirr_many_s']:.3f} s  pyxirr loop {xirr['pyxirr_loop_s']:.3f} s  "
        f"ratio {xirr['ratio_pyxirr_over_ours']:.2f}x (goal > 1)"
    )
    print(
        f"                   roots: ours {xirr['roots_ours']:,}, pyxirr "
        f"{xirr['roots_pyxirr']:,}, pyxirr only {xirr['pyxirr_only']}; max rel diff "
        f"{xirr['max_rel_diff']:.1e} (goal <= 1e-8)"
    )


if __name__ == "__main__":
    main()
