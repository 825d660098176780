"""The run config of the ``run_request`` resource, which carries a request into a run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

RUN_REQUEST_RESOURCE = "run_request"


def run_request_config(
    *,
    as_of: str | None = None,
    portfolio_ids: Sequence[str] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """``{"resources": {"run_request": {"config": {...}}}}`` with the fields given (as_of
    YYYY-MM-DD, portfolio_ids a list, request_id); unset fields keep the resource's defaults."""
    config: dict[str, Any] = {
        "as_of": as_of,
        "request_id": request_id,
        "portfolio_ids": list(portfolio_ids) if portfolio_ids else None,
    }
    return {
        "resources": {
            RUN_REQUEST_RESOURCE: {
                "config": {name: value for name, value in config.items() if value is not None}
            }
        }
    }
