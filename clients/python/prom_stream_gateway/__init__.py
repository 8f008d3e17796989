"""Send Prometheus measurements to prom-stream-gateway in one Redis round trip per invocation.

Measurements are buffered in memory; flush() sends one LPUSH per shard (per queue key
without shards), each element a JSON array of samples, split only above
max_element_bytes. Counter increments of one series are summed, a gauge series sends its
last value and a histogram series its observations counted into its buckets (`counts`);
summary observations travel one by one. A Redis failure is never raised into the
application: it is counted (failures), passed to on_error, and the buffer is dropped.
One instance may be shared by threads: recording and flushing hold a lock.
"""
from __future__ import annotations

import atexit
import bisect
import functools
import inspect
import json
import math
import threading
import time
import zlib
from typing import Any, Callable, Iterable, Mapping, Optional

__all__ = ["Metrics", "AsyncMetrics", "connect", "shard_of", "DEFAULT_KEY"]

DEFAULT_KEY = "prom-stream-gateway:metric-queue"
DEFAULT_MAX_ELEMENT_BYTES = 512 * 1024


def shard_of(name: str, shards: int) -> int:
    """crc32(name) mod shards (IEEE CRC-32), as `gateway shard-of`."""
    return zlib.crc32(name.encode("utf-8")) % shards if shards > 0 else 0


def connect(url: str = "redis://127.0.0.1:6379/0", timeout: float = 0.5, **options: Any):
    """A redis-py client with bounded connect and read/write time-outs (seconds); `options` go to
    redis.Redis.from_url, e.g. ssl_ca_certs="ca.crt" with a rediss:// url for a private CA. Lazy:
    it connects at the first command, so a Redis that is down is one more failed flush."""
    import redis
    return redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout, **options)


# Instances holding measurements not flushed yet, for the one atexit hook: a hook per instance
# would keep every instance an application made (one per request) alive until exit.
_PENDING: set = set()
_EXIT_HOOK: list = []


def _flush_pending() -> None:
    for m in list(_PENDING):
        m.flush()


# One encoder, made once: json.dumps with non-default arguments builds a new encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _labels(labels: Mapping[str, Any]) -> dict:
    return {k if type(k) is str else str(k): v if type(v) is str else _label_value(v) for k, v in labels.items()}


def _label_value(v: Any) -> str:
    return "true" if v is True else "false" if v is False else str(v)


def _number(v: Any) -> Optional[float]:
    """A finite float, or None: what a bucket bound may be."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _bounds(buckets: Iterable[Any]) -> list[float]:
    """A histogram's bounds as the gateway takes bucket counts: finite, sorted, de-duplicated."""
    return sorted({f for f in map(_number, buckets) if f is not None})


class _Buffer:
    def __init__(self, key: str, shards: int, max_element_bytes: int, on_error: Optional[Callable[[BaseException], None]],
                 bucket_histograms: bool = True):
        self.key = key
        self.bucket_histograms = bucket_histograms
        self._bounds_cache: dict[str, tuple[Any, list[float]]] = {}
        self.shards = max(0, int(shards))
        self.max_element_bytes = max(1024, int(max_element_bytes))
        self.on_error = on_error
        self.samples: dict[int, list[str]] = {}
        self.count = 0
        self._flush_at_exit = False
        self.failures = 0
        self.invalid = 0
        self._shard_cache: dict[str, int] = {}
        self._series: dict[tuple, dict] = {}  # counter and gauge series, combined until flush
        # One instance may be shared by threads (a threaded web server's module-level Metrics):
        # recording and taking the buffer hold this lock, so flush never sees a dict being changed.
        self._lock = threading.RLock()   # re-entrant: a signal handler that records must not deadlock

    # Recording ---------------------------------------------------------------

    # The recording methods are the hot path: their checks are inline, not calls. A value that is
    # not a number (None, "abc") becomes NaN, counted as invalid like NaN and ±Inf; label values
    # that cannot be hashed (a list) key their series by their text, as they are sent.

    def _finite(self, value: float) -> bool:
        """JSON cannot carry NaN or ±Inf: such a measurement is dropped and counted."""
        if math.isfinite(value):
            return True
        self.invalid += 1
        return False

    def _by_text(self, key: tuple, labels: Mapping[str, Any]) -> tuple[tuple, Optional[dict]]:
        """The series key with the labels as text (the rare case of a value that cannot be hashed) and its sample."""
        key = key[:2] + (tuple(_labels(labels).items()),) + key[3:]
        return key, self._series.get(key)

    def _add(self, name: str, sample: dict, labels: Optional[Mapping[str, Any]]) -> None:
        """Keeps the sample as a dict: flush encodes a shard's buffer in one call."""
        if labels:
            sample["labels"] = _labels(labels)
        self._shard_list(name).append(sample)
        if not self.count and self._flush_at_exit:
            _PENDING.add(self)
        self.count += 1

    def _shard_list(self, name: str) -> list:
        shard = 0
        if self.shards:
            shard = self._shard_cache.get(name)
            if shard is None:
                shard = self._shard_cache[name] = shard_of(name, self.shards)
        return self.samples.setdefault(shard, [])

    def counter(self, name: str, value: float = 1, labels: Optional[Mapping[str, Any]] = None) -> None:
        """Increments of one series are summed here and sent as one sample (the page shows the same total)."""
        self._lock.acquire()   # not `with`: half its cost on this hot path
        try:
            try:
                value = float(value)
            except (TypeError, ValueError):
                value = math.nan
            if value < 0:  # a counter only goes up: the gateway would drop it as bad_value
                self.invalid += 1
            elif self._finite(value):
                key = ("counter", name, tuple(labels.items()) if labels else ())
                try:
                    sample = self._series.get(key)
                except TypeError:
                    key, sample = self._by_text(key, labels)
                if sample is None:   # also the first measurement since a flush
                    sample = self._series[key] = {"type": "counter", "name": name, "value": value}
                    if labels:
                        sample["labels"] = _labels(labels)
                    if not self.count and self._flush_at_exit:
                        _PENDING.add(self)
                else:
                    sample["value"] += value
                self.count += 1
        finally:
            self._lock.release()

    def gauge(self, name: str, value: float, labels: Optional[Mapping[str, Any]] = None) -> None:
        """Only a series' last value is sent: the gateway keeps the last one anyway."""
        self._lock.acquire()   # not `with`: half its cost on this hot path
        try:
            try:
                value = float(value)
            except (TypeError, ValueError):
                value = math.nan
            if self._finite(value):
                sample = {"type": "gauge", "name": name, "value": value}
                if labels:
                    sample["labels"] = _labels(labels)
                key = ("gauge", name, tuple(labels.items()) if labels else ())
                try:
                    self._series[key] = sample
                except TypeError:
                    self._series[self._by_text(key, labels)[0]] = sample
                if not self.count and self._flush_at_exit:
                    _PENDING.add(self)
                self.count += 1
        finally:
            self._lock.release()

    def histogram(self, name: str, value: float, buckets: Iterable[float], labels: Optional[Mapping[str, Any]] = None) -> None:
        """Observations of one series (name, labels, buckets) are counted into its buckets here
        and sent as one sample; with bucket_histograms=False each is sent (the .NET gateway's form)."""
        self._lock.acquire()   # not `with`: half its cost on this hot path
        try:
            try:
                value = float(value)
            except (TypeError, ValueError):
                value = math.nan
            if not self._finite(value):
                return
            cached = self._bounds_cache.get(name)
            if cached is None or (cached[0] is not buckets and cached[0] != buckets):
                if len(self._bounds_cache) >= 1024:
                    self._bounds_cache.clear()
                cached = self._bounds_cache[name] = (buckets, _bounds(buckets))
            bounds = cached[1]
            if not self.bucket_histograms:   # the bounds cleaned as in PHP and Node: a string among them would fail the sample
                self._add(name, {"type": "histogram", "name": name, "value": value, "buckets": bounds}, labels)
                return
            # The bounds list by identity: each sample keeps its list alive, so no other list takes its id.
            key = ("histogram", name, tuple(labels.items()) if labels else (), id(bounds))
            try:
                sample = self._series.get(key)
            except TypeError:
                key, sample = self._by_text(key, labels)
            if sample is None:   # also the first measurement since a flush
                sample = self._series[key] = {"type": "histogram", "name": name, "value": 0.0, "buckets": bounds,
                                              "counts": [0] * (len(bounds) + 1)}
                if labels:
                    sample["labels"] = _labels(labels)
                if not self.count and self._flush_at_exit:
                    _PENDING.add(self)
            sample["counts"][bisect.bisect_left(bounds, value)] += 1   # a bucket holds what is <= its bound
            sample["value"] += value
            self.count += 1
        finally:
            self._lock.release()

    def summary(self, name: str, value: float, objectives: Optional[Mapping[float, float]] = None,
                labels: Optional[Mapping[str, Any]] = None) -> None:
        """objectives: {quantile: epsilon}, e.g. {0.5: 0.05, 0.99: 0.001}."""
        self._lock.acquire()   # not `with`: half its cost on this hot path
        try:
            try:
                value = float(value)
            except (TypeError, ValueError):
                value = math.nan
            if not self._finite(value):
                return
            sample = {"type": "summary", "name": name, "value": value}
            if objectives:   # numbers only: sorting a str beside a float would raise
                items = sorted((q, e) for q, e in ((_number(k), _number(v)) for k, v in objectives.items()) if q is not None and e is not None)
                sample["quantiles"], sample["epsilons"] = [k for k, _ in items], [v for _, v in items]
            self._add(name, sample, labels)
        finally:
            self._lock.release()

    # Sending -----------------------------------------------------------------

    def _take(self) -> tuple[int, list[tuple[str, list[bytes]]]]:
        with self._lock:   # encoding too: it counts what it cannot encode in invalid
            for sample in self._series.values():
                self._shard_list(sample["name"]).append(sample)
            _PENDING.discard(self)
            samples, count = self.samples, self.count
            self.samples, self.count, self._series = {}, 0, {}
            out = []
            invalid = self.invalid
            for shard, items in samples.items():
                key = f"{self.key}:{{{shard}}}" if self.shards else self.key
                elements = self._elements(items)
                if elements:
                    out.append((key, elements))
            return count - (self.invalid - invalid), out

    def _elements(self, items: list[dict]) -> list[bytes]:
        """JSON arrays of at most max_element_bytes (one sample may exceed it alone). The
        whole buffer is encoded at once; only when that fails (a bucket, quantile or
        epsilon that is not a finite number) is each sample encoded alone, its bad bounds dropped."""
        try:
            data = _ENCODER.encode(items).encode("utf-8")
        except (ValueError, TypeError):
            return self._elements_one_by_one(items)
        if len(data) <= self.max_element_bytes or len(items) == 1:
            return [data]
        half = len(items) // 2
        return self._elements(items[:half]) + self._elements(items[half:])

    def _elements_one_by_one(self, items: list[dict]) -> list[bytes]:
        out, current, size = [], [], 2
        for sample in items:
            for bounds in ("buckets", "quantiles", "epsilons"):
                if bounds in sample:
                    sample[bounds] = [f for f in map(_number, sample[bounds]) if f is not None]
            try:
                s = _ENCODER.encode(sample).encode("utf-8")
            except (ValueError, TypeError):
                self.invalid += 1
                continue
            n = len(s) + 1
            if current and size + n > self.max_element_bytes:
                out.append(b"[" + b",".join(current) + b"]")
                current, size = [], 2
            current.append(s)
            size += n
        if current:
            out.append(b"[" + b",".join(current) + b"]")
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
                 on_error: Optional[Callable[[BaseException], None]] = None, auto_flush: bool = True, bucket_histograms: bool = True):
        super().__init__(key, shards, max_element_bytes, on_error, bucket_histograms)
        self.redis = redis_client
        self._flush_at_exit = auto_flush
        if auto_flush and not _EXIT_HOOK:
            _EXIT_HOOK.append(atexit.register(_flush_pending))

    def flush(self) -> int:
        """Sends what is buffered; returns the number of samples sent (0 on failure)."""
        if not self.count:
            return 0
        try:
            count, batches = self._take()
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
        """Flushes after every call of fn, also when it raises. A coroutine function (an async
        FastAPI route) is awaited first; the flush then blocks the loop for its round trip."""
        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def awaiting(*args, **kwargs):
                try:
                    return await fn(*args, **kwargs)
                finally:
                    self.flush()
            return awaiting

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
                 on_error: Optional[Callable[[BaseException], None]] = None, bucket_histograms: bool = True):
        super().__init__(key, shards, max_element_bytes, on_error, bucket_histograms)
        self.redis = redis_client

    async def flush(self) -> int:
        if not self.count:
            return 0
        try:
            count, batches = self._take()
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
