@testable import Pipeline
import Testing
import TestSupport

/// The reload's decision, from the two files alone: which stages are kept, restarted,
/// rebuilt or removed, and which keep their input buffer.
@Suite struct ReloadPlanTests {
    static let base = """
        sources: { src: { type: test_counter_source } }
        transforms: { t: { type: test_jitter, inputs: [src] } }
        sinks: { out: { type: test_collect, inputs: [t] } }
        """

    struct Case: Sendable, CustomStringConvertible {
        var description: String
        var next: String
        var kept: [String], restarted: [String], rebuilt: [String], removed: [String]
        var keepsBuffer: Set<String>
    }

    static let cases: [Case] = [
        Case(description: "the same file", next: base,
             kept: ["src", "t", "out"], restarted: [], rebuilt: [], removed: [], keepsBuffer: ["t", "out"]),
        Case(description: "a sink option", next: base.replacingOccurrences(of: "type: test_collect,", with: "type: test_collect, key: k,"),
             kept: ["src", "t"], restarted: [], rebuilt: ["out"], removed: [], keepsBuffer: ["t", "out"]),
        Case(description: "a source option", next: base.replacingOccurrences(of: "type: test_counter_source", with: "type: test_counter_source, batches: 3"),
             kept: ["t", "out"], restarted: [], rebuilt: ["src"], removed: [], keepsBuffer: ["t", "out"]),
        Case(description: "a sink's buffer: the stage above restarts onto the new one",
             next: base.replacingOccurrences(of: "inputs: [t] }", with: "inputs: [t], buffer: { capacity: 4 } }"),
             kept: ["src"], restarted: ["t"], rebuilt: ["out"], removed: [], keepsBuffer: ["t"]),
        Case(description: "a second sink: its producer restarts with a new consumer",
             next: base.replacingOccurrences(of: "sinks: { out: { type: test_collect, inputs: [t] } }",
                                             with: "sinks: { out: { type: test_collect, inputs: [t] }, more: { type: test_collect, inputs: [t] } }"),
             kept: ["src", "out"], restarted: ["t"], rebuilt: ["more"], removed: [], keepsBuffer: ["t", "out"]),
        Case(description: "the transform removed: the sink reads the source",
             next: """
                 sources: { src: { type: test_counter_source } }
                 sinks: { out: { type: test_collect, inputs: [src] } }
                 """,
             kept: [], restarted: ["src"], rebuilt: ["out"], removed: ["t"], keepsBuffer: []),
    ]

    @Test(arguments: cases) func plan(_ c: Case) throws {
        let old = try PipelineSpec.load(yaml: Self.base, environment: [:], registry: testRegistry)
        let new = try PipelineSpec.load(yaml: c.next, environment: [:], registry: testRegistry)
        let plan = ReloadPlan(from: old, to: new)
        #expect(plan.report.kept.sorted() == c.kept.sorted())
        #expect(plan.report.restarted.sorted() == c.restarted.sorted())
        #expect(plan.report.rebuilt.sorted() == c.rebuilt.sorted())
        #expect(plan.report.removed.sorted() == c.removed.sorted())
        #expect(plan.keepsBuffer == c.keepsBuffer)
        #expect(plan.touched == Set(c.restarted + c.rebuilt))
    }
}
