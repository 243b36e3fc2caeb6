"""Observability: what reads the records — RED, SLOs, error budgets and burn-rate alerts."""

from .export import chrome_trace, read_otlp_json, write_chrome_trace, write_otlp_json
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
from .spans import Spans, enable_spans, with_events

__all__ = ["SLO", "BurnRateAlert", "alert_series", "budget_consumed", "burn_rates", "episodes", "red_by",
           "score", "synthetic_requests", "workbook_policy",
           "Spans", "chrome_trace", "enable_spans", "read_otlp_json", "with_events", "write_chrome_trace",
           "write_otlp_json"]
