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
}
