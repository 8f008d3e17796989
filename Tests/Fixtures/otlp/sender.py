"""A real OpenTelemetry sender: the Python SDK and its OTLP/HTTP protobuf exporter.

    sender.py ENDPOINT TEMPORALITY INVOCATIONS [--service NAME] [--exports K] [--gzip]

Each invocation is a fresh MeterProvider (a Lambda cold start): it adds 1, 2, 3 …
to a counter, records the same values in an explicit-bucket and an exponential
histogram, and exports K times (a cumulative sender then sends the same total
again), then shuts down. Prints one JSON line per invocation with what the
exporter reported.
"""
import argparse, json, os, sys, time

from opentelemetry.sdk.metrics import MeterProvider, Counter, Histogram, UpDownCounter, ObservableGauge
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader, MetricExportResult
from opentelemetry.sdk.metrics.view import View, ExponentialBucketHistogramAggregation, ExplicitBucketHistogramAggregation
from opentelemetry.sdk.resources import Resource
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http import Compression

p = argparse.ArgumentParser()
p.add_argument("endpoint")
p.add_argument("temporality", choices=["delta", "cumulative"])
p.add_argument("invocations", type=int)
p.add_argument("--service", default="checkout")
p.add_argument("--exports", type=int, default=1)
p.add_argument("--gzip", action="store_true")
p.add_argument("--values", default="1,2,3")
p.add_argument("--timeout", type=float, default=10)
p.add_argument("--ca", help="PEM file of the CA that signed the gateway's certificate (https)")
p.add_argument("--auth", help="USER:PASSWORD for basic auth")
a = p.parse_args()
headers = {}
if a.ca:
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE (set on many machines) override the
    # exporter's certificate_file; point them at the test CA too.
    os.environ["REQUESTS_CA_BUNDLE"] = a.ca
    os.environ.pop("CURL_CA_BUNDLE", None)
if a.auth:
    import base64
    headers["Authorization"] = "Basic " + base64.b64encode(a.auth.encode()).decode()

t = AggregationTemporality.DELTA if a.temporality == "delta" else AggregationTemporality.CUMULATIVE
temporality = {Counter: t, Histogram: t, UpDownCounter: AggregationTemporality.CUMULATIVE}
values = [float(v) for v in a.values.split(",")]

for n in range(a.invocations):
    exporter = OTLPMetricExporter(endpoint=a.endpoint, preferred_temporality=temporality, timeout=a.timeout,
                                  certificate_file=a.ca, headers=headers,
                                  compression=Compression.Gzip if a.gzip else Compression.NoCompression)
    results = []
    original = exporter.export
    def export(data, timeout_millis=10000, **kw):
        r = original(data, timeout_millis=timeout_millis, **kw)
        results.append(r == MetricExportResult.SUCCESS)
        return r
    exporter.export = export
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    views = [
        View(instrument_name="request_duration", aggregation=ExplicitBucketHistogramAggregation(boundaries=[0.5, 1, 2.5, 5])),
        View(instrument_name="payload_size", aggregation=ExponentialBucketHistogramAggregation(max_size=160)),
    ]
    provider = MeterProvider(resource=Resource.create({"service.name": a.service, "service.namespace": "shop", "cloud.region": "eu-west-1"}),
                             metric_readers=[reader], views=views)
    meter = provider.get_meter("sender.py", "1.0")
    counter = meter.create_counter("orders", unit="1", description="Orders placed.")
    duration = meter.create_histogram("request_duration", unit="s", description="Request time.")
    size = meter.create_histogram("payload_size", unit="By", description="Payload size.")
    for v in values:
        counter.add(v, {"method": "card"})
        duration.record(v, {"method": "card"})
        size.record(v, {"method": "card"})
    for _ in range(a.exports):
        provider.force_flush()
    provider.shutdown()
    print(json.dumps({"invocation": n, "exports": results}), flush=True)
