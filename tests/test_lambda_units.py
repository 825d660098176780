"""Unit tests of lambda_trigger's pure parts: validation, auth, settings, packaging rules."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import date
from decimal import Decimal

import jwt
import pytest

from lambda_trigger.auth import Principal, authenticate, bearer_token
from lambda_trigger.dagster_client import RunInfo
from lambda_trigger.errors import (
    BadRequestError,
    ConfigurationError,
    ForbiddenError,
    PayloadTooLargeError,
    UnauthorizedError,
)
from lambda_trigger.metrics_reader import plain, query_arguments
from lambda_trigger.request_status import combined_status
from lambda_trigger.settings import Settings
from lambda_trigger.validation import (
    MetricsQuery,
    parse_calculate_request,
    parse_json_object,
    parse_metrics_query,
    raw_body_bytes,
)

SECRET = "unit-test-secret-" + "0123456789abcdef" * 3


def _token(claims: dict, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


SETTINGS = Settings(jwt_secret=SECRET, jwt_issuer="https://issuer.test/", jwt_audience="perf")


def _key(kid: str | None = None) -> str:
    return SECRET


def _claims(**overrides: object) -> dict:
    now = int(time.time())
    claims = {
        "sub": "alice",
        "iss": SETTINGS.jwt_issuer,
        "aud": SETTINGS.jwt_audience,
        "iat": now,
        "exp": now + 600,
        "portfolios": ["P1", "P2"],
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def test_lambda_trigger_imports_no_dagster() -> None:
    code = (
        "import sys, lambda_trigger.handler;"
        "print(sorted(m for m in sys.modules if m.startswith('dagster')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_settings_defaults_and_overrides() -> None:
    defaults = Settings.from_env({})
    assert (defaults.dagster_location, defaults.dagster_repository, defaults.dagster_job) == (
        "perf_pipeline",
        "__repository__",
        "inputs_job",
    )
    assert defaults.trigger_mode == "graphql"
    assert defaults.dynamodb_table == "performance-metrics"
    custom = Settings.from_env(
        {"TRIGGER_MODE": "SQS", "PERF_SQS_QUEUE_URL": "http://q", "DAGSTER_JOB": "j"}
    )
    assert (custom.trigger_mode, custom.sqs_queue_url, custom.dagster_job) == (
        "sqs",
        "http://q",
        "j",
    )
    with pytest.raises(ConfigurationError):
        Settings.from_env({"TRIGGER_MODE": "kafka"})


def test_default_timeouts_keep_the_worst_request_under_the_function_timeout() -> None:
    """botocore counts total_max_attempts with the first attempt; 2 attempts of (1 + 2) s and
    one backoff of at most 1 s is 7 s a call; two Secrets Manager reads (current, previous)
    14 s; two GraphQL calls of at most 5 s, 10 s: 24 s; GET /metrics stops at 25 s."""
    settings = Settings.from_env({})
    assert settings.aws_call_worst_s() == 2 * (1.0 + 2.0) + 1
    assert settings.worst_case_seconds() == max(2 * 7 + 2 * 5, 2 * 7 + 7, 25.0) == 25.0
    assert settings.worst_case_seconds() < 28  # template.yaml's Timeout, under API Gateway's 29
    assert settings.graphql_read_timeout_s <= settings.graphql_call_timeout_s


def test_valid_calculate_request_generates_request_id_when_absent() -> None:
    request = parse_calculate_request({"portfolio_ids": ["P1", "a.b_c-9"], "as_of": "2024-02-29"})
    assert request.portfolio_ids == ("P1", "a.b_c-9")
    assert request.as_of == date(2024, 2, 29)
    assert len(request.request_id) == 36 and request.request_id.count("-") == 4
    other = parse_calculate_request({"portfolio_ids": ["P1"], "as_of": "2024-02-29"})
    assert other.request_id != request.request_id


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"portfolio_ids", "as_of"}),
        ({"portfolio_ids": "P1", "as_of": "2024-01-01"}, {"portfolio_ids"}),
        ({"portfolio_ids": [], "as_of": "2024-01-01"}, {"portfolio_ids"}),
        (
            {"portfolio_ids": ["P1", 7, "a b"], "as_of": "2024-01-01"},
            {"portfolio_ids[1]", "portfolio_ids[2]"},
        ),
        ({"portfolio_ids": ["x" * 65], "as_of": "2024-01-01"}, {"portfolio_ids[0]"}),
        ({"portfolio_ids": ["P1", "P1"], "as_of": "2024-01-01"}, {"portfolio_ids"}),
        ({"portfolio_ids": ["P1"], "as_of": "2024-02-30"}, {"as_of"}),
        ({"portfolio_ids": ["P1"], "as_of": "20240101"}, {"as_of"}),
        ({"portfolio_ids": ["P1"], "as_of": "2024-1-01"}, {"as_of"}),
        ({"portfolio_ids": ["P1"], "as_of": 20240101}, {"as_of"}),
        ({"portfolio_ids": ["P1"], "as_of": "２０２４-01-01"}, {"as_of"}),
        ({"portfolio_ids": ["P1"], "as_of": "2024-01-01", "request_id": 5}, {"request_id"}),
        ({"portfolio_ids": ["P1"], "as_of": "2024-01-01", "request_id": "a/b"}, {"request_id"}),
        ({"portfolio_ids": ["P1"], "as_of": "2024-01-01", "extra": 1}, {"extra"}),
        (
            {"portfolio_ids": None, "as_of": None, "request_id": []},
            {"portfolio_ids", "as_of", "request_id"},
        ),
    ],
)
def test_invalid_calculate_request_names_each_bad_field(body: dict, fields: set[str]) -> None:
    with pytest.raises(BadRequestError) as info:
        parse_calculate_request(body)
    assert {detail["field"] for detail in info.value.details} == fields


def test_more_than_1000_portfolio_ids_is_413_but_1000_is_fine() -> None:
    ids = [f"P{i}" for i in range(1001)]
    with pytest.raises(PayloadTooLargeError):
        parse_calculate_request({"portfolio_ids": ids, "as_of": "2024-01-01"})
    assert (
        len(
            parse_calculate_request(
                {"portfolio_ids": ids[:1000], "as_of": "2024-01-01"}
            ).portfolio_ids
        )
        == 1000
    )


def test_body_size_limit_is_checked_on_raw_bytes() -> None:
    assert raw_body_bytes("x" * 65536, False) == b"x" * 65536
    with pytest.raises(PayloadTooLargeError):
        raw_body_bytes("x" * 65537, False)
    with pytest.raises(PayloadTooLargeError):
        raw_body_bytes("é" * 40000, False)  # 80,000 bytes in UTF-8, 40,000 characters
    import base64

    with pytest.raises(PayloadTooLargeError):
        raw_body_bytes(base64.b64encode(b"y" * 65537).decode(), True)
    assert raw_body_bytes(base64.b64encode(b"{}").decode(), True) == b"{}"
    with pytest.raises(BadRequestError):
        raw_body_bytes("not base64!", True)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"   ",
        b"{",
        b"[]",
        b'"s"',
        b"1",
        b"null",
        b'{"a": NaN}',
        b'{"a":1,"a":2}',
        b"\xff\xfe",
        b"[" * 10000 + b"]" * 10000,
    ],
)
def test_json_object_parsing_refuses_non_objects(raw: bytes) -> None:
    with pytest.raises(BadRequestError):
        parse_json_object(raw)


def test_json_object_parsing_accepts_an_object() -> None:
    assert parse_json_object(b'{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}


def test_metrics_query_validation() -> None:
    query = parse_metrics_query("portfolio", "P1", {"date": "2024-06-28", "period": "1Y"})
    assert query == MetricsQuery("portfolio", "P1", date(2024, 6, 28), "1Y")
    assert parse_metrics_query("security", "ACC.1:S-1", None) == MetricsQuery(
        "security", "ACC.1:S-1", None, None
    )
    assert parse_metrics_query("cash", "A1:CASH.USD", {"period": "ITD"}) == MetricsQuery(
        "cash", "A1:CASH.USD", None, "ITD"
    )


@pytest.mark.parametrize(
    ("entity_type", "entity_id"),
    [
        ("security", "S1"),  # a security is {account_id}:{security_id}
        ("security", ":S1"),
        ("security", "A1:"),
        ("security", "A1:S1:X"),
        ("security", "A 1:S1"),
        ("security", "A1:" + "S" * 65),
        ("portfolio", "A1:S1"),  # only a security or cash id has two parts
        ("account", "A1:S1"),
        ("cash", "A1"),  # cash is {account_id}:CASH.{currency}
        ("cash", "A1:S1"),
        ("cash", "A1:CASH.usd"),
        ("cash", "A1:CASH.USDX"),
        ("cash", "A1:CASH."),
    ],
)
def test_metrics_entity_id_form_depends_on_entity_type(entity_type: str, entity_id: str) -> None:
    with pytest.raises(BadRequestError) as info:
        parse_metrics_query(entity_type, entity_id, None)
    assert [d["field"] for d in info.value.details] == ["entity_id"]


def test_metrics_security_id_accepts_two_ids_of_64_characters() -> None:
    entity_id = "A" * 64 + ":" + "S" * 64
    assert parse_metrics_query("security", entity_id, None).entity_id == entity_id


def test_metrics_query_validation_names_every_bad_parameter() -> None:
    with pytest.raises(BadRequestError) as info:
        parse_metrics_query("fund", "P 1", {"date": "2024-13-01", "period": "2Y", "x": "1"})
    assert {d["field"] for d in info.value.details} == {
        "entity_type",
        "entity_id",
        "date",
        "period",
        "x",
    }


def test_query_arguments_per_combination() -> None:
    exact = query_arguments("t", MetricsQuery("account", "A1", date(2024, 6, 28), "YTD"))
    assert exact["KeyConditionExpression"] == "#id = :id AND #sk = :sk"
    assert exact["ExpressionAttributeValues"] == {
        ":id": {"S": "account#A1"},
        ":sk": {"S": "2024-06-28#YTD"},
    }
    prefix = query_arguments("t", MetricsQuery("account", "A1", date(2024, 6, 28), None))
    assert "begins_with(#sk, :sk)" in prefix["KeyConditionExpression"]
    assert prefix["ExpressionAttributeValues"][":sk"] == {"S": "2024-06-28#"}
    by_period = query_arguments("t", MetricsQuery("account", "A1", None, "1M"))
    assert by_period["FilterExpression"] == "#tp = :tp"
    assert by_period["ExpressionAttributeValues"][":tp"] == {"S": "1M"}


def test_plain_converts_decimals() -> None:
    value = plain(
        {"a": Decimal("5"), "b": Decimal("0.125"), "c": [Decimal("-2.50")], "d": {Decimal("1")}}
    )
    assert value == {"a": 5, "b": 0.125, "c": [-2.5], "d": [1]}
    assert isinstance(value["a"], int) and isinstance(value["b"], float)
    assert json.loads(json.dumps(value)) == value


def test_authenticate_valid_token_and_portfolios() -> None:
    principal = authenticate(f"Bearer {_token(_claims())}", _key, SETTINGS)
    assert principal == Principal("alice", frozenset({"P1", "P2"}))
    assert principal.allows("P1") and not principal.allows("P3")
    star = authenticate(f"bearer {_token(_claims(portfolios=['*']))}", _key, SETTINGS)
    assert star.portfolios is None and star.allows("anything")
    with pytest.raises(ForbiddenError) as info:
        principal.require(["P1", "P3", "P4"])
    assert [d["issue"] for d in info.value.details] == ["not allowed: P3", "not allowed: P4"]


def test_expiry_leeway_is_30_seconds() -> None:
    now = int(time.time())
    authenticate(f"Bearer {_token(_claims(iat=now - 100, exp=now - 20))}", _key, SETTINGS)
    with pytest.raises(UnauthorizedError, match="expired"):
        authenticate(f"Bearer {_token(_claims(iat=now - 100, exp=now - 40))}", _key, SETTINGS)


def _none_alg_token() -> str:
    import base64

    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(_claims())}."


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic abc",
        "Token x.y.z",
        "Bearer a b",
        "Bearer not-a-jwt",
        pytest.param(
            f"Bearer {_token(_claims(), key='another-key-' + 'x' * 64)}",
            id="other-key",
        ),
        pytest.param(f"Bearer {_token(_claims(), algorithm='HS512')}", id="HS512"),
        pytest.param(f"Bearer {_token(_claims(), algorithm='HS384')}", id="HS384"),
        pytest.param(f"Bearer {_none_alg_token()}", id="alg-none"),
        pytest.param(f"Bearer {_token(_claims(exp=None))}", id="no-exp"),
        pytest.param(f"Bearer {_token(_claims(sub=None))}", id="no-sub"),
        pytest.param(f"Bearer {_token(_claims(portfolios=None))}", id="no-portfolios"),
        pytest.param(f"Bearer {_token(_claims(portfolios='P1'))}", id="portfolios-string"),
        pytest.param(f"Bearer {_token(_claims(portfolios=[1]))}", id="portfolios-int"),
        pytest.param(f"Bearer {_token(_claims(portfolios=['*', 'P1']))}", id="star-plus"),
        pytest.param(
            f"Bearer {_token(_claims(iat=int(time.time()) - 4000, exp=int(time.time()) - 3600))}",
            id="expired",
        ),
    ],
)
def test_bad_tokens_are_401(header: str | None) -> None:
    with pytest.raises(UnauthorizedError) as info:
        authenticate(header, _key, SETTINGS)
    assert SECRET not in info.value.message


def test_tampered_token_is_401() -> None:
    token = _token(_claims())
    header, _payload, signature = token.split(".")
    forged = jwt.encode(_claims(portfolios=["*"]), "x" * 40)
    with pytest.raises(UnauthorizedError):
        authenticate(f"Bearer {header}.{forged.split('.')[1]}.{signature}", _key, SETTINGS)


def test_rs256_token_is_refused() -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(), key, algorithm="RS256")
    with pytest.raises(UnauthorizedError):
        authenticate(f"Bearer {token}", _key, SETTINGS)


def test_secret_is_not_fetched_without_a_bearer_header() -> None:
    def secret(kid: str | None = None) -> str:
        raise AssertionError("secret fetched for a request without a token")

    with pytest.raises(UnauthorizedError):
        authenticate(None, secret, SETTINGS)
    assert bearer_token("Bearer abc") == "abc"


# --- the status of a whole request (inputs run + partition runs) ---------------------------


def _parent(status: str = "SUCCESS", **tags: str) -> RunInfo:
    return RunInfo("p", status, {k.replace("_", "/", 1): v for k, v in tags.items()}, "inputs_job")


def _children(*statuses: str) -> list[RunInfo]:
    return [
        RunInfo(f"c{i}", s, {"perf/parent_run": "p"}, "performance_job")
        for i, s in enumerate(statuses)
    ]


@pytest.mark.parametrize(
    ("parent", "children", "expected"),
    [
        (_parent("QUEUED"), [], "QUEUED"),  # the inputs run itself still waits
        (_parent("STARTED"), [], "STARTED"),
        (_parent("FAILURE"), [], "FAILURE"),
        (_parent("CANCELED"), [], "CANCELED"),
        (_parent(), [], "STARTED"),  # succeeded, not planned yet
        (_parent(perf_partition_runs="0"), [], "SUCCESS"),  # nothing was stale
        (_parent(perf_partition_runs="0", perf_plan_error="as-of after the last"), [], "FAILURE"),
        (_parent(perf_partition_runs="2"), _children("SUCCESS"), "STARTED"),  # one not created
        (_parent(perf_partition_runs="2"), _children("SUCCESS", "QUEUED"), "STARTED"),
        (_parent(perf_partition_runs="2"), _children("FAILURE", "STARTED"), "STARTED"),
        (_parent(perf_partition_runs="2"), _children("FAILURE", "SUCCESS"), "FAILURE"),
        (_parent(perf_partition_runs="2"), _children("CANCELED", "SUCCESS"), "CANCELED"),
        (_parent(perf_partition_runs="2"), _children("CANCELED", "FAILURE"), "FAILURE"),
        (_parent(perf_partition_runs="2"), _children("SUCCESS", "SUCCESS"), "SUCCESS"),
        (_parent(perf_partition_runs="x"), _children("SUCCESS"), "STARTED"),  # unreadable tag
    ],
)
def test_request_status_combines_the_inputs_run_and_its_partition_runs(
    parent: RunInfo, children: list[RunInfo], expected: str
) -> None:
    assert combined_status(parent, children) == expected
