"""One Python sender method, measured per invocation (make bench-senders):
    python3 sender.py METHOD M MAX_INVOCATIONS MAX_SECONDS REDIS_PORT
The same measurements as sender.php: even ones a counter, odd ones a histogram
observation with 11 buckets, over 5 label values each.
    lpush-each  one json.dumps + LPUSH per measurement (redis-py)
    library     clients/python Metrics: buffer, one LPUSH of a JSON array per flush
Prints: invocations wall_p50_us wall_p99_us cpu_us_per_invocation
"""
import json
import os
import sys
import time

# CLIENTS_DIR: another version's clients/ (scripts/senders/library-ab.sh).
sys.path.insert(0, os.path.join(os.environ.get("CLIENTS_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "clients"), "python"))
import redis  # noqa: E402
from prom_stream_gateway import Metrics  # noqa: E402

KEY = "prom-stream-gateway:metric-queue"
BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
QUEUES = ["mail", "sms", "push", "billing", "export"]

method, m, max_invocations, max_seconds, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
r = redis.Redis(port=port, socket_timeout=2)
r.ping()


def lpush_each():
    for i in range(m):
        q = QUEUES[(i // 2) % 5]
        if i % 2 == 0:
            sample = {"type": "counter", "name": "bench_jobs_total", "value": 1, "labels": {"queue": q}}
        else:
            sample = {"type": "histogram", "name": "bench_job_duration_seconds", "value": (i % 1000) * 0.001,
                      "buckets": BUCKETS, "labels": {"queue": q}}
        r.lpush(KEY, json.dumps(sample))


def library():
    metrics = Metrics(r, auto_flush=False)
    for i in range(m):
        q = QUEUES[(i // 2) % 5]
        if i % 2 == 0:
            metrics.counter("bench_jobs_total", 1, {"queue": q})
        else:
            metrics.histogram("bench_job_duration_seconds", (i % 1000) * 0.001, BUCKETS, {"queue": q})
    metrics.flush()


invoke = {"lpush-each": lpush_each, "library": library}[method]
for _ in range(20):
    invoke()
walls = []
deadline = time.monotonic() + max_seconds
cpu0 = time.process_time()
while len(walls) < max_invocations and (not walls or time.monotonic() < deadline):
    t = time.perf_counter_ns()
    invoke()
    walls.append((time.perf_counter_ns() - t) / 1e3)
cpu = (time.process_time() - cpu0) * 1e6 / len(walls)
walls.sort()
n = len(walls)
print(f"{n} {walls[n // 2]:.1f} {walls[min(n - 1, int(n * 0.99))]:.1f} {cpu:.1f}")
