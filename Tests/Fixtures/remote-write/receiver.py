"""A remote-write receiver for the tests: decodes every POST with an independent
decoder (cramjam's snappy, protoc + the protobuf package on remote.proto) and keeps
what arrived; answers as scripted.

  receiver.py PORT_FILE [--statuses 500,200] [--retry-after N] [--tls CERT KEY]
              [--basic USER:PASSWORD_FILE] [--bearer TOKEN_FILE]

--statuses: the status of the first requests in order, 200 after them.
--basic / --bearer: 401 unless the Authorization header matches the file's content
(read at each request, so a test can rotate it).
GET /received: a JSON list, one entry per POST: time, status answered, headers,
and (for a decodable body) series [{labels, samples, histograms}] and metadata.
"""
import base64, json, os, signal, ssl, subprocess, sys, tempfile, threading, time
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
import cramjam
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, json_format

# The test runner may start it with signals blocked: SIGTERM must end it.
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGTERM, signal.SIG_DFL)

here = os.path.dirname(os.path.abspath(__file__))
with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "remote.pb")
    subprocess.run(["protoc", "-I", here, "--descriptor_set_out=" + out, "remote.proto"], check=True)
    files = descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read())
pool = descriptor_pool.DescriptorPool()
for f in files.file:
    pool.Add(f)
WriteRequest = message_factory.GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))

args = sys.argv[1:]
port_file = args.pop(0)
opts = {}
while args:
    k = args.pop(0)
    opts[k] = [args.pop(0), args.pop(0)] if k == "--tls" else args.pop(0)
statuses = [int(s) for s in opts.get("--statuses", "").split(",") if s]
received, lock = [], threading.Lock()

def decode(body):
    raw = bytes(cramjam.snappy.decompress_raw(body))
    req = WriteRequest()
    req.ParseFromString(raw)
    series = []
    for ts in req.timeseries:
        series.append({"labels": [[l.name, l.value] for l in ts.labels],
                       "samples": [[s.value if s.value == s.value else ("stale" if struct_bits(s.value) == 0x7ff0000000000002 else "nan"), s.timestamp] for s in ts.samples],
                       "histograms": [json_format.MessageToDict(h, preserving_proto_field_name=True) for h in ts.histograms]})
    metadata = [json_format.MessageToDict(m, preserving_proto_field_name=True) for m in req.metadata]
    return {"series": series, "metadata": metadata}

def struct_bits(v):
    import struct
    return struct.unpack("<Q", struct.pack("<d", v))[0]

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            body = json.dumps(received).encode()
        self.answer(200, body, [("Content-Type", "application/json")])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        entry = {"time": time.time(), "headers": {k.lower(): v for k, v in self.headers.items()}}
        expected = None
        if "--basic" in opts:
            user, path = opts["--basic"].split(":", 1)
            expected = "Basic " + base64.b64encode((user + ":" + open(path).read().strip()).encode()).decode()
        elif "--bearer" in opts:
            expected = "Bearer " + open(opts["--bearer"]).read().strip()
        if expected is not None and self.headers.get("Authorization") != expected:
            status = 401
        else:
            with lock:
                status = statuses.pop(0) if statuses else 200
        try:
            entry.update(decode(body))
        except Exception as e:
            entry["error"] = repr(e)
        entry["status"] = status
        with lock:
            received.append(entry)
        headers = [("Retry-After", opts["--retry-after"])] if status == 429 and "--retry-after" in opts else []
        self.answer(status, ("status %d from the test receiver\nsecond line\n" % status).encode(), headers)

ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if "--tls" in opts:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(opts["--tls"][0], opts["--tls"][1])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
