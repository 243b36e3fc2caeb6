"""Resilience patterns: timeouts, retries with backoff and jitter, breakers, bulkheads, …"""

from .retry import RetryPolicy

__all__ = ["RetryPolicy"]
