"""scripts/build_lambda_zip.py: zip layout and reproducibility (pip is not run: no network)."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "build_lambda_zip", ROOT / "scripts" / "build_lambda_zip.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zip_holds_the_package_at_its_root_without_caches(tmp_path: Path) -> None:
    build = _build_module()
    deps = tmp_path / "deps"
    (deps / "jwt" / "__pycache__").mkdir(parents=True)
    (deps / "jwt" / "__init__.py").write_text("X = 1\n")
    (deps / "jwt" / "__pycache__" / "x.cpython-312.pyc").write_bytes(b"\0")
    entries = build.zip_entries(
        [(deps, ""), (build.PACKAGE, "lambda_trigger/"), (build.CONTRACT, "perf_contract/")]
    )
    names = [name for _, name in entries]
    assert names == sorted(names)
    assert "jwt/__init__.py" in names
    assert "lambda_trigger/handler.py" in names
    assert "lambda_trigger/__init__.py" in names
    assert {"perf_contract/tags.py", "perf_contract/messages.py"} <= set(names)
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)

    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    size = build.write_zip(entries, first)
    build.write_zip(entries, second)
    assert size == first.stat().st_size > 0
    assert first.read_bytes() == second.read_bytes()  # reproducible
    with zipfile.ZipFile(first) as zf:
        assert zf.read("lambda_trigger/handler.py") == (build.PACKAGE / "handler.py").read_bytes()
        assert {info.date_time for info in zf.infolist()} == {build.FIXED_TIME}


def test_requirements_name_the_runtime_dependencies_only() -> None:
    lines = [
        line.split("==")[0].lower()
        for line in (ROOT / "lambda_trigger" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert sorted(lines) == ["aws-lambda-powertools", "pydantic", "pyjwt"]
