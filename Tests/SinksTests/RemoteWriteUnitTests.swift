import Foundation
import Pipeline
import Testing
import TestSupport
@testable import Aggregation
@testable import Sinks

/// The remote-write sink's decisions and encodings as values: what an answer means,
/// the back-off, the url, snappy, SigV4 (AWS's example and botocore), the encoder.
@Suite struct RemoteWriteUnitTests {
    @Test(arguments: [
        (200, nil, true, SendOutcome.sent),
        (204, nil, true, .sent),
        (500, nil, true, .retry(reason: "5xx", after: nil)),
        (503, "7", true, .retry(reason: "5xx", after: 7)),
        (429, "3", true, .retry(reason: "429", after: 3)),
        (429, "3", false, .drop(reason: "4xx")),
        (400, nil, true, .drop(reason: "4xx")),
        (404, "9", true, .drop(reason: "4xx")),
        (302, nil, true, .drop(reason: "other")),
    ] as [(Int, String?, Bool, SendOutcome)])
    func anAnswer_meansWhatPrometheusMakesOfIt(_ status: Int, _ retryAfter: String?, _ retry429: Bool, _ expected: SendOutcome) {
        #expect(SendOutcome.classify(status: status, retryAfter: retryAfter, retryOn429: retry429, now: 0) == expected)
    }

    @Test(arguments: [
        ("120", 0.0, 120.0 as Double?),
        ("0", 0, 0),
        ("-1", 0, nil),
        ("soon", 0, nil),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_470, 10),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 1_445_412_490, 0),
        ("Wed, 21 Oct 2015 07:28:00 UTC", 0, nil),
    ] as [(String, Double, Double?)])
    func retryAfter_isSecondsOrAnHTTPDate(_ text: String, _ now: Double, _ expected: Double?) {
        #expect(SendOutcome.retryAfter(text, now: now) == expected)
    }

    @Test func backoff_doublesUpToItsCap_withEqualJitter() {
        var b = Backoff(min: 0.1, max: 0.5)
        #expect(b.next(random: 0) == 0.05)
        #expect(b.next(random: 1) == 0.2)
        #expect(abs(b.next(random: 0.5) - 0.3) < 1e-12)
        #expect(b.next(random: 0) == 0.25)
        #expect(b.next(random: 1) == 0.5)
    }

    @Test(arguments: [
        ("http://127.0.0.1:9090/api/v1/write", HTTPEndpoint(https: false, host: "127.0.0.1", port: 9090, target: "/api/v1/write")),
        ("https://prometheus-prod.grafana.net/api/prom/push", HTTPEndpoint(https: true, host: "prometheus-prod.grafana.net", port: 443, target: "/api/prom/push")),
        ("https://[::1]:8443/push?tenant=a", HTTPEndpoint(https: true, host: "::1", port: 8443, target: "/push?tenant=a")),
        ("http://host", HTTPEndpoint(https: false, host: "host", port: 80, target: "/")),
        ("ftp://host/x", nil),
        ("http://:80/x", nil),
        ("http://host:99999/x", nil),
    ] as [(String, HTTPEndpoint?)])
    func urls_areParsed(_ url: String, _ expected: HTTPEndpoint?) {
        #expect(HTTPEndpoint(url) == expected)
    }

    @Test func snappy_roundTrips_andRefusesGarbage() {
        let input = Array(String(repeating: "prom-stream-gateway ", count: 500).utf8)
        var compressed: [UInt8] = []
        Snappy.compress(input, into: &compressed)
        #expect(compressed.count < input.count / 10)
        #expect(Snappy.uncompress(compressed) == input)
        #expect(Snappy.uncompress([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]) == nil)
    }

    /// AWS's SigV4 test suite, `get-vanilla`.
    @Test func sigV4_matchesAWSsDocumentedExample() {
        let signer = SigV4(accessKey: "AKIDEXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: nil, region: "us-east-1",
                           service: "service")
        let headers = signer.sign(method: "GET", host: "example.amazonaws.com", target: "/", headers: [], payload: [], date: "20150830T123600Z")
        #expect(headers.first { $0.0 == "Authorization" }?.1 == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
        #expect(SigV4.amzDate(unixSeconds: 1_440_938_160) == "20150830T123600Z")
    }

    /// The same remote-write request signed here and by botocore's `SigV4Auth`.
    @Test(arguments: [nil, "FQoGZXIvYXdzEJr//session"] as [String?])
    func sigV4_matchesBotocore(_ token: String?) throws {
        let payload: [UInt8] = Array("snappy bytes \u{0}\u{1}\u{2}".utf8)
        let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "snappy"), ("X-Prometheus-Remote-Write-Version", "0.1.0")]
        let target = "/workspaces/ws-1234/api/v1/remote_write"
        let host = "aps-workspaces.eu-west-1.amazonaws.com"
        let signer = SigV4(accessKey: "AKIAIOSFODNN7EXAMPLE", secretKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", sessionToken: token,
                           region: "eu-west-1")
        let ours = signer.sign(method: "POST", host: host, target: target, headers: headers, payload: payload, date: "20261205T101500Z")
        var request: [String: Any] = ["method": "POST", "url": "https://\(host)\(target)", "headers": headers.map { [$0.0, $0.1] },
                                      "body_hex": payload.map { String(format: "%02x", $0) }.joined(),
                                      "access_key": "AKIAIOSFODNN7EXAMPLE", "secret_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                      "region": "eu-west-1", "service": "aps", "amz_date": "20261205T101500Z"]
        if let token { request["token"] = token }
        let r = try runCommand(python3, [packageRoot.appendingPathComponent("Tests/Fixtures/remote-write/sigv4.py").path],
                               stdin: Array(try JSONSerialization.data(withJSONObject: request)))
        #expect(r.status == 0, "\(r.output)")
        #expect(ours.first { $0.0 == "Authorization" }?.1 == r.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(ours.contains { $0 == ("X-Amz-Security-Token", token ?? "") } == (token != nil))
    }

    @Test func theEncoder_cutsRequestsAtMaxSamplesPerSend_andMarksWhatIsGone() throws {
        let store = MetricStore()
        var batch = sampleBatch((0..<25).map { TestSample(.counter, "c_total", 1, labels: [("i", "\($0)")]) })
        var scratch: [UInt8] = []
        store.apply(&batch, scratch: &scratch)
        var encoder = WriteRequestEncoder(externalLabels: [("z", "1")], maxSamplesPerSend: 10, tracking: true)
        var requests: [WriteRequestEncoder.Request] = []
        encoder.encode(store.snapshot(), timestamp: 1000) { requests.append($0) }
        encoder.flush { requests.append($0) }
        #expect(requests.map(\.samples) == [10, 10, 5])
        let sent = try #require(encoder.sent)
        #expect(sent.count == 25)
        var next = WriteRequestEncoder(externalLabels: [], maxSamplesPerSend: 10, tracking: true)
        var stale: [WriteRequestEncoder.Request] = []
        next.stale(Array(sent.prefix(3)), timestamp: 2000) { stale.append($0) }
        next.flush { stale.append($0) }
        #expect(stale.map(\.samples) == [3])
        // The marker is Prometheus's StaleNaN bit pattern, little-endian after the value tag (0x09).
        let marker: [UInt8] = [0x09] + withUnsafeBytes(of: WriteRequestEncoder.staleNaN.bitPattern.littleEndian) { Array($0) }
        let body = stale[0].body
        #expect((0...(body.count - marker.count)).contains { Array(body[$0..<$0 + marker.count]) == marker })
    }

    @Test(arguments: [
        ("url: \"ftp://x\"", "url", "expected http://"),
        ("url: \"http://x/\", protobuf_message: io.prometheus.write.v2.Request", "protobuf_message", "only prometheus.WriteRequest"),
        ("url: \"http://x/\", sigv4: {region: eu-west-1, role_arn: arn}", "role_arn", "not supported"),
        ("url: \"http://x/\", basic_auth: {username: u, password: p}, authorization: {credentials: t}", "basic_auth", "give one of"),
        ("url: \"http://x/\", basic_auth: {password: p, password_file: /etc/hostname}", "password_file", "not both"),
        ("url: \"http://x/\", headers: {Authorization: x}", "headers", "set by the sink"),
        ("url: \"http://x/\", external_labels: {\"0bad\": x}", "external_labels", "not a valid label name"),
        ("url: \"http://x/\", queue_config: {min_backoff: 10s, max_backoff: 1s}", "queue_config", "longer than max_backoff"),
        ("url: \"http://x/\", oauth2: {client_id: x}", "oauth2", "not supported"),
        ("url: \"http://x/\", tls_config: {ca_file: /nonexistent/ca.pem}", "ca_file", "cannot read"),
    ] as [(String, String, String)])
    func refusedOptions_nameTheirKey(_ options: String, _ key: String, _ reason: String) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("rw-\(UUID().uuidString).yaml")
        try """
            sources: {q: {type: redis_list}}
            transforms: {d: {type: json_decode, inputs: [q]}}
            sinks: {rw: {type: remote_write, inputs: [d], \(options)}}
            """.write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let r = try runCommand(GatewayProcess.binary, ["validate", "--config", file.path], environment: ["PATH": "/usr/bin:/bin"])
        #expect(r.status != 0)
        #expect(r.output.contains(key) && r.output.contains(reason), "\(r.output)")
    }
}
