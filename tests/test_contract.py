"""perf_contract: the pipeline accepts what the Lambda sends, and each shared name has one
definition.

The Lambda's run config is checked against the inputs job's own config schema (Dagster's
validator), its SQS body goes through the SQS sensor's parser and message_run, and the run
the sensor asks for carries the run config and portfolio tag the Lambda reads back.
"""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from dagster import build_resources
from dagster._core.system_config.objects import ResolvedRunConfig

from lambda_trigger.triggers import run_config, run_tags, sqs_message
from lambda_trigger.validation import CalculateRequest
from perf_contract import tags
from perf_contract.ids import ENTITY_TYPES, ID_PATTERN, PERIODS
from perf_pipeline.definitions import INPUTS_JOB, build_definitions
from perf_pipeline.sensors.messages import PortfolioPerformance, parse_message
from perf_pipeline.sensors.sqs import message_run

ROOT = Path(__file__).resolve().parents[1]
REQUEST = CalculateRequest(("P1", "a.b_c-9"), date(2024, 6, 28), "req-1")


def test_contract_imports_no_dagster() -> None:
    code = (
        "import sys, perf_contract.tags, perf_contract.ids, perf_contract.messages, "
        "perf_contract.run_config;"
        "print(sorted(m for m in sys.modules if m.startswith('dagster')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_lambda_run_config_is_valid_for_the_inputs_job() -> None:
    job = build_definitions("local").resolve_job_def(INPUTS_JOB)
    config = run_config(REQUEST)
    ResolvedRunConfig.build(job, config)  # raises on a field or type the job does not take
    resource_config = {"run_request": config["resources"]["run_request"]}
    with build_resources(
        {"run_request": job.resource_defs["run_request"]}, resource_config=resource_config
    ) as resources:
        built = resources.run_request
    assert (built.as_of, built.portfolio_ids, built.request_id) == (
        "2024-06-28",
        ["P1", "a.b_c-9"],
        "req-1",
    )


def test_a_run_config_the_job_does_not_know_is_refused() -> None:
    """The check above can fail: a field the resource does not have is an error."""
    job = build_definitions("local").resolve_job_def(INPUTS_JOB)
    wrong = {"resources": {"run_request": {"config": {"as_at": "2024-06-28"}}}}
    with pytest.raises(Exception, match="as_at"):
        ResolvedRunConfig.build(job, wrong)


def test_lambda_sqs_body_is_the_sensors_request() -> None:
    body = json.dumps(sqs_message(REQUEST))
    message = parse_message(body)
    assert message == PortfolioPerformance(
        type="portfolio_performance",
        portfolio_ids=["P1", "a.b_c-9"],
        as_of=date(2024, 6, 28),
        request_id="req-1",
    )
    request = message_run("m-1", message, store=None, log=logging.getLogger("test"))  # type: ignore[arg-type]
    assert request is not None
    assert request.run_config == run_config(REQUEST)  # the same run as a GraphQL launch
    for tag, value in run_tags(REQUEST).items():
        assert request.tags[tag] == value
    assert tags.tagged_portfolio_ids(request.tags) == ("P1", "a.b_c-9")


def test_tag_names_and_values() -> None:
    """Literal values: renaming one breaks runs already in an instance."""
    assert (tags.REQUEST_ID_TAG, tags.PARENT_RUN_TAG, tags.PORTFOLIO_IDS_TAG) == (
        "perf/request_id",
        "perf/parent_run",
        "perf/portfolio_ids",
    )
    assert PERIODS == ("MTD", "QTD", "YTD", "1M", "3M", "6M", "1Y", "3Y", "5Y", "10Y", "ITD")
    assert ENTITY_TYPES == ("portfolio", "account", "security", "cash")
    assert ID_PATTERN == r"[A-Za-z0-9._-]{1,64}"


SHARED_VALUES = {
    *(value for name, value in vars(tags).items() if name.endswith("_TAG")),
    ID_PATTERN,
}


def _assigned_literals(path: Path) -> set[str]:
    """String constants assigned at module level (NAME = "..." or NAME: T = "...")."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        value = getattr(node, "value", None)
        if (
            isinstance(node, ast.Assign | ast.AnnAssign)
            and isinstance(value, ast.Constant)
            and isinstance(value.value, str)
        ):
            found.add(value.value)
    return found


@pytest.mark.parametrize("package", ["lambda_trigger", "perf_pipeline"])
def test_each_shared_name_is_defined_once(package: str) -> None:
    redefined = {
        str(path.relative_to(ROOT)): sorted(_assigned_literals(path) & SHARED_VALUES)
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {path: values for path, values in redefined.items() if values} == {}
