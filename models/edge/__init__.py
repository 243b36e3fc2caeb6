"""The edge and the mesh: an API gateway (routing, per-key rate limits, per-route timeouts, aggregation
with partial responses) and Envoy-style outlier detection for sidecars."""

from .gateway import ApiGateway, Route
from .outlier import FIVE_XX, OutlierCaller, OutlierDetectionConfig, OutlierDetector

__all__ = ["FIVE_XX", "ApiGateway", "OutlierCaller", "OutlierDetectionConfig", "OutlierDetector", "Route"]
