"""Writes the seed inputs of the otlp fuzz corpus (Tests/Fixtures/otlp-corpus/seed-*):
ExportMetricsServiceRequest bodies built with opentelemetry-proto, one per shape the
source maps. `make fuzz-otlp` grows the corpus from them; `make test` replays it."""
import os, sys
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, ArrayValue, KeyValueList

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
DELTA, CUMULATIVE = 1, 2

def kv(k, v):
    if isinstance(v, bool): return KeyValue(key=k, value=AnyValue(bool_value=v))
    if isinstance(v, int): return KeyValue(key=k, value=AnyValue(int_value=v))
    if isinstance(v, float): return KeyValue(key=k, value=AnyValue(double_value=v))
    if isinstance(v, bytes): return KeyValue(key=k, value=AnyValue(bytes_value=v))
    if isinstance(v, list): return KeyValue(key=k, value=AnyValue(array_value=ArrayValue(values=[kv("x", x).value for x in v])))
    if isinstance(v, dict): return KeyValue(key=k, value=AnyValue(kvlist_value=KeyValueList(values=[kv(a, b) for a, b in v.items()])))
    return KeyValue(key=k, value=AnyValue(string_value=v))

def request(metrics, resource=None):
    r = ExportMetricsServiceRequest()
    rm = r.resource_metrics.add()
    for k, v in (resource or {"service.name": "api", "service.namespace": "shop"}).items():
        rm.resource.attributes.append(kv(k, v))
    sm = rm.scope_metrics.add()
    sm.scope.name = "seed"; sm.scope.version = "1"
    sm.metrics.extend(metrics)
    return r.SerializeToString()

attrs = [kv("http.method", "GET"), kv("code", 200), kv("ok", True), kv("ratio", 0.5), kv("list", ["a", 1]), kv("map", {"k": "v"}), kv("raw", b"\x00\xff")]
ex = m.Exemplar(as_double=1.5, time_unix_nano=1700000000000000000, trace_id=bytes(range(16)), span_id=bytes(range(8)),
                filtered_attributes=[kv("user", "u1")])

def sum_(name, temporality, monotonic, value, start=1700000000000000000, time=1700000001000000000, unit=""):
    return m.Metric(name=name, unit=unit, description="a sum", sum=m.Sum(aggregation_temporality=temporality, is_monotonic=monotonic,
        data_points=[m.NumberDataPoint(as_double=value, start_time_unix_nano=start, time_unix_nano=time, attributes=attrs, exemplars=[ex])]))

seeds = {
    "delta-counter": request([sum_("orders", DELTA, True, 3, unit="1")]),
    "cumulative-counter": request([sum_("orders", CUMULATIVE, True, 7)]),
    "updown": request([sum_("queue.depth", CUMULATIVE, False, -2), sum_("queue.delta", DELTA, False, 1)]),
    "gauge-int": request([m.Metric(name="temp", unit="Cel", gauge=m.Gauge(data_points=[m.NumberDataPoint(as_int=-40, attributes=attrs)]))]),
    "histogram": request([m.Metric(name="latency", unit="ms", histogram=m.Histogram(aggregation_temporality=DELTA, data_points=[
        m.HistogramDataPoint(count=6, sum=12.5, bucket_counts=[1, 2, 3], explicit_bounds=[1, 5], attributes=attrs, exemplars=[ex])]))]),
    "histogram-cumulative": request([m.Metric(name="latency", unit="s", histogram=m.Histogram(aggregation_temporality=CUMULATIVE, data_points=[
        m.HistogramDataPoint(count=6, sum=12.5, bucket_counts=[1, 2, 3], explicit_bounds=[1, 5], start_time_unix_nano=1,
                             time_unix_nano=2)]))]),
    "exponential": request([m.Metric(name="size", unit="By", exponential_histogram=m.ExponentialHistogram(aggregation_temporality=DELTA, data_points=[
        m.ExponentialHistogramDataPoint(count=7, sum=-3, scale=3, zero_count=1, zero_threshold=0.001,
            positive=m.ExponentialHistogramDataPoint.Buckets(offset=-5, bucket_counts=[1, 0, 2]),
            negative=m.ExponentialHistogramDataPoint.Buckets(offset=4, bucket_counts=[3]), attributes=attrs, exemplars=[ex])]))]),
    "exponential-fine": request([m.Metric(name="size", exponential_histogram=m.ExponentialHistogram(aggregation_temporality=CUMULATIVE, data_points=[
        m.ExponentialHistogramDataPoint(count=2, sum=3, scale=20, start_time_unix_nano=5, time_unix_nano=6,
            positive=m.ExponentialHistogramDataPoint.Buckets(offset=1048576, bucket_counts=[1, 1]))]))]),
    "summary": request([m.Metric(name="rpc", summary=m.Summary(data_points=[m.SummaryDataPoint(count=4, sum=10,
        quantile_values=[m.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=2), m.SummaryDataPoint.ValueAtQuantile(quantile=0.99, value=9)],
        attributes=attrs)]))]),
    "no-recorded-value": request([m.Metric(name="gone", gauge=m.Gauge(data_points=[m.NumberDataPoint(as_double=1, flags=1)]))]),
    "clashing-names": request([sum_("a.b", DELTA, True, 1), m.Metric(name="a_b_total", gauge=m.Gauge(data_points=[m.NumberDataPoint(as_double=2)])),
                               m.Metric(name="le", histogram=m.Histogram(aggregation_temporality=DELTA, data_points=[
                                   m.HistogramDataPoint(count=1, sum=1, bucket_counts=[1], attributes=[kv("le", "x")])]))]),
}
for name, body in seeds.items():
    with open(os.path.join(out, "seed-" + name), "wb") as f:
        f.write(body)
print(len(seeds), "seeds")
