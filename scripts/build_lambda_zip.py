"""Build dist/lambda.zip: the lambda_trigger and perf_contract packages plus the runtime
requirements.

Requirements are installed by pip for the Lambda platform (manylinux2014_aarch64, CPython
3.12, binary wheels only) into a temporary directory; the zip is reproducible (sorted
entries, fixed timestamps, no __pycache__). Prints the zip's path and size.

Usage: python scripts/build_lambda_zip.py [--output dist/lambda.zip]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lambda_trigger"
CONTRACT = ROOT / "perf_contract"
REQUIREMENTS = PACKAGE / "requirements.txt"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
EXCLUDED_PARTS = frozenset({"__pycache__"})
EXCLUDED_SUFFIXES = frozenset({".pyc", ".pyo"})


def install_requirements(requirements: Path, target: Path) -> None:
    """pip-install `requirements` for Lambda arm64 / Python 3.12 into `target`."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--platform",
            "manylinux2014_aarch64",
            "--implementation",
            "cp",
            "--python-version",
            "3.12",
            "--only-binary=:all:",
            "--target",
            str(target),
            "-r",
            str(requirements),
        ],
        check=True,
    )


def zip_entries(roots: Iterable[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """(file, archive name) for every file below each (directory, prefix), sorted by name."""
    entries = []
    for directory, prefix in roots:
        for path in directory.rglob("*"):
            relative = path.relative_to(directory)
            if (
                path.is_file()
                and not EXCLUDED_PARTS & set(relative.parts)
                and path.suffix not in EXCLUDED_SUFFIXES
            ):
                entries.append((path, f"{prefix}{relative.as_posix()}"))
    return sorted(entries, key=lambda entry: entry[1])


def write_zip(entries: Sequence[tuple[Path, str]], output: Path) -> int:
    """Write a reproducible zip of `entries` to `output`; its size in bytes."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(output, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path, name in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return output.stat().st_size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "dist" / "lambda.zip")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        dependencies = Path(tmp)
        install_requirements(REQUIREMENTS, dependencies)
        entries = zip_entries(
            [(dependencies, ""), (PACKAGE, "lambda_trigger/"), (CONTRACT, "perf_contract/")]
        )
        size = write_zip(entries, args.output)
    print(f"{args.output}: {size:,} bytes ({size / 1_048_576:.2f} MiB), {len(entries)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
