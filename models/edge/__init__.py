"""The edge and the mesh: an API gateway (routing, per-key rate limits, per-route timeouts, aggregation
with partial responses), Envoy-style outlier detection for sidecars, and keep-alive connections with the
proxy's and the backend's idle timers."""

from .gateway import ApiGateway, Route
from .keepalive import KeepAliveBackend, KeepAlivePool, stale_connection_probability
from .outlier import FIVE_XX, OutlierCaller, OutlierDetectionConfig, OutlierDetector

__all__ = ["FIVE_XX", "ApiGateway", "KeepAliveBackend", "KeepAlivePool", "OutlierCaller", "OutlierDetectionConfig",
           "OutlierDetector", "Route", "stale_connection_probability"]
