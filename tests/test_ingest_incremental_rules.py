"""Every scenario of test_ingest_validate and test_ingest_fx again, through the cached path:
each file's verdict is stored as Parquet, read back and combined, and must equal
validate_inputs table by table.

The scenarios are the validation tests themselves, collected here a second time with their
``validate_inputs`` replaced by a wrapper that runs both paths and compares them.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
import test_ingest_fx as fx_scenarios
import test_ingest_validate as scenarios
from test_ingest_fx import *  # noqa: F403 (the several-currency scenarios, collected again)
from test_ingest_incremental import assert_same
from test_ingest_validate import *  # noqa: F403 (the scenarios, collected again)

from perf_pipeline.ingest import RawFile, ValidatedInputs, validate_inputs
from perf_pipeline.ingest.cache import ValidatedFileCache
from perf_pipeline.ingest.combine import combine
from perf_pipeline.ingest.verdict import validate_files
from perf_pipeline.resources.blobs import LocalBlobs

_serial = itertools.count()


@pytest.fixture(autouse=True)
def through_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory) -> None:
    """validate_inputs in the scenarios: verdicts of the first half of the files are stored
    and read back before the second half is validated, then all are combined."""
    cache = ValidatedFileCache(LocalBlobs(tmp_path_factory.mktemp("cache")))

    def both(files: list[RawFile], today: dt.date, **kwargs) -> ValidatedInputs:
        expected = validate_inputs(files, today, **kwargs)
        half = len(files) // 2
        verdicts = []
        for part in (files[:half], files[half:]):
            for verdict in validate_files(part, **kwargs):
                key = str(next(_serial))
                cache.put(key, verdict)
                verdicts.append(cache.get(key))
        assert_same(combine(verdicts, today), expected)
        return expected

    monkeypatch.setattr(scenarios, "validate_inputs", both)
    monkeypatch.setattr(fx_scenarios, "validate_inputs", both)
