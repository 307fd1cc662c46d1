"""Circuit breaker per upstream and the retry budget.

Hand-written on purpose: the maintained breaker libraries (pybreaker, aiobreaker) wrap a
call, but a proxy must judge a streamed response by its status before the body is read,
and the state must be visible as a metric; the logic fits in a few lines.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.IntEnum):
    """Breaker states; the value is what the `gateway_breaker_state` gauge shows."""

    closed = 0
    half_open = 1
    open = 2


class CircuitBreaker:
    """Closed → open after `failures` failures in a row → after `open_seconds` one probe
    (half-open) → closed on its success, open again on its failure."""

    def __init__(
        self,
        failures: int,
        open_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[BreakerState], None] | None = None,
    ) -> None:
        self.failures = failures
        self.open_seconds = open_seconds
        self._clock = clock
        self._on_change = on_change
        self._state = BreakerState.closed
        self._failed = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose time is up reports half-open)."""
        if (
            self._state is BreakerState.open
            and self._clock() - self._opened_at >= self.open_seconds
        ):
            return BreakerState.half_open
        return self._state

    def retry_after(self) -> float:
        """Seconds until an open breaker lets a probe through."""
        return max(0.0, self.open_seconds - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a request may go upstream now (in half-open: only the one probe)."""
        state = self.state
        if state is BreakerState.closed:
            return True
        if state is BreakerState.half_open and not self._probing:
            self._probing = True
            self._set(BreakerState.half_open)
            return True
        return False

    def success(self) -> None:
        """The upstream answered well: close (or stay closed)."""
        self._failed = 0
        self._probing = False
        if self._state is not BreakerState.closed:
            self._set(BreakerState.closed)

    def failure(self) -> None:
        """The upstream failed: count, and open at the threshold or on a failed probe."""
        self._failed += 1
        if self._probing or self._failed >= self.failures:
            self._probing = False
            self._opened_at = self._clock()
            self._set(BreakerState.open)

    def release(self) -> None:
        """A request ended with neither verdict (e.g. the client went away)."""
        self._probing = False

    def _set(self, state: BreakerState) -> None:
        changed = state is not self._state
        self._state = state
        if changed and self._on_change is not None:
            self._on_change(state)


class RetryBudget:
    """Retries may add at most `ratio` of the requests, plus `floor` to start with.

    Each request deposits `ratio` of a token (up to a cap); each retry withdraws one. When an
    upstream fails for everyone, retries stop after the budget is spent instead of doubling
    its load (the approach of Finagle's and Envoy's retry budgets).
    """

    def __init__(self, ratio: float, floor: int) -> None:
        self.ratio = ratio
        self.cap = max(float(floor), 100.0 * ratio)
        self._tokens = float(floor)

    def on_request(self) -> None:
        """Record a first attempt."""
        self._tokens = min(self.cap, self._tokens + self.ratio)

    def try_spend(self) -> bool:
        """Take the budget for one retry, if there is any left."""
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
