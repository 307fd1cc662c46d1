"""The gateway's own Prometheus metrics, beside the shared request metrics on `/metrics`."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.metrics import LATENCY_BUCKETS


class GatewayMetrics:
    """Upstream calls, errors, retries, breaker states and rate-limit refusals."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.upstream_duration = Histogram(
            "gateway_upstream_duration_seconds",
            "Time until the upstream's response headers arrived, in seconds.",
            ["upstream"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Upstream calls that failed, by kind (connect, timeout, disconnect, status_5xx, body).",
            ["upstream", "kind"],
            registry=registry,
        )
        self.retries = Counter(
            "gateway_upstream_retries",
            "Idempotent requests tried again after a connection failure.",
            ["upstream"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "gateway_breaker_state",
            "Circuit breaker per upstream: 0 closed, 1 half-open, 2 open.",
            ["upstream"],
            registry=registry,
        )
        self.breaker_rejections = Counter(
            "gateway_breaker_rejections",
            "Requests refused at once because the upstream's breaker was open.",
            ["upstream"],
            registry=registry,
        )
        self.ratelimit_rejections = Counter(
            "gateway_ratelimit_rejections",
            "Requests refused with 429, by the kind of caller (user, client, anonymous).",
            ["caller"],
            registry=registry,
        )
