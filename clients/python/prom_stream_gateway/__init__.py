"""Send Prometheus measurements to prom-stream-gateway in one Redis round trip per invocation.

Measurements are buffered in memory; flush() sends one LPUSH per shard (per queue key
without shards), each element a JSON array of samples, split only above
max_element_bytes. A Redis failure is never raised into the application: it is counted
(failures), passed to on_error, and the buffer is dropped.
"""
from __future__ import annotations

import atexit
import functools
import inspect
import json
import math
import time
import zlib
from typing import Any, Callable, Iterable, Mapping, Optional

__all__ = ["Metrics", "AsyncMetrics", "connect", "shard_of", "DEFAULT_KEY"]

DEFAULT_KEY = "prom-stream-gateway:metric-queue"
DEFAULT_MAX_ELEMENT_BYTES = 512 * 1024


def shard_of(name: str, shards: int) -> int:
    """crc32(name) mod shards (IEEE CRC-32), as `gateway shard-of`."""
    return zlib.crc32(name.encode("utf-8")) % shards if shards > 0 else 0


def connect(url: str = "redis://127.0.0.1:6379/0", timeout: float = 0.5):
    """A redis-py client with bounded connect and read/write time-outs (seconds)."""
    import redis
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class _Buffer:
    def __init__(self, key: str, shards: int, max_element_bytes: int, on_error: Optional[Callable[[BaseException], None]]):
        self.key = key
        self.shards = max(0, int(shards))
        self.max_element_bytes = max(1024, int(max_element_bytes))
        self.on_error = on_error
        self.samples: dict[int, list[str]] = {}
        self.count = 0
        self.failures = 0
        self.invalid = 0
        self._shard_cache: dict[str, int] = {}

    # Recording ---------------------------------------------------------------

    def _finite(self, value: float) -> bool:
        """JSON cannot carry NaN or ±Inf: such a measurement is dropped and counted."""
        if math.isfinite(value):
            return True
        self.invalid += 1
        return False

    def _add(self, name: str, body: str) -> None:
        shard = 0
        if self.shards:
            shard = self._shard_cache.get(name)
            if shard is None:
                shard = self._shard_cache[name] = shard_of(name, self.shards)
        self.samples.setdefault(shard, []).append(body)
        self.count += 1

    @staticmethod
    def _labels(labels: Optional[Mapping[str, Any]]) -> str:
        if not labels:
            return ""
        return ',"labels":' + _dumps({str(k): ("true" if v is True else "false" if v is False else str(v)) for k, v in labels.items()})

    def counter(self, name: str, value: float = 1, labels: Optional[Mapping[str, Any]] = None) -> None:
        value = float(value)
        if self._finite(value):
            self._add(name, '{"type":"counter","name":%s,"value":%s%s}' % (_dumps(name), _dumps(value), self._labels(labels)))

    def gauge(self, name: str, value: float, labels: Optional[Mapping[str, Any]] = None) -> None:
        value = float(value)
        if self._finite(value):
            self._add(name, '{"type":"gauge","name":%s,"value":%s%s}' % (_dumps(name), _dumps(value), self._labels(labels)))

    def histogram(self, name: str, value: float, buckets: Iterable[float], labels: Optional[Mapping[str, Any]] = None) -> None:
        value = float(value)
        if self._finite(value):
            b = [float(x) for x in buckets if math.isfinite(float(x))]
            self._add(name, '{"type":"histogram","name":%s,"value":%s,"buckets":%s%s}' % (_dumps(name), _dumps(value), _dumps(b), self._labels(labels)))

    def summary(self, name: str, value: float, objectives: Optional[Mapping[float, float]] = None,
                labels: Optional[Mapping[str, Any]] = None) -> None:
        """objectives: {quantile: epsilon}, e.g. {0.5: 0.05, 0.99: 0.001}."""
        value = float(value)
        if not self._finite(value):
            return
        q = ""
        if objectives:
            items = sorted(objectives.items())
            q = ',"quantiles":%s,"epsilons":%s' % (_dumps([float(k) for k, _ in items]), _dumps([float(v) for _, v in items]))
        self._add(name, '{"type":"summary","name":%s,"value":%s%s%s}' % (_dumps(name), _dumps(value), q, self._labels(labels)))

    # Sending -----------------------------------------------------------------

    def _take(self) -> tuple[int, list[tuple[str, list[str]]]]:
        samples, count = self.samples, self.count
        self.samples, self.count = {}, 0
        out = []
        for shard, items in samples.items():
            key = f"{self.key}:{{{shard}}}" if self.shards else self.key
            out.append((key, self._elements(items)))
        return count, out

    def _elements(self, items: list[str]) -> list[str]:
        out, current, size = [], [], 2
        for s in items:
            n = len(s.encode("utf-8")) + 1
            if current and size + n > self.max_element_bytes:
                out.append("[" + ",".join(current) + "]")
                current, size = [], 2
            current.append(s)
            size += n
        if current:
            out.append("[" + ",".join(current) + "]")
        return out

    def _failed(self, error: BaseException) -> int:
        self.failures += 1
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:  # the callback must not break the application either
                pass
        return 0


class Metrics(_Buffer):
    """For redis-py's synchronous client (redis.Redis, redis.RedisCluster).

        with Metrics(r) as m:          # flushes on exit
            m.counter("jobs_total", 1, {"queue": "mail"})

        @m.flush_after                 # a Lambda handler: flushes after every call
        def handler(event, context): ...
    """

    def __init__(self, redis_client, key: str = DEFAULT_KEY, shards: int = 0, max_element_bytes: int = DEFAULT_MAX_ELEMENT_BYTES,
                 on_error: Optional[Callable[[BaseException], None]] = None, auto_flush: bool = True):
        super().__init__(key, shards, max_element_bytes, on_error)
        self.redis = redis_client
        if auto_flush:
            atexit.register(self.flush)

    def flush(self) -> int:
        """Sends what is buffered; returns the number of samples sent (0 on failure)."""
        if not self.count:
            return 0
        count, batches = self._take()
        try:
            if len(batches) == 1:
                self.redis.lpush(batches[0][0], *batches[0][1])
            else:
                pipe = self.redis.pipeline(transaction=False)   # one round trip for every shard
                for key, elements in batches:
                    pipe.lpush(key, *elements)
                pipe.execute()
            return count
        except Exception as e:  # noqa: BLE001 — never into the application
            return self._failed(e)

    def time(self, name: str, buckets: Iterable[float], labels: Optional[Mapping[str, Any]] = None):
        """A context manager observing its block's wall time in seconds into histogram `name`."""
        metrics = self

        class _Timer:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                metrics.histogram(name, time.perf_counter() - self.start, buckets, labels)
                return False
        return _Timer()

    def flush_after(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            finally:
                self.flush()
        return wrapper

    def __enter__(self) -> "Metrics":
        return self

    def __exit__(self, *exc) -> bool:
        self.flush()
        return False


class AsyncMetrics(_Buffer):
    """For redis-py's asyncio client (redis.asyncio.Redis): `await m.flush()`, `async with`."""

    def __init__(self, redis_client, key: str = DEFAULT_KEY, shards: int = 0, max_element_bytes: int = DEFAULT_MAX_ELEMENT_BYTES,
                 on_error: Optional[Callable[[BaseException], None]] = None):
        super().__init__(key, shards, max_element_bytes, on_error)
        self.redis = redis_client

    async def flush(self) -> int:
        if not self.count:
            return 0
        count, batches = self._take()
        try:
            pipe = self.redis.pipeline(transaction=False)
            for key, elements in batches:
                pipe.lpush(key, *elements)
            await pipe.execute()
            return count
        except Exception as e:  # noqa: BLE001
            return self._failed(e)

    def flush_after(self, fn: Callable) -> Callable:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("AsyncMetrics.flush_after wraps coroutine functions")

        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            try:
                return await fn(*args, **kwargs)
            finally:
                await self.flush()
        return wrapper

    async def __aenter__(self) -> "AsyncMetrics":
        return self

    async def __aexit__(self, *exc) -> bool:
        await self.flush()
        return False
