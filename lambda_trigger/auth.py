"""Bearer-token authentication (HS256 JWT) and the portfolio allow-list it carries.

Contract: `Authorization: Bearer <JWT>` signed with HS256 only (alg none, HS384/512 and
asymmetric algorithms are refused). Required claims: `sub`, `iss` (= JWT_ISSUER), `aud`
(= or containing JWT_AUDIENCE), `iat` and `exp`; `nbf` is checked when present; `exp - iat`
may not exceed JWT_MAX_LIFETIME_S; `iat` may not lie in the future; every time check allows
JWT_LEEWAY_S of clock skew. The header's `kid` chooses the signing key (keys.py). The claim
`portfolios` is a list of portfolio ids, or `["*"]` for all. Any failure is
UnauthorizedError (401) with a generic message: neither the token nor the secret is ever put
in an error or a log line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import jwt

from lambda_trigger.errors import ConfigurationError, ForbiddenError, UnauthorizedError
from lambda_trigger.settings import MIN_SECRET_BYTES, Settings
from perf_contract.ids import is_id

ALGORITHMS = ["HS256"]
REQUIRED_CLAIMS = ["sub", "iss", "aud", "iat", "exp"]
WILDCARD = "*"
MAX_TOKEN_CHARS = 8192


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: its subject and the portfolios it may touch.

    `portfolios` is None when the token allows every portfolio (`["*"]`).
    """

    subject: str
    portfolios: frozenset[str] | None

    def allows(self, portfolio_id: str) -> bool:
        """True when the token covers this portfolio."""
        return self.portfolios is None or portfolio_id in self.portfolios

    def allows_all(self, portfolio_ids: Iterable[str]) -> bool:
        """True when the token covers every one of these portfolios."""
        return all(self.allows(pid) for pid in portfolio_ids)

    def require(self, portfolio_ids: Iterable[str]) -> None:
        """Raise ForbiddenError (403) naming every portfolio id the token does not allow
        (ids the caller sent, so naming them tells him nothing new)."""
        denied = sorted({pid for pid in portfolio_ids if not self.allows(pid)})
        if denied:
            raise ForbiddenError(
                "the token does not allow these portfolios",
                [{"field": "portfolio_ids", "issue": f"not allowed: {pid}"} for pid in denied[:20]],
            )


def check_configuration(settings: Settings) -> None:
    """ConfigurationError (every request a 500) without an issuer, an audience, a secret
    source, or with an environment secret shorter than MIN_SECRET_BYTES."""
    if not settings.jwt_issuer or not settings.jwt_audience:
        raise ConfigurationError("JWT_ISSUER and JWT_AUDIENCE must be set")
    if not settings.jwt_secret and not settings.jwt_secret_arn:
        raise ConfigurationError("set JWT_SECRET or JWT_SECRET_ARN")
    if settings.jwt_secret is not None and len(settings.jwt_secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"the JWT secret is shorter than {MIN_SECRET_BYTES} bytes")


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive)."""
    if not authorization:
        raise UnauthorizedError("missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(token) > MAX_TOKEN_CHARS:
        raise UnauthorizedError("malformed Authorization header; expected 'Bearer <token>'")
    return token


def _portfolios_claim(claims: dict) -> frozenset[str] | None:
    value = claims.get("portfolios")
    if value == [WILDCARD]:
        return None
    if not isinstance(value, list) or not all(is_id(item) for item in value):
        raise UnauthorizedError("token claim 'portfolios' must be a list of portfolio ids or ['*']")
    return frozenset(value)


def _numbers(*values: object) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def _key_id(token: str) -> str | None:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.InvalidTokenError as exc:
        raise UnauthorizedError("invalid token") from exc
    if kid is not None and not is_id(kid):
        raise UnauthorizedError("invalid token")
    return kid


def authenticate(
    authorization: str | None, key: Callable[[str | None], str], settings: Settings
) -> Principal:
    """Verify the bearer token in an Authorization header value and return its principal.

    `key(kid)` gives the secret the header's `kid` names (None: the current one); it is
    called only once a well-formed bearer header is present.
    """
    check_configuration(settings)
    token = bearer_token(authorization)
    secret = key(_key_id(token))
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigurationError(f"the JWT secret is shorter than {MIN_SECRET_BYTES} bytes")
    try:
        claims = jwt.decode(
            token,
            key=secret,
            algorithms=ALGORITHMS,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            options={"require": REQUIRED_CLAIMS, "verify_iat": True, "strict_aud": False},
            leeway=settings.jwt_leeway_s,
        )
    except jwt.ExpiredSignatureError as exc:
        raise UnauthorizedError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise UnauthorizedError("invalid token") from exc
    subject, issued, expires = claims.get("sub"), claims.get("iat"), claims.get("exp")
    if not isinstance(subject, str) or not subject or not _numbers(issued, expires):
        raise UnauthorizedError("invalid token")
    if expires - issued > settings.jwt_max_lifetime_s:
        raise UnauthorizedError("token lifetime is longer than allowed")
    return Principal(subject=subject, portfolios=_portfolios_claim(claims))
