"""Pure performance calculations (docs/methodology.md): numpy, pandas and scipy only, no Dagster.

Scalar forms for one entity, and many-entity forms that do the same work for thousands of
entities in one vectorized pass. A null figure is NaN, never inf; empty or degenerate input
gives NaN (or 0 where docs/methodology.md says so), never an exception; an unknown timing or period
name raises ValueError.
"""

from perf_pipeline.calc.dietz import modified_dietz, modified_dietz_many
from perf_pipeline.calc.fx import conversion_rates
from perf_pipeline.calc.holdings import positions
from perf_pipeline.calc.performance import METRIC_COLUMNS, performance_metrics
from perf_pipeline.calc.periods import PERIODS, annualize, calculation_dates, period_bounds
from perf_pipeline.calc.returns import (
    TIMINGS,
    daily_returns,
    daily_returns_array,
    linked_return,
    performance_index,
)
from perf_pipeline.calc.risk import (
    RISK_METRICS,
    drawdown_details,
    drawdowns_many,
    max_drawdown,
    risk_metrics,
    risk_metrics_array,
    risk_metrics_many,
)
from perf_pipeline.calc.valuation import (
    ValuationPanel,
    ValuationState,
    panel_from_frame,
    state_from_closing,
    value_entities,
)
from perf_pipeline.calc.xirr import xirr, xirr_many, xirr_many_detailed

__all__ = [
    "METRIC_COLUMNS",
    "PERIODS",
    "RISK_METRICS",
    "TIMINGS",
    "ValuationPanel",
    "ValuationState",
    "annualize",
    "calculation_dates",
    "conversion_rates",
    "daily_returns",
    "daily_returns_array",
    "drawdown_details",
    "drawdowns_many",
    "linked_return",
    "max_drawdown",
    "modified_dietz",
    "modified_dietz_many",
    "panel_from_frame",
    "performance_index",
    "performance_metrics",
    "period_bounds",
    "positions",
    "risk_metrics",
    "risk_metrics_array",
    "risk_metrics_many",
    "state_from_closing",
    "value_entities",
    "xirr",
    "xirr_many",
    "xirr_many_detailed",
]
