"""The JWT signing secret: from JWT_SECRET, or fetched once from Secrets Manager.

With JWT_SECRET_ARN the secret's SecretString (a plain string, as template.yaml generates
it) is fetched on first use and kept for the life of the container.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambda_trigger.errors import ConfigurationError, ServiceUnavailableError


class JwtSecretSource:
    """Resolves the secret lazily and caches it; never logs or returns it anywhere else."""

    def __init__(
        self,
        secret: str | None,
        secret_arn: str | None,
        secretsmanager_client: Callable[[], Any],
    ) -> None:
        self._secret = secret
        self._secret_arn = secret_arn
        self._client = secretsmanager_client

    def get(self) -> str:
        """The secret; ServiceUnavailableError when Secrets Manager cannot be read."""
        if self._secret is None:
            self._secret = self._fetch()
        return self._secret

    def _fetch(self) -> str:
        if not self._secret_arn:
            raise ConfigurationError("set JWT_SECRET or JWT_SECRET_ARN")
        try:
            response = self._client().get_secret_value(SecretId=self._secret_arn)
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailableError(
                "authentication is unavailable; nothing was done"
            ) from exc
        secret = response.get("SecretString")
        if not secret:
            raise ConfigurationError("the JWT secret has no SecretString")
        return secret
