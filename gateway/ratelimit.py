"""Token-bucket rate limits: in memory for one replica, in Redis for several.

Every request takes one token from each of its buckets (the person's and the client's) in
one step: if any bucket is empty nothing is taken and the request is refused. In Redis the
step is one Lua script, so replicas racing for the last token cannot both win, and the
clock is the Redis server's (`TIME`), so replicas with drifting clocks agree.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

KEY_PREFIX = "huimin:ratelimit:"


@dataclass(frozen=True)
class Bucket:
    """One bucket to draw from: refilled at `rate` tokens per second, holding `burst`."""

    key: str
    rate: float
    burst: int


@dataclass(frozen=True)
class Decision:
    """The outcome, with the numbers of the tightest bucket for the RateLimit headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until that bucket is full again
    retry_after: int  # seconds until a refused request could pass

    def headers(self) -> dict[str, str]:
        """`RateLimit-*` (draft-ietf-httpapi-ratelimit-headers) and, when refused, Retry-After."""
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class Limiter(Protocol):
    """Draws one token from every bucket, or from none."""

    async def acquire(self, buckets: Sequence[Bucket]) -> Decision:
        """Take a token from each bucket if all have one."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def _decide(buckets: Sequence[Bucket], levels: Sequence[float], allowed: bool) -> Decision:
    # Report the bucket closest to empty: the one the caller should pace itself by.
    index = min(range(len(buckets)), key=lambda i: levels[i] / buckets[i].burst)
    bucket, level = buckets[index], levels[index]
    return Decision(
        allowed=allowed,
        limit=bucket.burst,
        remaining=max(0, math.floor(level)),
        reset=math.ceil((bucket.burst - level) / bucket.rate),
        retry_after=max(1, math.ceil((1.0 - level) / bucket.rate)) if level < 1 else 0,
    )


class MemoryLimiter:
    """Buckets in this process (one replica); the least recently used are forgotten."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def acquire(self, buckets: Sequence[Bucket]) -> Decision:
        """Take a token from each bucket if all have one (no await inside: atomic)."""
        now = time.monotonic()
        levels = []
        for bucket in buckets:
            tokens, stamp = self._buckets.get(bucket.key, (float(bucket.burst), now))
            levels.append(min(float(bucket.burst), tokens + (now - stamp) * bucket.rate))
        allowed = all(level >= 1.0 for level in levels)
        if allowed:
            levels = [level - 1.0 for level in levels]
        for bucket, level in zip(buckets, levels, strict=True):
            self._buckets[bucket.key] = (level, now)
            self._buckets.move_to_end(bucket.key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return _decide(buckets, levels, allowed)

    async def close(self) -> None:
        """Nothing to release."""


# KEYS: one per bucket; ARGV: rate and burst per bucket. Returns {allowed, level...}.
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local levels = {}
local allowed = 1
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or burst
  local ts = tonumber(state[2]) or now
  local level = math.min(burst, tokens + math.max(0, now - ts) * rate)
  if level < 1 then allowed = 0 end
  levels[i] = level
end
for i, key in ipairs(KEYS) do
  local rate = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  if allowed == 1 then levels[i] = levels[i] - 1 end
  redis.call('HSET', key, 'tokens', tostring(levels[i]), 'ts', tostring(now))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
end
local out = {allowed}
for i = 1, #levels do out[i + 1] = tostring(levels[i]) end
return out
"""


class RedisLimiter:
    """Buckets in Redis, shared by every replica pointing at the same server."""

    def __init__(self, url: str) -> None:
        self.redis: Redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self.redis.register_script(_SCRIPT)

    async def acquire(self, buckets: Sequence[Bucket]) -> Decision:
        """Take a token from each bucket if all have one; allow when Redis is down."""
        keys = [KEY_PREFIX + b.key for b in buckets]
        args: list[float] = []
        for bucket in buckets:
            args.extend((bucket.rate, bucket.burst))
        try:
            result = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            # Failing open: a limiter outage must not take the whole API down with it.
            logger.warning("rate limit store unavailable, request allowed: %r", exc)
            return _decide(buckets, [float(b.burst) for b in buckets], True)
        allowed = int(result[0]) == 1
        levels = [float(level) for level in result[1:]]
        return _decide(buckets, levels, allowed)

    async def ping(self) -> None:
        """Raise unless Redis answers."""
        await self.redis.ping()

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()
