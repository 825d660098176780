"""Bearer-token authentication (HS256 JWT) and the portfolio allow-list it carries.

Contract: `Authorization: Bearer <JWT>` signed with HS256 only (alg none, HS384/512 and
asymmetric algorithms are refused); `exp` and `sub` are required; 30 s of clock leeway;
the claim `portfolios` is a list of portfolio ids, or `["*"]` for all. Any failure is
UnauthorizedError (401) with a generic message: neither the token nor the secret is ever put
in an error or a log line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import jwt

from lambda_trigger.errors import ForbiddenError, UnauthorizedError
from lambda_trigger.validation import is_id

ALGORITHMS = ["HS256"]
LEEWAY_S = 30
WILDCARD = "*"


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

    def require(self, portfolio_ids: Iterable[str]) -> None:
        """Raise ForbiddenError (403) naming every portfolio id the token does not allow."""
        denied = sorted({pid for pid in portfolio_ids if not self.allows(pid)})
        if denied:
            raise ForbiddenError(
                "the token does not allow these portfolios",
                [{"field": "portfolio_ids", "issue": f"not allowed: {pid}"} for pid in denied[:20]],
            )

    def require_all_portfolios(self) -> None:
        """Raise ForbiddenError unless the token allows every portfolio (`["*"]`)."""
        if self.portfolios is not None:
            raise ForbiddenError("only a token for all portfolios may read this")


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive)."""
    if not authorization:
        raise UnauthorizedError("missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise UnauthorizedError("malformed Authorization header; expected 'Bearer <token>'")
    return token


def _portfolios_claim(claims: dict) -> frozenset[str] | None:
    value = claims.get("portfolios")
    if value == [WILDCARD]:
        return None
    if not isinstance(value, list) or not all(is_id(item) for item in value):
        raise UnauthorizedError("token claim 'portfolios' must be a list of portfolio ids or ['*']")
    return frozenset(value)


def authenticate(authorization: str | None, secret: Callable[[], str]) -> Principal:
    """Verify the bearer token in an Authorization header value and return its principal.

    `secret` is called only once a well-formed bearer header is present.
    """
    token = bearer_token(authorization)
    try:
        claims = jwt.decode(
            token,
            key=secret(),
            algorithms=ALGORITHMS,
            options={"require": ["exp", "sub"]},
            leeway=LEEWAY_S,
        )
    except jwt.ExpiredSignatureError as exc:
        raise UnauthorizedError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise UnauthorizedError("invalid token") from exc
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise UnauthorizedError("invalid token")
    return Principal(subject=subject, portfolios=_portfolios_claim(claims))
