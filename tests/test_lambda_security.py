"""Hostile requests against the trigger Lambda (issue 13), through real API Gateway events.

Each request is sent in graphql mode (a stand-in Dagster on 127.0.0.1 that records every
call) and in sqs mode (moto's SQS server); for each the test asserts the status, that
nothing was launched or queued, and that neither the token nor the secret comes back.
Rotation reads the secret's versions from moto's Secrets Manager.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from test_lambda_api import (
    AUDIENCE,
    ISSUER,
    SECRET,
    VALID,
    FakeDagster,
    auth,
    call,
    dagster,  # noqa: F401  (a fixture)
    rest_event,
    token,
    use,
)

from lambda_trigger import handler
from lambda_trigger.errors import ConfigurationError
from lambda_trigger.settings import Settings

NOW = int(time.time())


def _b64(obj: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(header)}.{_b64(claims)}."


def _claims(**overrides: Any) -> dict[str, Any]:
    claims = {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 600}
    claims["portfolios"] = ["P1", "P2"]
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


_PUBLIC_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=2048)
    .public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
)


def _confused() -> str:
    """Algorithm confusion: an HS256 token whose HMAC key is a public key's PEM, as a
    server that verifies with 'the key' whatever the header says would accept."""
    header = _b64({"alg": "HS256", "typ": "JWT"})
    payload = _b64(_claims(portfolios=["*"]))
    import hashlib
    import hmac

    signature = hmac.new(_PUBLIC_PEM, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _rs256() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(_claims(), key, algorithm="RS256")


FORGED_TOKENS = [
    pytest.param(_unsigned({"alg": "none", "typ": "JWT"}, _claims()), id="alg-none"),
    pytest.param(_unsigned({"alg": "None"}, _claims()), id="alg-None"),
    pytest.param(_confused(), id="alg-confusion-public-key-as-hmac"),
    pytest.param(_rs256(), id="rs256"),
    pytest.param(jwt.encode(_claims(), SECRET, algorithm="HS512"), id="hs512"),
    pytest.param(jwt.encode(_claims(iss="https://evil.test/"), SECRET), id="wrong-iss"),
    pytest.param(jwt.encode(_claims(aud="another-api"), SECRET), id="wrong-aud"),
    pytest.param(jwt.encode(_claims(iat=NOW - 7200, exp=NOW - 3600), SECRET), id="expired"),
    pytest.param(jwt.encode(_claims(nbf=NOW + 600, exp=NOW + 900), SECRET), id="nbf-future"),
    pytest.param(jwt.encode(_claims(iat=NOW + 600, exp=NOW + 900), SECRET), id="iat-future"),
    pytest.param(jwt.encode(_claims(exp=NOW + 365 * 86400), SECRET), id="valid-for-a-year"),
    pytest.param(jwt.encode(_claims(iat=NOW - 100, exp=NOW + 3600), SECRET), id="lifetime-3700s"),
    pytest.param(jwt.encode(_claims(iss=None), SECRET), id="no-iss"),
    pytest.param(jwt.encode(_claims(aud=None), SECRET), id="no-aud"),
    pytest.param(jwt.encode(_claims(iat=None), SECRET), id="no-iat"),
    pytest.param(jwt.encode(_claims(exp=None), SECRET), id="no-exp"),
    pytest.param(jwt.encode(_claims(sub=None), SECRET), id="no-sub"),
    pytest.param(jwt.encode(_claims(iat="yesterday"), SECRET), id="iat-not-a-number"),
    pytest.param(jwt.encode(_claims(), "k" * 64), id="other-secret"),
    pytest.param(jwt.encode(_claims(), SECRET, headers={"kid": "v-unknown"}), id="unknown-kid"),
    pytest.param(jwt.encode(_claims(), SECRET, headers={"kid": "../x"}), id="bad-kid"),
    pytest.param("x" * 9000, id="9000-char-token"),
]


@pytest.fixture
def both(
    aws: str,
    dagster: tuple[FakeDagster, str],  # noqa: F811  (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    """The stand-in Dagster and a moto queue; `mode(name)` switches the handler's settings."""
    fake, url = dagster
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="hostile")["QueueUrl"]

    def mode(name: str, **overrides: Any) -> None:
        if name == "sqs":
            use(monkeypatch, trigger_mode="sqs", sqs_queue_url=queue, **overrides)
        else:
            use(monkeypatch, dagster_graphql_url=url, **overrides)

    yield {"fake": fake, "sqs": sqs, "queue": queue, "mode": mode}


def _nothing_done(both: dict[str, Any]) -> None:
    assert both["fake"].launches() == []
    attributes = both["sqs"].get_queue_attributes(
        QueueUrl=both["queue"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def _no_echo(body: Any, *secrets: str) -> None:
    text = json.dumps(body)
    for secret in (SECRET, *secrets):
        assert secret not in text
        for part in secret.split("."):
            if len(part) > 8:
                assert part not in text


@pytest.mark.parametrize("mode", ["graphql", "sqs"])
@pytest.mark.parametrize("forged", FORGED_TOKENS)
def test_forged_tokens_are_401_and_do_nothing(both: dict[str, Any], mode: str, forged: str) -> None:
    both["mode"](mode)
    status, body = call(
        rest_event("POST", "/calculate", body=json.dumps(VALID), headers=auth(forged))
    )
    assert status == 401
    assert set(body) == {"error", "details"}
    _nothing_done(both)
    _no_echo(body, forged)
    for path in ("/runs/r1", "/metrics/portfolio/P1"):
        assert call(rest_event("GET", path, headers=auth(forged)))[0] == 401


def test_a_valid_token_still_works(both: dict[str, Any]) -> None:
    """The battery above refuses for the reason named, not because every token fails."""
    both["mode"]("graphql")
    assert call(rest_event("POST", "/calculate", body=json.dumps(VALID), headers=auth()))[0] == 202
    lifetime_3600 = jwt.encode(_claims(iat=NOW - 10, exp=NOW + 3590), SECRET)
    body = json.dumps({**VALID, "request_id": "req-2"})
    assert call(rest_event("POST", "/calculate", body=body, headers=auth(lifetime_3600)))[0] == 202
    with_nbf = jwt.encode(_claims(nbf=NOW - 5), SECRET)
    body = json.dumps({**VALID, "request_id": "req-3"})
    assert call(rest_event("POST", "/calculate", body=body, headers=auth(with_nbf)))[0] == 202


ONE = '{"portfolio_ids": ["P1"], "as_of": "2024-06-28"'
HOSTILE_BODIES = [
    pytest.param("{" * 100_000, 413, id="100k-braces"),
    pytest.param(ONE + ', "pad": "' + "x" * 70000 + '"}', 413, id="70KB"),
    pytest.param("[" * 20000 + "]" * 20000, 400, id="deeply-nested"),
    pytest.param(ONE + ', "as_of": "2024-06-27"}', 400, id="duplicate-key"),
    pytest.param('{"portfolio_ids": ["P1"], "as_of": NaN}', 400, id="nan"),
    pytest.param('{"portfolio_ids": ["P1\\u0000"], "as_of": "2024-06-28"}', 400, id="nul-in-id"),
    pytest.param('{"portfolio_ids": ["P1,P3"], "as_of": "2024-06-28"}', 400, id="comma-in-id"),
    pytest.param('{"portfolio_ids": ["*"], "as_of": "2024-06-28"}', 400, id="wildcard-id"),
    pytest.param(ONE + ', "request_id": "' + "r" * 65 + '"}', 400, id="long-request-id"),
    pytest.param('{"portfolio_ids": ["P1"], "as_of": "2099-01-01"}', 400, id="as-of-future"),
    pytest.param('{"portfolio_ids": ["P1"], "as_of": "1900-01-01"}', 400, id="as-of-1900"),
    pytest.param('{"portfolio_ids": ["P3"], "as_of": "2024-06-28"}', 403, id="other-tenant"),
    pytest.param('{"portfolio_ids": ["P1", "P3"], "as_of": "2024-06-28"}', 403, id="one-foreign"),
]


@pytest.mark.parametrize("mode", ["graphql", "sqs"])
@pytest.mark.parametrize(("raw", "expected"), HOSTILE_BODIES)
def test_hostile_bodies_are_refused_and_do_nothing(
    both: dict[str, Any], mode: str, raw: str, expected: int
) -> None:
    both["mode"](mode)
    tok = token()
    status, body = call(rest_event("POST", "/calculate", body=raw, headers=auth(tok)))
    assert status == expected
    assert set(body) == {"error", "details"}
    _nothing_done(both)
    _no_echo(body, tok)
    assert "xxxxxxxx" not in json.dumps(body)  # the caller's text is not reflected


def test_ids_probing_other_tenants_answer_like_missing_ones(both: dict[str, Any]) -> None:
    both["mode"]("graphql")
    star = auth(token(portfolios=["*"], sub="bob"))
    body = json.dumps({"portfolio_ids": ["P3"], "as_of": "2024-06-28", "request_id": "theirs"})
    _, theirs = call(rest_event("POST", "/calculate", body=body, headers=star))
    probes = [
        call(rest_event("GET", f"/runs/{theirs['run_id']}", headers=auth())),
        call(rest_event("GET", "/runs/00000000-0000-4000-8000-000000000000", headers=auth())),
    ]
    assert probes[0] == probes[1] == (404, {"error": "no such run", "details": []})
    # reusing their request_id gets the prober a run of his own, never theirs
    mine = json.dumps({"portfolio_ids": ["P1"], "as_of": "2024-06-28", "request_id": "theirs"})
    status, answer = call(rest_event("POST", "/calculate", body=mine, headers=auth()))
    assert status == 202 and answer["run_id"] != theirs["run_id"]


# --- 4. configuration refused whole, and rotation --------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"jwt_secret": "s" * 31}, id="31-byte-secret"),
        pytest.param({"jwt_secret": "x"}, id="1-byte-secret"),
        pytest.param({"jwt_issuer": None}, id="no-issuer"),
        pytest.param({"jwt_audience": None}, id="no-audience"),
    ],
)
def test_weak_or_incomplete_auth_configuration_refuses_every_request(
    both: dict[str, Any], overrides: dict[str, Any]
) -> None:
    both["mode"]("graphql", **overrides)
    weak = overrides.get("jwt_secret", SECRET)
    tok = jwt.encode(_claims(), weak)
    for headers in (auth(tok), {}):
        status, body = call(
            rest_event("POST", "/calculate", body=json.dumps(VALID), headers=headers)
        )
        assert status == 500
        assert body["error"] == "the service is misconfigured"
        _no_echo(body, tok)
    _nothing_done(both)


def test_short_secret_from_secrets_manager_refuses_requests(
    both: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = boto3.client("secretsmanager").create_secret(Name="short", SecretString="s" * 16)["ARN"]
    both["mode"]("graphql", jwt_secret=None, jwt_secret_arn=arn)
    tok = jwt.encode(_claims(), "s" * 16)
    status, _ = call(rest_event("POST", "/calculate", body=json.dumps(VALID), headers=auth(tok)))
    assert status == 500
    _nothing_done(both)


def test_kid_selects_the_current_or_the_previous_secret(both: dict[str, Any]) -> None:
    secrets = boto3.client("secretsmanager")
    old, new = "old-" + "o" * 40, "new-" + "n" * 40
    created = secrets.create_secret(Name="perf/jwt-rotating", SecretString=old)
    arn, old_version = created["ARN"], created["VersionId"]
    new_version = secrets.put_secret_value(SecretId=arn, SecretString=new)["VersionId"]
    stages = secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]
    assert stages[new_version] == ["AWSCURRENT"] and stages[old_version] == ["AWSPREVIOUS"]
    both["mode"]("graphql", jwt_secret=None, jwt_secret_arn=arn)

    def post(tok: str, request_id: str) -> int:
        body = json.dumps({**VALID, "request_id": request_id})
        return call(rest_event("POST", "/calculate", body=body, headers=auth(tok)))[0]

    assert post(jwt.encode(_claims(), new, headers={"kid": new_version}), "r1") == 202
    assert post(jwt.encode(_claims(), new), "r2") == 202  # no kid: the current secret
    assert post(jwt.encode(_claims(), old, headers={"kid": old_version}), "r3") == 202
    assert post(jwt.encode(_claims(), old), "r4") == 401  # old secret, claimed current
    assert post(jwt.encode(_claims(), new, headers={"kid": old_version}), "r5") == 401
    assert post(jwt.encode(_claims(), new, headers={"kid": "v-unknown"}), "r6") == 401
    assert len(both["fake"].launches()) == 3


def test_unknown_kids_read_secrets_manager_at_most_once_a_minute() -> None:
    from lambda_trigger.jwt_secret import JwtSecretSource

    reads: list[str] = []

    class Client:
        def get_secret_value(self, SecretId: str, VersionStage: str) -> dict[str, str]:  # noqa: N803
            reads.append(VersionStage)
            return {"SecretString": "c" * 40, "VersionId": f"v-{VersionStage}"}

    clock = [0.0]
    source = JwtSecretSource(None, "arn", lambda: Client(), clock=lambda: clock[0])
    assert source.get(None) == "c" * 40
    for _ in range(50):
        with pytest.raises(Exception, match="invalid token"):
            source.get("v-forged")
    assert reads == ["AWSCURRENT", "AWSPREVIOUS", "AWSCURRENT", "AWSPREVIOUS"]
    clock[0] = 61.0
    with pytest.raises(Exception, match="invalid token"):
        source.get("v-forged")
    assert len(reads) == 6


# --- 5. bounded work and replays -------------------------------------------------------


def test_as_of_must_lie_between_the_earliest_date_and_today(both: dict[str, Any]) -> None:
    today = date.today()
    both["mode"]("graphql", earliest_as_of=date(2020, 1, 1))

    def post(as_of: date, request_id: str) -> int:
        body = json.dumps(
            {"portfolio_ids": ["P1"], "as_of": as_of.isoformat(), "request_id": request_id}
        )
        return call(rest_event("POST", "/calculate", body=body, headers=auth()))[0]

    assert post(date(2019, 12, 31), "a") == 400
    assert post(today + timedelta(days=1), "b") == 400
    assert post(date(2020, 1, 1), "c") == 202
    assert post(today, "d") == 202
    both["mode"]("graphql", max_history_days=30)
    assert post(today - timedelta(days=31), "e") == 400
    assert post(today - timedelta(days=30), "f") == 202
    assert len(both["fake"].launches()) == 3


def test_default_earliest_as_of_is_ten_years_back(both: dict[str, Any]) -> None:
    both["mode"]("graphql")
    today = date.today()
    ten = handler.ten_years_before(today)
    assert (ten.year, ten.month) == (today.year - 10, today.month)
    body = json.dumps({"portfolio_ids": ["P1"], "as_of": (ten - timedelta(days=1)).isoformat()})
    assert call(rest_event("POST", "/calculate", body=body, headers=auth()))[0] == 400
    assert handler.ten_years_before(date(2024, 2, 29)) == date(2014, 2, 28)


def test_same_request_id_with_another_body_is_409(both: dict[str, Any]) -> None:
    both["mode"]("graphql")
    first = json.dumps({"portfolio_ids": ["P1"], "as_of": "2024-06-28", "request_id": "rq"})
    assert call(rest_event("POST", "/calculate", body=first, headers=auth()))[0] == 202
    for other in (
        {"portfolio_ids": ["P1", "P2"], "as_of": "2024-06-28", "request_id": "rq"},
        {"portfolio_ids": ["P1"], "as_of": "2024-06-27", "request_id": "rq"},
    ):
        status, body = call(
            rest_event("POST", "/calculate", body=json.dumps(other), headers=auth())
        )
        assert status == 409
        assert "nothing was launched" in body["error"]
    assert call(rest_event("POST", "/calculate", body=first, headers=auth()))[0] == 202
    assert len(both["fake"].launches()) == 1


# --- 8. no upstream text reaches the caller --------------------------------------------


def test_an_unexpected_error_is_a_generic_500(
    both: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    both["mode"]("graphql")

    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("psycopg2 password=hunter2 at db.internal:5432")

    monkeypatch.setattr(handler.dependencies.trigger, "submit", explode)
    status, body = call(rest_event("POST", "/calculate", body=json.dumps(VALID), headers=auth()))
    assert status == 500
    assert body["error"] == "internal error"
    assert "hunter2" not in json.dumps(body) and "psycopg2" not in json.dumps(body)
    assert set(body["details"][0]) == {"correlation_id"}


def test_graphql_error_text_is_not_answered(both: dict[str, Any]) -> None:
    both["mode"]("graphql")
    both["fake"].launch_answer = {"__typename": "PythonError", "message": "Traceback: secret.py"}
    status, body = call(rest_event("POST", "/calculate", body=json.dumps(VALID), headers=auth()))
    assert status == 502
    assert "Traceback" not in json.dumps(body) and "PythonError" not in json.dumps(body)


# --- 1. the GraphQL URL ----------------------------------------------------------------


def _resolver(*addresses: str):
    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        return [(2, 1, 6, "", (address, port)) for address in addresses]

    return resolve


@pytest.mark.parametrize(
    ("url", "addresses", "allowed"),
    [
        ("http://127.0.0.1:3000/graphql", ("127.0.0.1",), True),
        ("http://10.0.3.7:3000/graphql", ("10.0.3.7",), True),
        ("http://internal-dagster.elb.test/graphql", ("10.0.1.5", "10.0.2.5"), True),
        ("https://dagster.example.com/graphql", ("93.184.216.34",), True),
        ("http://dagster.example.com/graphql", ("93.184.216.34",), False),
        ("http://mixed.test/graphql", ("10.0.1.5", "93.184.216.34"), False),
        ("http://8.8.8.8/graphql", ("8.8.8.8",), False),
        ("http://[::ffff:8.8.8.8]/graphql", ("::ffff:8.8.8.8",), False),
        ("ftp://10.0.0.1/graphql", ("10.0.0.1",), False),
    ],
)
def test_plain_http_graphql_url_must_be_private(
    url: str, addresses: tuple[str, ...], allowed: bool
) -> None:
    from lambda_trigger.dagster_client import check_graphql_url

    if allowed:
        check_graphql_url(url, resolve=_resolver(*addresses))
    else:
        with pytest.raises(ConfigurationError):
            check_graphql_url(url, resolve=_resolver(*addresses))


def test_public_http_graphql_url_is_500_and_launches_nothing(
    both: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, dagster_graphql_url="http://8.8.8.8:3000/graphql")
    status, body = call(rest_event("POST", "/calculate", body=json.dumps(VALID), headers=auth()))
    assert (status, body["error"]) == (500, "the service is misconfigured")
    assert "8.8.8.8" not in json.dumps(body)


def test_settings_read_the_security_variables() -> None:
    settings = Settings.from_env(
        {
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "JWT_MAX_LIFETIME_S": "900",
            "API_EARLIEST_AS_OF": "2015-01-01",
            "API_MAX_HISTORY_DAYS": "400",
        }
    )
    assert (settings.jwt_issuer, settings.jwt_audience, settings.jwt_max_lifetime_s) == (
        ISSUER,
        AUDIENCE,
        900,
    )
    assert (settings.earliest_as_of, settings.max_history_days) == (date(2015, 1, 1), 400)
    assert Settings.from_env({}).jwt_max_lifetime_s == 3600
    with pytest.raises(ConfigurationError):
        Settings.from_env({"API_EARLIEST_AS_OF": "yesterday"})
