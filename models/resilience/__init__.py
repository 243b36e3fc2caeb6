"""Resilience patterns: timeouts, retries with backoff and jitter, retry budgets, circuit
breakers, bulkheads, rate limiting and load shedding, hedging, fallbacks — and a Pipeline
that composes them in a documented order around an RPC."""

from .breaker import CircuitBreaker, CircuitBreakerConfig
from .limits import (
    Bulkhead,
    BulkheadConfig,
    LoadShedder,
    LoadShedderConfig,
    RetryBudget,
    RetryBudgetConfig,
    TokenBucket,
    TokenBucketConfig,
)
from .pipeline import BareCaller, Caller, FallbackConfig, HedgeConfig, Pipeline, TimeoutConfig
from .retry import RetryPolicy

__all__ = [
    "BareCaller", "Bulkhead", "BulkheadConfig", "Caller", "CircuitBreaker", "CircuitBreakerConfig",
    "FallbackConfig", "HedgeConfig", "LoadShedder", "LoadShedderConfig", "Pipeline", "RetryBudget",
    "RetryBudgetConfig", "RetryPolicy", "TimeoutConfig", "TokenBucket", "TokenBucketConfig",
]
