"""Observability: what reads the records — RED, SLOs, error budgets and burn-rate alerts."""

from .red import red_by
from .slo import (
    SLO,
    BurnRateAlert,
    alert_series,
    budget_consumed,
    burn_rates,
    episodes,
    score,
    synthetic_requests,
    workbook_policy,
)

__all__ = ["SLO", "BurnRateAlert", "alert_series", "budget_consumed", "burn_rates", "episodes", "red_by",
           "score", "synthetic_requests", "workbook_policy"]
