"""Reading and validating the input files (docs/data.md, "Input layout" and "Bad input")."""

from perf_pipeline.ingest.reading import KINDS, RawFile
from perf_pipeline.ingest.validate import ValidatedInputs, validate_inputs

__all__ = ["KINDS", "RawFile", "ValidatedInputs", "validate_inputs"]
