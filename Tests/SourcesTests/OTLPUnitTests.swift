import Aggregation
import Foundation
import NIOHTTP1
import Pipeline
@testable import Sources
import Synchronization
import Testing
@testable import Web

/// The otlp source's decisions as values: names, temporality, request checks,
/// decoding of malformed bodies.
@Suite struct OTLPUnitTests {
    // MARK: Names (Prometheus's otlptranslator)

    @Test(arguments: [
        ("http.server.duration", "s", false, false, "http_server_duration_seconds"),
        ("http.server.request.size", "By", false, false, "http_server_request_size_bytes"),
        ("orders", "1", true, false, "orders_total"),
        ("orders.total", "{orders}", true, false, "orders_total"),
        ("total.orders", "", true, false, "orders_total"),
        ("cpu.utilization", "1", false, true, "cpu_utilization_ratio"),
        ("cpu.utilization", "1", false, false, "cpu_utilization"),
        ("throughput", "By/s", false, true, "throughput_bytes_per_second"),
        ("latency_seconds", "s", false, false, "latency_seconds"),
        ("memory", "MiBy", false, true, "memory_mebibytes"),
        ("temperature", "Cel", false, true, "temperature_celsius"),
        ("requests", "{req}/min", true, false, "requests_per_min_total"),
        ("2xx.responses", "", true, false, "_2xx_responses_total"),
        ("odd--name__", "ms", false, false, "odd_name_milliseconds"),
        ("résumé", "", false, true, "r_sum"),
    ])
    func metricNames(name: String, unit: String, counter: Bool, gauge: Bool, expected: String) {
        #expect(OTLPNames.metric(name, unit: unit, counter: counter, gauge: gauge) == expected)
    }

    @Test(arguments: [
        ("http.method", "http_method"), ("service.name", "service_name"), ("2fa", "key_2fa"), ("_private", "key_private"),
        ("__reserved", "__reserved"), ("a-b c", "a_b_c"), ("ok_name", "ok_name"),
    ])
    func labelNames(key: String, expected: String) { #expect(OTLPNames.label(key) == expected) }

    /// The store adds counts as doubles: a total of 2^53 or more may already have rounded there.
    @Test(arguments: [
        ([3, 4], 7, true), ([3, 4], 8, false), ([], 0, true),
        ([1 << 52, (1 << 52) - 1], (1 << 53) - 1, true), ([1 << 52, 1 << 52], 1 << 53, false),
        ([UInt64.max, 2], 1, false),            // the sum wraps: not the count
    ] as [([UInt64], UInt64, Bool)])
    func histogramCounts_addUpExactly(counts: [UInt64], count: UInt64, expected: Bool) {
        #expect(OTLPMapping.adds(up: counts, to: count) == expected)
        let numbers = [Double(count)] + counts.map { Double($0) }
        let binned = BinnedHistogram(numbers: numbers[...])
        #expect((binned != nil) == expected || counts.contains(.max), "\(numbers) \(String(describing: binned))")
    }

    @Test func resourceLabels_jobFromNamespaceAndName_noInstance_promotedAttributes() {
        let m = OTLPMapping(promoted: ["cloud.region", "absent"], table: StreamTable(ttl: .seconds(60), capacity: 10))
        let labels = m.resourceLabels([("service.name", "api"), ("service.namespace", "shop"), ("service.instance.id", "i-1"), ("cloud.region", "eu")])
        #expect(labels.map { "\($0.0)=\($0.1)" } == ["job=shop/api", "cloud_region=eu"])
        #expect(m.resourceLabels([("service.name", "api")]).map { "\($0.0)=\($0.1)" } == ["job=api"])
        // The point's attributes win a clash; a clash after sanitizing joins values in key order.
        let merged = m.merged([("job", "x"), ("cloud_region", "eu")], [("cloud.region", "us"), ("a.b", "1"), ("a_b", "2")])
        #expect(merged.map { "\($0.0)=\($0.1)" } == ["a_b=1;2", "cloud_region=us", "job=x"], "sorted by name")
    }

    // MARK: Cumulative to delta

    struct Step: Sendable, CustomStringConvertible {
        var description: String
        var previous: (start: UInt64, time: UInt64, value: Double)?
        var start: UInt64, time: UInt64, value: Double
        var expected: String
    }

    static let steps: [Step] = [
        Step(description: "first point, started after the gateway: counts from zero", previous: nil, start: 200, time: 300, value: 5, expected: "add 5.0 first"),
        Step(description: "first point, started before the gateway: the baseline", previous: nil, start: 50, time: 300, value: 5, expected: "baseline"),
        Step(description: "first point without a start time: the baseline", previous: nil, start: 0, time: 300, value: 5, expected: "baseline"),
        Step(description: "a continuation: the difference", previous: (200, 300, 5), start: 200, time: 400, value: 8, expected: "add 3.0 delta"),
        Step(description: "the same value again: adds nothing", previous: (200, 300, 5), start: 200, time: 400, value: 5, expected: "add 0.0 delta"),
        Step(description: "a lower value, same start: a reset, counts from zero", previous: (200, 300, 5), start: 200, time: 400, value: 2, expected: "add 2.0 reset"),
        Step(description: "a later start time: a restart, counts from zero", previous: (200, 300, 5), start: 350, time: 400, value: 7, expected: "add 7.0 reset"),
        Step(description: "an earlier start time: an old incarnation, dropped", previous: (200, 300, 5), start: 100, time: 400, value: 9, expected: "stale"),
        Step(description: "an older point: a retried export, dropped", previous: (200, 300, 5), start: 200, time: 250, value: 4, expected: "stale"),
        Step(description: "no start times at all: a lower value is a reset", previous: (0, 300, 5), start: 0, time: 400, value: 1, expected: "add 1.0 reset"),
    ]

    @Test(arguments: steps)
    func deltaSteps(_ c: Step) {
        let step = DeltaStep<Double>.decide(previous: c.previous, start: c.start, time: c.time, value: c.value, recent: { $0 >= 100 })
        let text = switch step {
        case .add(let v, let reason): "add \(v) \(reason)"
        case .baseline: "baseline"
        case .stale: "stale"
        }
        #expect(text == c.expected)
    }

    @Test func streamTable_isBounded_andForgetsIdleStreams() {
        let now = Mutex<UInt64>(0)
        let table = StreamTable(ttl: .seconds(10), capacity: 2, startedAt: 0, clock: { now.withLock { $0 } })
        var outcomes: [String] = []
        let points = (0..<3).map { (key: StreamKey(a: UInt64($0), b: 0), start: UInt64(1), time: UInt64(2), value: CumulativePoint.number(1)) }
        table.step(points) { _, step in outcomes.append(step == nil ? "full" : "ok") }
        #expect(outcomes == ["ok", "ok", "full"])
        now.withLock { $0 = 11_000_000_000 }
        outcomes = []
        table.step([points[2]]) { _, step in outcomes.append(step == nil ? "full" : "ok") }
        #expect(outcomes == ["ok"], "idle streams expired to make room")
        #expect(table.count == 1)
    }

    @Test func exponentialCounts_subtractAcrossADownscale() {
        // Scale 1 → 0: buckets 2,3 merge into 1; 4,5 into 2.
        let before = ExponentialCounts(count: 3, sum: 6, scale: 1, zeroCount: 0, zeroThreshold: 0, positiveOffset: 2, positive: [1, 1, 1],
                                       negativeOffset: 0, negative: [])
        let after = ExponentialCounts(count: 5, sum: 10, scale: 0, zeroCount: 1, zeroThreshold: 0, positiveOffset: 1, positive: [3, 1],
                                      negativeOffset: 0, negative: [])
        let d = after.minus(before)
        #expect(d == ExponentialCounts(count: 2, sum: 4, scale: 0, zeroCount: 1, zeroThreshold: 0, positiveOffset: 1, positive: [1, 0],
                                       negativeOffset: 0, negative: []))
        #expect(before.minus(after) == nil, "a lower count is a reset")
        #expect(before.downscaled(to: -1).positive == [2, 1] && before.downscaled(to: -1).positiveOffset == 0)
        let negative = ExponentialCounts(count: 1, sum: 0, scale: 1, zeroCount: 0, zeroThreshold: 0, positiveOffset: -3, positive: [1, 2],
                                         negativeOffset: 0, negative: [])
        #expect(negative.downscaled(to: 0).positiveOffset == -2 && negative.downscaled(to: 0).positive == [1, 2])
    }

    // MARK: Requests

    static func request(_ path: String = "/v1/metrics", method: HTTPMethod = .POST, type: String = "application/x-protobuf",
                        encoding: String = "", body: [UInt8] = [], tooLarge: Bool = false) -> HTTPRequest {
        HTTPRequest(method: method, uri: path, contentType: type, contentEncoding: encoding, body: body, bodyTooLarge: tooLarge)
    }

    static func status(_ check: OTLPRequestCheck) -> Int {
        if case .refuse(let r) = check { return Int(r.status.code) }
        return 200
    }

    @Test func requestChecks_followTheOTLPHTTPSpec() throws {
        #expect(Self.status(OTLPRequestCheck.check(Self.request("/v1/traces"), auth: nil, limit: 100)) == 404)
        #expect(Self.status(OTLPRequestCheck.check(Self.request(method: .GET), auth: nil, limit: 100)) == 405)
        #expect(Self.status(OTLPRequestCheck.check(Self.request(type: "text/plain"), auth: nil, limit: 100)) == 415)
        #expect(Self.status(OTLPRequestCheck.check(Self.request(type: "application/json; charset=utf-8"), auth: nil, limit: 100)) == 200)
        #expect(Self.status(OTLPRequestCheck.check(Self.request(encoding: "br"), auth: nil, limit: 100)) == 415)
        #expect(Self.status(OTLPRequestCheck.check(Self.request(tooLarge: true), auth: nil, limit: 100)) == 413)
        #expect(Self.status(OTLPRequestCheck.check(Self.request(encoding: "gzip", body: [1, 2, 3]), auth: nil, limit: 100)) == 400)
        // A gzip bomb: 1 MiB of zeros in about a kilobyte inflates beyond the limit and is refused.
        let bomb = try #require(gzip(Array(repeating: 0, count: 1 << 20)))
        #expect(bomb.count < 2048)
        #expect(Self.status(OTLPRequestCheck.check(Self.request(encoding: "gzip", body: bomb), auth: nil, limit: 64 << 10)) == 413)
        let fine = try #require(gzip(Array("hello".utf8)))
        guard case .decode(_, let body) = OTLPRequestCheck.check(Self.request(encoding: "GZIP", body: fine), auth: nil, limit: 100) else {
            Issue.record("a small gzip body is decoded"); return
        }
        #expect(body == Array("hello".utf8))
    }

    @Test(arguments: [
        (false, 0, 0, 0, OTLPAdmission.accept),
        (true, 0, 0, 0, .stopping),
        (false, 8, 0, 0, .full),                 // max_pending_requests exports already wait
        (false, 0, 900, 200, .full),             // does not fit beside what is in flight
        (false, 0, 800, 200, .accept),           // fits exactly
        (false, 0, 0, 5000, .accept),            // larger than the whole budget, nothing in flight: taken
    ] as [(Bool, Int, Int, Int, OTLPAdmission)])
    func admission(closed: Bool, waiting: Int, inFlight: Int, bytes: Int, expected: OTLPAdmission) {
        #expect(OTLPAdmission(closed: closed, waiting: waiting, maxWaiting: 8, inFlight: inFlight, bytes: bytes, limit: 1000) == expected)
    }

    @Test func bodyBudget_letsOneBodyThrough_andNoMoreThanItsLimitBesideOthers() {
        let b = BodyBudget(limit: 100)
        #expect(b.take(150), "alone, even over the limit")
        #expect(!b.take(1))
        b.release(150)
        #expect(b.take(60) && b.take(40) && !b.take(1))
        b.release(100)
        #expect(b.held == 0)
    }

    @Test func responses_carryPartialSuccessInTheRequestsEncoding() {
        #expect(OTLPEncoding.protobuf.success(rejected: 0, message: nil) == [])
        #expect(OTLPEncoding.json.success(rejected: 0, message: nil) == Array("{}".utf8))
        #expect(String(decoding: OTLPEncoding.json.success(rejected: 2, message: "x"), as: UTF8.self)
                == #"{"partialSuccess":{"rejectedDataPoints":"2","errorMessage":"x"}}"#)
        #expect(OTLPEncoding.protobuf.success(rejected: 2, message: "x") == [0x0A, 0x05, 0x08, 0x02, 0x12, 0x01, 0x78])
    }

    // MARK: Decoding

    @Test(arguments: [
        ([0x0A], "truncated"),
        ([0x0A, 0x05, 0x01], "length"),
        ([0x0B], "wire type 3"),
        ([0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], "varint longer"),
        ([0x00], "field number 0"),
    ] as [([UInt8], String)])
    func malformedProtobuf_isAnErrorNamingTheProblem(bytes: [UInt8], fragment: String) {
        do {
            _ = try bytes.withUnsafeBytes { b throws(OTLPProtobuf.Malformed) in try OTLPProtobuf.decode(b) }
            Issue.record("decoded")
        } catch {
            #expect("\(error)".contains(fragment), "\(error)")
        }
    }

    @Test func json_acceptsStringIntegers_protoNames_andEnumNames() throws {
        let body = #"""
        {"resource_metrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}},
          {"key":"n","value":{"intValue":"7"}},{"key":"l","value":{"arrayValue":{"values":[{"stringValue":"a"},{"intValue":1}]}}}]},
          "scopeMetrics":[{"scope":{"name":"s"},"metrics":[{"name":"c","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA",
          "isMonotonic":true,"dataPoints":[{"asInt":"3","timeUnixNano":"1700000000000000000","exemplars":[{"asDouble":1.5,
          "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}]}]}}]}]}]}
        """#
        let export = try OTLPJSON.decode(Array(body.utf8))
        let m = try #require(export.resources.first?.scopes.first?.metrics.first)
        #expect(export.resources[0].attributes.map { "\($0.key)=\($0.value)" } == ["service.name=api", "n=7", #"l=["a",1]"#])
        #expect(m.kind == .sum && m.monotonic && m.temporality == .delta)
        #expect(m.points.first?.value == 3 && m.points.first?.time == 1_700_000_000_000_000_000)
        #expect(m.points.first?.exemplars.first.map { OTLPText.hex($0.traceID) } == "5b8efff798038103d269b633813fc60c")
        #expect(throws: OTLPJSON.Malformed.self) { try OTLPJSON.decode(Array(#"{"resourceMetrics":{}}"#.utf8)) }
        #expect(throws: OTLPJSON.Malformed.self) { try OTLPJSON.decode(Array("[1]".utf8)) }
    }
}

/// zlib's gzip, for test bodies.
func gzip(_ bytes: [UInt8]) -> [UInt8]? { Gzip.compress(bytes, level: 9) }
