import Foundation
import Fuzzing
import Testing
import TestSupport

/// Replays the fuzzer's corpus (`Tests/Fixtures/fuzz-corpus/`, grown by `make fuzz`)
/// through decode → validate → relabel → sort → aggregate → render on every test run.
@Suite struct FuzzCorpusTests {
    @Test func corpus_replaysWithoutCrashesAndRendersValidText() throws {
        let dir = packageRoot.appendingPathComponent("Tests/Fixtures/fuzz-corpus")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files.count >= 3)
        let harness = try FuzzHarness()
        for file in files {
            let data = try Data(contentsOf: dir.appendingPathComponent(file))
            let problem = data.withUnsafeBytes { harness.run($0) }
            #expect(problem == nil, "\(file): \(problem ?? "")")
        }
    }

    /// The otlp source's corpus (`Tests/Fixtures/otlp-corpus/`, seeded by `Tests/Fixtures/otlp/seeds.py`,
    /// grown by `make fuzz-otlp`); each seed also mutated 300 ways (bit flips, truncations,
    /// splices, length bytes set to extremes), deterministically.
    @Test func otlpCorpus_andItsMutations_neverCrash_andRenderValidPages() throws {
        let dir = packageRoot.appendingPathComponent("Tests/Fixtures/otlp-corpus")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(files.count >= 10)
        let harness = OTLPHarness()
        var rng = SplitMix(seed: 0x07_1b)
        let inputs = try files.map { [UInt8](try Data(contentsOf: dir.appendingPathComponent($0))) }
        for (file, input) in zip(files, inputs) {
            var problem = input.withUnsafeBytes { harness.run($0) }
            #expect(problem == nil, "\(file): \(problem ?? "")")
            for n in 0..<300 where !input.isEmpty && file.hasPrefix("seed-") {
                var m = input
                switch n % 5 {
                case 0: m[Int(rng.next() % UInt64(m.count))] ^= UInt8(1 << (rng.next() % 8))
                case 1: m.removeLast(Int(rng.next() % UInt64(m.count)))
                case 2: m[Int(rng.next() % UInt64(m.count))] = [0x00, 0x7F, 0x80, 0xFF][Int(rng.next() % 4)]
                case 3:
                    let other = inputs[Int(rng.next() % UInt64(inputs.count))]
                    m = Array(m.prefix(Int(rng.next() % UInt64(m.count)))) + other.suffix(Int(rng.next() % UInt64(other.count + 1)))
                default: m.insert(UInt8(rng.next() & 0xFF), at: Int(rng.next() % UInt64(m.count)))
                }
                problem = m.withUnsafeBytes { harness.run($0) }
                #expect(problem == nil, "\(file) mutation \(n): \(problem ?? "") — \(m)")
            }
        }
    }

    @Test(arguments: [
        ("# HELP a x\n# TYPE a counter\na 1\n", true),
        ("# HELP a x\n# TYPE a counter\na{l=\"v\\\"\"} 1\n", true),
        ("# TYPE a counter\na{l=\"v\n\"} 1\n", false),
        ("# TYPE a counter\na{l=\"v\\q\"} 1\n", false),
        ("# TYPE a counter\nb 1\n", false),
        ("# TYPE a counter\na 1\n# TYPE b gauge\nb 1\n# TYPE a counter\n", false),
        ("# TYPE a counter\na one\n", false),
        ("# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_sum 1\na_count 1\n", true),
        // Found by the fuzzer: a value starting with a combining mark (U+059E) merges
        // with the opening quote into one Character; the page is valid.
        ("# TYPE g gauge\ng{a=\"_p\",xz=\"\u{059E}ugyze\"} 0\n", true),
    ] as [(String, Bool)])
    func checker_acceptsValidAndRejectsBrokenPages(_ page: String, _ valid: Bool) {
        #expect((ExpositionChecker.problem(in: Array(page.utf8)) == nil) == valid)
    }

    @Test(arguments: [
        ("# HELP a x\n# TYPE a counter\na_total 1\n# EOF\n", true),
        ("# TYPE a counter\na_total 1 # {t=\"x\"} 1 1732550000.5\n# EOF\n", true),
        ("# TYPE a counter\na_total 1\n", false),   // no # EOF
        ("# TYPE a counter\na 1\n# EOF\n", false),   // a counter sample without _total
        ("# TYPE a gauge\na 1 # {t=\"x\"} 1\n# EOF\n", false),   // exemplar on a gauge
        ("# TYPE a counter\na_total 1 # {t=\"\(String(repeating: "x", count: 128))\"} 1\n# EOF\n", false),   // 129 characters
        ("# HELP a q\\\"x\n# TYPE a gauge\na 1\n# EOF\n", true),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\nh_sum 4\nh_count 3\n# EOF\n", true),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 4\nh_count 1\n# EOF\n", false),   // not cumulative
        ("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_sum 4\nh_count 2\n# EOF\n", false),   // _count differs
        ("# TYPE h histogram\nh_bucket{handle=\"x\",le=\"+Inf\"} 3\nh_count{handle=\"x\"} 3\n# EOF\n", true),
    ] as [(String, Bool)])
    func openMetricsChecker_acceptsValidAndRejectsBrokenPages(_ page: String, _ valid: Bool) {
        #expect((OpenMetricsChecker.problem(in: Array(page.utf8)) == nil) == valid, "\(OpenMetricsChecker.problem(in: Array(page.utf8)) ?? "valid")")
    }

    @Test func protobufChecker_rejectsBrokenStreams() {
        // MetricFamily{name: "a", type: GAUGE, metric: {gauge: {value: 1}}}
        let gauge: [UInt8] = [0x0A, 0x01, 0x61, 0x18, 0x01, 0x22, 0x0B, 0x12, 0x09, 0x09] + [0, 0, 0, 0, 0, 0, 0xF0, 0x3F]
        let good = [UInt8(gauge.count)] + gauge
        #expect(ProtobufChecker.problem(in: good) == nil)
        #expect(ProtobufChecker.problem(in: Array(good.dropLast())) != nil, "truncated")
        #expect(ProtobufChecker.problem(in: good + good) != nil, "one family twice")
        var counterBody = gauge
        counterBody[4] = 0x00   // says COUNTER, carries a gauge
        #expect(ProtobufChecker.problem(in: [UInt8(counterBody.count)] + counterBody) != nil)
        var unknown = gauge
        unknown[0] = 0x52   // field 10
        #expect(ProtobufChecker.problem(in: [UInt8(unknown.count)] + unknown) != nil)
    }
}

