"""The edge and the mesh: an API gateway (routing, per-key rate limits, per-route timeouts, aggregation
with partial responses), Envoy-style outlier detection for sidecars, and keep-alive connections with the
proxy's and the backend's idle timers; the mesh's sidecar retries, retry budget, timeouts and canary analysis."""

from .gateway import ApiGateway, Route
from .keepalive import KeepAliveBackend, KeepAlivePool, stale_connection_probability
from .mesh import (
    AppRetries,
    CanaryConfig,
    CanaryRollout,
    EnvoyRetryBudget,
    EnvoyRetryBudgetConfig,
    MeshSidecar,
    canary_exposure,
)
from .outlier import FIVE_XX, OutlierCaller, OutlierDetectionConfig, OutlierDetector

__all__ = ["FIVE_XX", "ApiGateway", "AppRetries", "CanaryConfig", "CanaryRollout", "EnvoyRetryBudget",
           "EnvoyRetryBudgetConfig", "KeepAliveBackend", "KeepAlivePool", "MeshSidecar", "OutlierCaller",
           "OutlierDetectionConfig", "OutlierDetector", "Route", "canary_exposure", "stale_connection_probability"]
