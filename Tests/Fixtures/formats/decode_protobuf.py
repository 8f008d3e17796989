"""Decodes a length-delimited stream of io.prometheus.client.MetricFamily from
stdin with the `protobuf` package (schema compiled by protoc from metrics.proto
next to this file) and prints each message in protobuf text format, separated
by `---`; fields the schema does not know are printed too, so a golden page
catches them. Exits 1 on anything it cannot decode."""
import os, subprocess, sys, tempfile
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format

here = os.path.dirname(os.path.abspath(__file__))
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "metrics.pb")
    subprocess.run(["protoc", "-I", here, "--descriptor_set_out=" + out, "metrics.proto"], check=True)
    files = descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read())
pool = descriptor_pool.DescriptorPool()
for f in files.file:
    pool.Add(f)
MetricFamily = message_factory.GetMessageClass(pool.FindMessageTypeByName("io.prometheus.client.MetricFamily"))

def varint(data, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(data):
            sys.exit("truncated varint at byte %d" % pos)
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7

data = sys.stdin.buffer.read()
pos, parts = 0, []
while pos < len(data):
    size, pos = varint(data, pos)
    if pos + size > len(data):
        sys.exit("truncated message at byte %d" % pos)
    family = MetricFamily()
    family.ParseFromString(data[pos:pos + size])
    parts.append(text_format.MessageToString(family, print_unknown_fields=True))
    pos += size
sys.stdout.write("---\n".join(parts))
