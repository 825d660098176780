"""GET /reports/{portfolio_id}: real API Gateway events through the handler, the reports in
moto's S3 server (conftest's `aws`), and the signed URL fetched over HTTP from that server."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config
from test_lambda_api import auth, call, rest_event, token, use

from lambda_trigger import handler
from lambda_trigger.reports import ReportLinks, ReportSettings, s3_client
from lambda_trigger.settings import Settings
from perf_pipeline.report.writer import S3Sink, latest_key, report_key

BUCKET = "perf-reports-test"
PAGE = b"<!DOCTYPE html><title>P1 as of 2024-06-28</title>"
OLDER = b"<!DOCTYPE html><title>P1 as of 2024-05-31</title>"


@pytest.fixture
def stored(aws: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Reports of P1 (latest and two dates) written by the pipeline's S3 writer, and the
    handler pointed at them."""
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket=BUCKET)
    sink = S3Sink(s3, BUCKET, "reports")
    sink.write(report_key("P1", "2024-06-28"), PAGE)
    sink.write(latest_key("P1"), PAGE)
    sink.write(report_key("P1", "2024-05-31"), OLDER)
    sink.write(latest_key("P9"), PAGE)  # a portfolio the default token may not see
    use(monkeypatch)
    links = ReportLinks(
        ReportSettings(location=f"s3://{BUCKET}/reports", url_ttl_s="120"),
        lambda: s3_client(Settings()),  # the function's own client; AWS_ENDPOINT_URL is moto
    )
    monkeypatch.setattr(handler, "reports", links)
    return s3


def get(path: str, query: dict[str, str] | None = None, headers: dict | None = None):
    return call(
        rest_event("GET", path, query=query, headers=auth() if headers is None else headers)
    )


def fetch(url: str) -> tuple[int, bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read(), answer.headers.get("Content-Type")


def test_latest_report_is_a_signed_url_to_the_stored_page(stored: Any) -> None:
    status, body = get("/reports/P1")
    assert status == 200
    assert body["portfolio_id"] == "P1" and body["date"] == "latest"
    assert body["expires_in"] == 120
    assert "X-Amz-Signature=" in body["url"] and "X-Amz-Expires=120" in body["url"]
    assert fetch(body["url"]) == (200, PAGE, "text/html; charset=utf-8")


def test_report_of_a_date(stored: Any) -> None:
    status, body = get("/reports/P1", {"date": "2024-05-31"})
    assert status == 200 and body["date"] == "2024-05-31"
    assert fetch(body["url"])[1] == OLDER


def test_unknown_and_not_allowed_answer_identically(stored: Any) -> None:
    unknown = get("/reports/P2")  # allowed by the token, no report stored
    foreign = get("/reports/P9")  # stored, not allowed by the token
    no_date = get("/reports/P1", {"date": "2020-01-31"})
    assert unknown == foreign == no_date == (404, {"error": "no such report", "details": []})
    status, body = get("/reports/P9", headers=auth(token(portfolios=["*"])))
    assert status == 200 and fetch(body["url"])[1] == PAGE


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/reports/P1", {"date": "2024-02-30"}, "date"),
        ("/reports/P1", {"day": "2024-02-01"}, "day"),
        ("/reports/" + "x" * 200, None, "portfolio_id"),
    ],
)
def test_bad_requests_name_the_field(stored: Any, path: str, query: Any, field: str) -> None:
    status, body = get(path, query)
    assert status == 400
    assert field in {d["field"] for d in body["details"]}


def test_no_token_is_401_and_other_methods_405(stored: Any) -> None:
    assert get("/reports/P1", headers={})[0] == 401
    assert call(rest_event("DELETE", "/reports/P1", headers=auth()))[0] == 405


def test_missing_location_is_500_misconfigured(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    use(monkeypatch)
    monkeypatch.setattr(handler, "reports", ReportLinks(ReportSettings(), lambda: None))
    status, body = get("/reports/P1")
    assert (status, body["error"]) == (500, "the service is misconfigured")
    assert [set(detail) for detail in body["details"]] == [{"correlation_id"}]  # no cause


def test_unreachable_s3_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port on 127.0.0.1: the S3 call fails to connect."""
    from dagster_services import free_port

    use(monkeypatch)
    dead = f"http://127.0.0.1:{free_port()}"
    links = ReportLinks(
        ReportSettings(location=f"s3://{BUCKET}/reports"),
        lambda: boto3.client(
            "s3",
            endpoint_url=dead,
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
            config=Config(retries={"max_attempts": 1}, connect_timeout=1),
        ),
    )
    monkeypatch.setattr(handler, "reports", links)
    status, body = get("/reports/P1")
    assert status == 503 and body["error"] == "the report store is unavailable"


def test_a_403_on_a_missing_report_is_the_same_404(monkeypatch: pytest.MonkeyPatch) -> None:
    """Real S3 answers HEAD of a missing key with 403 when the role may not list the bucket
    (the template grants GetObject on the reports prefix only). moto enforces no IAM, so the
    answer is stubbed: a fault the emulator cannot make."""
    from botocore.stub import Stubber

    use(monkeypatch)
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    stub.add_client_error("head_object", service_error_code="403", http_status_code=403)
    stub.activate()
    links = ReportLinks(ReportSettings(location=f"s3://{BUCKET}/reports"), lambda: client)
    monkeypatch.setattr(handler, "reports", links)
    status, body = get("/reports/P1")
    assert (status, body["error"]) == (404, "no such report")
