"""The JWT signing secrets: JWT_SECRET, or the current and previous versions of the secret
in Secrets Manager (JWT_SECRET_ARN), chosen by the token header's `kid`.

With JWT_SECRET there is one key; a token must carry no `kid`, or the `kid` "local".
With JWT_SECRET_ARN the secret's SecretString (a plain string, as template.yaml generates it)
is read per version: a token's `kid` is the Secrets Manager VersionId of the version that
signed it (none: the current one). The version staged AWSCURRENT is read on first use; one
staged AWSPREVIOUS is read when a token names a version that is not the current one, so
tokens signed before a rotation stay valid until they expire. When a token names a version
that is neither, the stages are read again (a rotation happened since), at most once per
REFRESH_INTERVAL_S, so forged `kid`s cannot make every request call Secrets Manager.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_trigger.errors import ConfigurationError, ServiceUnavailableError, UnauthorizedError

LOCAL_KEY_ID = "local"
REFRESH_INTERVAL_S = 60.0
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"


class JwtSecretSource:
    """Resolves secrets lazily and caches them per version; never logs or returns them
    anywhere else."""

    def __init__(
        self,
        secret: str | None,
        secret_arn: str | None,
        secretsmanager_client: Callable[[], Any],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secret = secret
        self._secret_arn = secret_arn
        self._client = secretsmanager_client
        self._clock = clock
        self._current: str | None = None  # VersionId of AWSCURRENT
        self._versions: dict[str, str] = {}
        self._previous_read = False
        self._refreshed_at: float | None = None

    def get(self, kid: str | None = None) -> str:
        """The secret `kid` names (None: the current one). UnauthorizedError for a `kid` no
        version answers to; ServiceUnavailableError when Secrets Manager cannot be read."""
        if self._secret is not None:
            if kid not in (None, LOCAL_KEY_ID):
                raise UnauthorizedError("invalid token")
            return self._secret
        if self._current is None:
            self._read(CURRENT)
        if kid is None or kid in self._versions:
            return self._versions[kid or self._current]  # type: ignore[index]
        if not self._previous_read:
            self._previous_read = True
            self._read(PREVIOUS, missing_ok=True)
            if kid in self._versions:
                return self._versions[kid]
        now = self._clock()
        if self._refreshed_at is None or now - self._refreshed_at >= REFRESH_INTERVAL_S:
            self._refreshed_at = now
            self._versions.clear()
            self._read(CURRENT)
            self._read(PREVIOUS, missing_ok=True)
            if kid in self._versions:
                return self._versions[kid]
        raise UnauthorizedError("invalid token")

    def _read(self, stage: str, missing_ok: bool = False) -> None:
        if not self._secret_arn:
            raise ConfigurationError("set JWT_SECRET or JWT_SECRET_ARN")
        try:
            response = self._client().get_secret_value(
                SecretId=self._secret_arn, VersionStage=stage
            )
        except ClientError as exc:
            if missing_ok and exc.response.get("Error", {}).get("Code") == (
                "ResourceNotFoundException"
            ):
                return
            raise ServiceUnavailableError(
                "authentication is unavailable; nothing was done"
            ) from exc
        except BotoCoreError as exc:
            raise ServiceUnavailableError(
                "authentication is unavailable; nothing was done"
            ) from exc
        secret = response.get("SecretString")
        if not secret:
            raise ConfigurationError("the JWT secret has no SecretString")
        self._versions[response["VersionId"]] = secret
        if stage == CURRENT:
            self._current = response["VersionId"]
