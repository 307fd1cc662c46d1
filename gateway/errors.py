"""Problems only a proxy has: the upstream failed (502), is shed (503) or was too slow (504)."""

from __future__ import annotations

from shared.errors import HuiminError, ServiceUnavailable, problem_type


class BadGateway(HuiminError):
    """The upstream could not be reached or gave no valid answer (502)."""

    status = 502
    type = problem_type("bad-gateway")
    title = "Bad Gateway"


class UpstreamUnavailable(ServiceUnavailable):
    """The upstream's circuit breaker is open: refused at once without calling it (503)."""

    type = problem_type("upstream-unavailable")


class GatewayTimeout(HuiminError):
    """The upstream did not answer within the gateway's timeout (504)."""

    status = 504
    type = problem_type("gateway-timeout")
    title = "Gateway Timeout"
