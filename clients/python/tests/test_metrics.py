"""Against a real redis-server and real gateways, started by the Swift suite
ClientLibraryTests (make test), which passes REDIS_PORT, GATEWAY_PORT, SHARDED_KEY,
SHARDED_GATEWAY_PORT and GATEWAY_BIN."""
import asyncio
import json
import os
import subprocess
import sys
import time
import unittest
import urllib.request

import redis
import redis.asyncio

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from prom_stream_gateway import AsyncMetrics, Metrics, connect, shard_of  # noqa: E402


def env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run through the Swift suite ClientLibraryTests (make test)")
    return value


def value(port, series, want, timeout=10.0):
    """The page's value of `series` (the exact text before the value), waiting for `want`."""
    seen, deadline = None, time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        for line in page.splitlines():
            if line.startswith(series + " "):
                seen = float(line[len(series) + 1:])
        if seen == want:
            return seen
        time.sleep(0.05)
    return seen


class MetricsTest(unittest.TestCase):
    def setUp(self):
        self.r = connect(f"redis://127.0.0.1:{env('REDIS_PORT')}/0")
        self.port = env("GATEWAY_PORT")

    def lpush_calls(self):
        return self.r.info("commandstats").get("cmdstat_lpush", {}).get("calls", 0)

    def test_one_lpush_carries_every_measurement_and_the_page_adds_up(self):
        before = self.lpush_calls()
        with Metrics(self.r, auto_flush=False) as m:
            for i in range(100):
                m.counter("py_jobs_total", 1, {"queue": "mail"})
                m.histogram("py_job_duration_seconds", 0.31 if i % 2 else 0.05, [0.1, 0.5, 1], {"queue": "mail"})
            m.gauge("py_queue_depth", 7)
            m.gauge("py_queue_depth", 42)
            m.summary("py_payload_bytes", 512, {0.5: 0.05, 0.99: 0.001})
        self.assertEqual(self.lpush_calls() - before, 1)
        self.assertEqual(value(self.port, 'py_jobs_total{queue="mail"}', 100), 100)
        self.assertEqual(value(self.port, 'py_job_duration_seconds_count{queue="mail"}', 100), 100)
        self.assertEqual(value(self.port, 'py_job_duration_seconds_bucket{queue="mail",le="0.1"}', 50), 50)
        self.assertEqual(value(self.port, "py_queue_depth", 42), 42)
        self.assertEqual(value(self.port, "py_payload_bytes_sum", 512), 512)
        self.assertEqual(m.failures, 0)

    def test_counters_gauges_and_histograms_are_combined_per_series(self):
        key = f"py-combine-{os.getpid()}"
        m = Metrics(self.r, key=key, auto_flush=False)
        for i in range(100):
            m.counter("c_total", 0.5, {"q": "a"})
            m.gauge("g", i)
            m.histogram("h", i, [50, 10, 10])   # sorted and de-duplicated: [10, 50]
        m.histogram("h", 3, (10, 50), {"q": "b"})
        m.counter("c_total", 1, {"q": "b"})
        m.counter("c_total", -5, {"q": "b"})   # a counter only goes up: dropped, counted
        self.assertEqual(m.invalid, 1)
        self.assertEqual(m.flush(), 302)
        elements = self.r.lrange(key, 0, -1)
        self.r.delete(key)
        self.assertEqual(len(elements), 1)
        samples = json.loads(elements[0])
        self.assertEqual(len(samples), 5)
        by = {}
        for s in samples:
            by.setdefault(s["name"] + json.dumps(s.get("labels", {})), []).append(s)
        self.assertEqual(by['c_total{"q": "a"}'][0]["value"], 50)
        self.assertEqual(by['c_total{"q": "b"}'][0]["value"], 1)
        self.assertEqual(by["g{}"][0]["value"], 99)
        h = by["h{}"][0]
        self.assertEqual((h["buckets"], h["counts"], h["value"]), ([10, 50], [11, 40, 49], 4950), "10 is in le=10")
        self.assertEqual(by['h{"q": "b"}'][0]["counts"], [1, 0, 0])

    def test_one_instance_shared_by_threads_never_raises_and_loses_nothing(self):
        """A threaded web server's module-level Metrics: requests record while others flush."""
        import threading
        key = f"py-threads-{os.getpid()}"
        m = Metrics(self.r, key=key, auto_flush=False)
        switch = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)   # thread switches inside every method, as a busy server's would be
        errors, done = [], threading.Event()

        def record(t):
            for i in range(10000):
                m.counter("t_total", 1, {"i": str(i % 2000), "t": str(t)})
                m.histogram("t_seconds", 0.2, [0.1, 1], {"i": str(i % 7)})

        def flush():
            while not done.is_set():
                try:
                    m.flush()
                except Exception as e:  # noqa: BLE001
                    errors.append(repr(e))
        try:
            flusher = threading.Thread(target=flush)
            flusher.start()
            threads = [threading.Thread(target=record, args=(t,)) for t in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            done.set()
            flusher.join()
        finally:
            sys.setswitchinterval(switch)
        m.flush()
        self.assertEqual(errors, [])
        samples = [s for e in self.r.lrange(key, 0, -1) for s in json.loads(e)]
        self.r.delete(key)
        self.assertEqual(sum(s["value"] for s in samples if s["name"] == "t_total"), 40000)
        self.assertEqual(sum(sum(s["counts"]) for s in samples if s["name"] == "t_seconds"), 40000)
        self.assertEqual(m.failures, 0)

    def test_a_signal_handler_that_records_does_not_deadlock(self):
        """The buffer's lock is re-entrant: a handler interrupting a measurement on the same thread records too."""
        script = """
import signal, sys
sys.path.insert(0, CLIENTS)
from prom_stream_gateway import Metrics
m = Metrics(None, auto_flush=False)
signal.signal(signal.SIGALRM, lambda *_: m.counter("signals_total"))
signal.setitimer(signal.ITIMER_REAL, 0.0001, 0.0001)
for i in range(200000):
    m.counter("work_total", 1, {"i": str(i % 100)})
signal.setitimer(signal.ITIMER_REAL, 0, 0)
print(sum(s["value"] for s in m._series.values() if s["name"] == "work_total"))
""".replace("CLIENTS", repr(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")))
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.stdout.strip(), "200000.0", out.stderr[-2000:])

    def test_bucket_histograms_off_sends_each_observation(self):
        key = f"py-observations-{os.getpid()}"
        m = Metrics(self.r, key=key, auto_flush=False, bucket_histograms=False)
        for i in range(10):
            m.histogram("h", i, [5])
        m.histogram("h2", 1, ["x", 5, 2, 5, None])   # only numbers are bounds, sorted and de-duplicated
        self.assertEqual(m.flush(), 11)
        samples = json.loads(self.r.lrange(key, 0, -1)[0])
        self.r.delete(key)
        self.assertEqual([len(samples), samples[9]["value"], "counts" in samples[9]], [11, 9, False])
        self.assertEqual(samples[10]["buckets"], [2, 5])

    def test_labels_escapes_and_non_ascii_arrive_byte_for_byte(self):
        m = Metrics(self.r, auto_flush=False)
        m.counter("py_text_total", 1, {"q": 'a"b\\c\nd', "city": "Zürich ☃", "n": 3, "b": True})
        m.counter("py_nolabels_total", 2, {})
        m.gauge("py_big", 1e20)
        m.gauge("py_nan", float("nan"))
        self.assertEqual(m.flush(), 3)
        self.assertEqual(m.invalid, 1)
        self.assertEqual(value(self.port, 'py_text_total{b="true",city="Zürich ☃",n="3",q="a\\"b\\\\c\\nd"}', 1), 1)
        self.assertEqual(value(self.port, "py_nolabels_total", 2), 2)
        self.assertEqual(value(self.port, "py_big", 1e20), 1e20)

    def test_shards_route_as_the_gateway_says_in_one_round_trip(self):
        names = [f"py_{c}_total" for c in "abcdef"]
        for n in names:
            out = subprocess.run([env("GATEWAY_BIN"), "shard-of", n, "--shards", "4"], capture_output=True, text=True).stdout
            self.assertEqual(int(out.split()[0]), shard_of(n, 4), out)
        # On keys no gateway drains (its pop script's own LPUSHes would count too).
        routing = Metrics(self.r, key="py:routing", shards=4, auto_flush=False)
        for n in names:
            routing.counter(n, 5)
        before = self.lpush_calls()
        self.assertEqual(routing.flush(), 6)
        self.assertEqual(self.lpush_calls() - before, len({shard_of(n, 4) for n in names}), "one LPUSH per shard used")
        for n in names:
            self.assertIn(f'"{n}"'.encode(), b"".join(self.r.lrange(f"py:routing:{{{shard_of(n, 4)}}}", 0, -1)))
        m = Metrics(self.r, key=env("SHARDED_KEY"), shards=4, auto_flush=False)
        for n in names:
            m.counter(n, 5)
        self.assertEqual(m.flush(), 6)
        for n in names:
            self.assertEqual(value(env("SHARDED_GATEWAY_PORT"), n, 5), 5)

    def test_large_flushes_split_above_the_element_cap(self):
        m = Metrics(self.r, key="py:split", max_element_bytes=2048, auto_flush=False)
        for i in range(100):
            m.counter("py_split_total", 1, {"i": str(i)})
        self.assertEqual(m.flush(), 100)
        elements = self.r.lrange("py:split", 0, -1)
        self.assertGreater(len(elements), 1)
        self.assertTrue(all(len(e) <= 2048 for e in elements))

    def test_values_that_are_not_numbers_and_unhashable_label_values_never_raise(self):
        m = Metrics(self.r, auto_flush=False)
        for record in (m.counter, m.gauge, m.summary):
            record("py_odd", None)
            record("py_odd", "not a number")
        m.histogram("py_odd_seconds", None, [1])
        self.assertEqual(m.invalid, 7)
        m.summary("py_odd_bytes", 1, {0.5: 0.05, "x": 1, 0.9: None})   # only numbers are objectives
        self.assertEqual(m._take()[1][0][1], [b'[{"type":"summary","name":"py_odd_bytes","value":1.0,"quantiles":[0.5],"epsilons":[0.05]}]'])
        m.counter("py_listlabel_total", 1, {"tag": ["a", "b"]})   # a request parameter can be a list
        m.counter("py_listlabel_total", "2", {"tag": ["a", "b"]})   # a numeric string is a number
        m.gauge("py_listlabel", 3, {"tag": ["a"]})
        m.histogram("py_listlabel_seconds", 0.5, [1], {"tag": {"x": 1}})
        self.assertEqual(m.flush(), 4)
        self.assertEqual(value(self.port, 'py_listlabel_total{tag="[\'a\', \'b\']"}', 3), 3)
        self.assertEqual(value(self.port, 'py_listlabel_seconds_count{tag="{\'x\': 1}"}', 1), 1)

    def test_redis_cluster_pipelines_every_shard_to_its_node(self):
        host, port = env("CLUSTER_SEEDS").split(",")[0].split(":")
        rc = redis.RedisCluster(host=host, port=int(port), socket_timeout=0.5)
        m = Metrics(rc, key=env("SHARDED_KEY"), shards=4, auto_flush=False)
        names = [f"py_cluster_{c}_total" for c in "abcde"]
        self.assertGreater(len({shard_of(n, 4) for n in names}), 2, "several shards")
        for i, name in enumerate(names):
            m.counter(name, i + 1)
        m.histogram("py_cluster_seconds", 0.2, [0.1, 1])
        self.assertEqual((m.flush(), m.failures), (6, 0))
        for i, name in enumerate(names):
            self.assertEqual(value(env("CLUSTER_GATEWAY_PORT"), name, i + 1), i + 1)
        self.assertEqual(value(env("CLUSTER_GATEWAY_PORT"), 'py_cluster_seconds_bucket{le="1"}', 1), 1)
        rc.close()

    def test_asyncio_redis_cluster_pipelines_every_shard_to_its_node(self):
        host, port = env("CLUSTER_SEEDS").split(",")[0].split(":")

        async def run():
            rc = redis.asyncio.RedisCluster(host=host, port=int(port), socket_timeout=0.5)
            m = AsyncMetrics(rc, key=env("SHARDED_KEY"), shards=4)
            names = [f"py_async_cluster_{c}_total" for c in "abcde"]
            self.assertGreater(len({shard_of(n, 4) for n in names}), 2, "several shards")
            for i, name in enumerate(names):
                m.counter(name, i + 1)
            sent = await m.flush()
            await rc.aclose()
            return names, sent, m.failures
        names, sent, failures = asyncio.run(run())
        self.assertEqual((sent, failures), (5, 0))
        for i, name in enumerate(names):
            self.assertEqual(value(env("CLUSTER_GATEWAY_PORT"), name, i + 1), i + 1)

    def test_tls_with_the_private_ca_and_an_untrusted_server_counted(self):
        url, key = f"rediss://localhost:{env('TLS_REDIS_PORT')}/0", f"py-tls-{os.getpid()}"
        tls = connect(url, ssl_ca_certs=env("TLS_CA_FILE"))
        m = Metrics(tls, key=key, auto_flush=False)
        m.counter("py_tls_total", 2)
        self.assertEqual((m.flush(), m.failures), (1, 0))
        untrusted = Metrics(connect(url, ssl_ca_certs=env("TLS_OTHER_CA_FILE")), key=key, auto_flush=False)
        untrusted.counter("py_tls_total")
        self.assertEqual((untrusted.flush(), untrusted.failures), (0, 1))
        elements = tls.lrange(key, 0, -1)
        tls.delete(key)
        self.assertEqual(len(elements), 1)
        self.assertIn(b'"py_tls_total"', elements[0])

    def test_a_redis_failure_is_counted_and_reported_never_raised(self):
        errors = []
        start = time.monotonic()
        m = Metrics(connect("redis://127.0.0.1:1/0", timeout=0.2), auto_flush=False, on_error=errors.append)
        m.counter("py_lost_total")
        self.assertEqual(m.flush(), 0)
        self.assertLess(time.monotonic() - start, 2, "bounded connect time-out")
        self.assertEqual((m.failures, len(errors)), (1, 1))

    def test_decorator_and_timer_and_the_atexit_flush(self):
        m = Metrics(self.r, auto_flush=False)

        @m.flush_after
        def handler(event, context):
            with m.time("py_handler_seconds", [0.01, 1]):
                m.counter("py_invocations_total")
            return "ok"

        self.assertEqual(handler({}, None), "ok")
        self.assertEqual(value(self.port, "py_invocations_total", 1), 1)
        self.assertEqual(value(self.port, "py_handler_seconds_count", 1), 1)

        @m.flush_after
        async def route():   # an async route: flushed after its body ran, not when the coroutine was made
            await asyncio.sleep(0)
            m.counter("py_async_route_total")
            return "done"
        self.assertEqual(asyncio.run(route()), "done")
        self.assertEqual(m.count, 0, "flushed after the body")
        self.assertEqual(value(self.port, "py_async_route_total", 1), 1)
        script = ("import sys; sys.path.insert(0, %r); from prom_stream_gateway import Metrics, connect; "
                  "m = Metrics(connect('redis://127.0.0.1:%s/0')); m.counter('py_atexit_total', 3)") % (
            os.path.join(os.path.dirname(__file__), ".."), env("REDIS_PORT"))
        subprocess.run([sys.executable, "-c", script], check=True)
        self.assertEqual(value(self.port, "py_atexit_total", 3), 3)
        # One instance per request: one atexit hook for all, holding only those with measurements.
        script = ("import atexit, gc, sys, weakref; sys.path.insert(0, %r); import prom_stream_gateway as p; "
                  "r = p.connect('redis://127.0.0.1:%s/0'); n = atexit._ncallbacks(); "
                  "[p.Metrics(r).counter('py_many_total') for _ in range(30)]; "
                  "empty = [weakref.ref(p.Metrics(r)) for _ in range(30)]; gc.collect(); "
                  "assert atexit._ncallbacks() - n == 1, atexit._ncallbacks() - n; "
                  "assert len(p._PENDING) == 30 and not any(w() for w in empty)") % (
            os.path.join(os.path.dirname(__file__), ".."), env("REDIS_PORT"))
        subprocess.run([sys.executable, "-c", script], check=True)
        self.assertEqual(value(self.port, "py_many_total", 30), 30)

    def test_asyncio_client(self):
        async def main():
            r = redis.asyncio.Redis(host="127.0.0.1", port=int(env("REDIS_PORT")), socket_timeout=0.5)
            async with AsyncMetrics(r) as m:
                m.counter("py_async_total", 4)
            await r.aclose() if hasattr(r, "aclose") else await r.close()
        asyncio.run(main())
        self.assertEqual(value(self.port, "py_async_total", 4), 4)


if __name__ == "__main__":
    unittest.main()
