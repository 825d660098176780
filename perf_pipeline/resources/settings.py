"""Settings of a deployment and of a single run."""

from __future__ import annotations

import math

from dagster import ConfigurableResource
from pydantic import Field


class CalculationSettings(ConfigurableResource):
    """Conventions of the calculations that a deployment may change."""

    risk_free_rate: str = Field(
        default="0",
        description="Annual risk-free rate as a decimal, e.g. 0.02 (PERF_RISK_FREE_RATE).",
    )
    timing: str = Field(
        default="bod_in_eod_out",
        description="Flow timing of daily returns: bod_in_eod_out, start or end.",
    )
    fx_pivot: str = Field(
        default="USD",
        description="The currency cross rates go through when a pair and its inverse have no "
        "rate (PERF_FX_PIVOT).",
    )

    def annual_risk_free_rate(self) -> float:
        """The rate as a float; a clear error when it is not a finite number above -1."""
        try:
            rate = float(self.risk_free_rate)
        except ValueError:
            rate = math.nan
        if not math.isfinite(rate) or rate <= -1:
            raise ValueError(
                f"PERF_RISK_FREE_RATE must be a number above -1, not {self.risk_free_rate!r}"
            )
        return rate

    def fingerprint(self) -> str:
        """The settings as text: a change of any of them makes every partition stale."""
        return (
            f"timing={self.timing};risk_free_rate={self.annual_risk_free_rate()!r};"
            f"fx_pivot={self.fx_pivot}"
        )


class RunRequest(ConfigurableResource):
    """What one run is asked to do: set per run in run config (CLI, sensors, Lambda)."""

    as_of: str | None = Field(
        default=None,
        description="Value up to this date (YYYY-MM-DD); default: the latest date in the input.",
    )
    portfolio_ids: list[str] | None = Field(
        default=None,
        description="Compute only these portfolios; default: all of them.",
    )
    request_id: str | None = Field(
        default=None,
        description="The API or message request id; stored in request_id (default: the run id).",
    )
