import Pipeline
import Testing
import TestSupport

@Suite struct PipelineSpecTests {
    func load(_ yaml: String, env: [String: String] = [:]) -> Result<PipelineSpec, ConfigErrors> {
        do { return .success(try PipelineSpec.load(yaml: yaml, environment: env, registry: testRegistry)) } catch {
            return .failure(error)
        }
    }

    static let good = """
    sources:
      a: { type: test_counter_source }
    transforms:
      t: { type: test_jitter, inputs: [a], workers: 3, buffer: { capacity: 4, when_full: drop_newest } }
    sinks:
      s: { type: test_collect, inputs: [t] }
    """

    @Test func validConfig_decodesCommonOptionsInTopologicalOrder() throws {
        let spec = try load(Self.good).get()
        #expect(spec.stages.map(\.id) == ["a", "t", "s"])
        #expect(spec.stage("t")?.workers == 3)
        #expect(spec.stage("t")?.buffer == BufferConfig(capacity: 4, whenFull: .dropNewest))
        #expect(spec.summary.contains("a -> t"))
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var expected: [String]   // substrings, one per expected error, with its line
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "unknown key names stage, key and line", yaml: """
            sources:
              a: { type: test_counter_source, batchez: 3 }
            sinks:
              s: { type: test_collect, inputs: [a] }
            """, expected: ["line 2: sources.a.batchez: unknown key"]),
        Case(name: "wrong type", yaml: """
            sources:
              a:
                type: test_counter_source
                batches: many
            sinks:
              s: { type: test_collect, inputs: [a] }
            """, expected: ["line 4: sources.a.batches: expected an integer, got `many`"]),
        Case(name: "unknown stage type lists known ones", yaml: """
            sources:
              a: { type: kafka }
            sinks:
              s: { type: test_collect, inputs: [a] }
            """, expected: ["line 2: sources.a.type: unknown source type `kafka` (known: test_counter_source, test_payload_source)", "sinks.s.inputs: unknown input `a`"]),
        Case(name: "unknown input", yaml: """
            sources:
              a: { type: test_counter_source }
            sinks:
              s: { type: test_collect, inputs: [a, nope] }
            """, expected: ["line 4: sinks.s.inputs: unknown input `nope`"]),
        Case(name: "cycle", yaml: """
            sources:
              a: { type: test_counter_source }
            transforms:
              x: { type: test_jitter, inputs: [a, y] }
              y: { type: test_jitter, inputs: [x] }
            sinks:
              s: { type: test_collect, inputs: [y] }
            """, expected: ["line 4: transforms.x.inputs: is part of a cycle", "line 5: transforms.y.inputs: is part of a cycle"]),
        Case(name: "item kind mismatch", yaml: """
            sources:
              p: { type: test_payload_source }
            sinks:
              s: { type: test_collect, inputs: [p] }
            """, expected: ["line 4: sinks.s.inputs: `p` emits payloads but `test_collect` takes samples (put a json_decode transform between them)"]),
        Case(name: "unused source", yaml: """
            sources:
              a: { type: test_counter_source }
              b: { type: test_counter_source }
            sinks:
              s: { type: test_collect, inputs: [a] }
            """, expected: ["line 3: sources.b: source is not used as an input by any stage"]),
        Case(name: "role mismatch", yaml: """
            sources:
              a: { type: test_collect }
            sinks:
              s: { type: test_collect, inputs: [a] }
            """, expected: ["line 2: sources.a.type: `test_collect` is a sink, not a source", "unknown input `a`"]),
        Case(name: "bad buffer option", yaml: """
            sources:
              a: { type: test_counter_source }
            sinks:
              s:
                type: test_collect
                inputs: [a]
                workers: 0
                buffer:
                  when_full: drop_oldest
            """, expected: ["line 7: sinks.s.workers: must be between 1 and 256, got 0", "line 9: sinks.s.buffer.when_full: must be one of block, drop_newest, got `drop_oldest`"]),
        Case(name: "missing inputs", yaml: """
            sources:
              a: { type: test_counter_source }
            sinks:
              s: { type: test_collect }
            """, expected: ["sinks.s.inputs: missing required key `inputs`", "sources.a: source is not used"]),
        Case(name: "unknown top-level key and YAML error", yaml: """
            source:
              a: { type: test_counter_source }
            """, expected: ["line 1: source: unknown top-level key", "sources: at least one source is required", "sinks: at least one sink is required"]),
        Case(name: "invalid YAML reports its line", yaml: """
            sources:
              a: { type: test_counter_source
            sinks: {}
            """, expected: ["invalid YAML"]),
        Case(name: "unset variable without default", yaml: """
            sources:
              a: { type: test_counter_source, batches: ${NOT_SET_ANYWHERE} }
            sinks:
              s: { type: test_collect, inputs: [a] }
            """, expected: ["line 2: environment variable `NOT_SET_ANYWHERE` is not set"]),
    ]

    @Test(arguments: cases)
    func invalidConfig_reportsEveryErrorWithItsLine(_ c: Case) {
        switch load(c.yaml) {
        case .success: Issue.record("expected errors for \(c.name)")
        case .failure(let e):
            let text = e.description
            for expected in c.expected {
                #expect(text.contains(expected), "missing `\(expected)` in:\n\(text)")
            }
        }
    }

    @Test func threeMistakes_areAllReportedAtOnceSortedByLine() {
        let yaml = """
        sources:
          a: { type: test_counter_source, batches: x }
        transforms:
          t: { type: test_jitter, inputs: [a], colour: red }
        sinks:
          s: { type: test_collect, inputs: [t, ghost] }
        """
        guard case .failure(let e) = load(yaml) else { Issue.record("expected errors"); return }
        #expect(e.errors.count == 3)
        #expect(e.errors.map(\.line) == [2, 4, 6])
    }

    @Test(arguments: [
        ("${A}", ["A": "1"], "1"),
        ("${A:-x}", [:], "x"),
        ("${A:-x}", ["A": ""], "x"),
        ("${A:-x}", ["A": "y"], "y"),
        ("$${A}", ["A": "y"], "${A}"),
        ("a$b", [:], "a$b"),
        ("${A:-}", [:], ""),
        ("${1}_x", [:], "${1}_x"),
        ("${A}${B:-2}", ["A": "1"], "12"),
    ] as [(String, [String: String], String)])
    func envExpansion_substitutesVariablesAndDefaults(_ input: String, _ env: [String: String], _ expected: String) throws {
        #expect(try expandEnvironment(input, environment: env).get() == expected)
    }

    @Test func envExpansion_feedsTypedOptions() throws {
        let yaml = """
        sources:
          a: { type: test_counter_source, batches: ${N:-5} }
        sinks:
          s: { type: test_collect, inputs: [a], workers: ${W} }
        """
        let spec = try load(yaml, env: ["W": "3"]).get()
        #expect(spec.stage("s")?.workers == 3)
    }

    @Test func describeMode_recordsEveryOptionWithDefault() {
        let reader = OptionReader(describing: "x")
        _ = CountingSourceConfig(options: reader)
        #expect(reader.docs.map(\.key) == ["batches", "batch_size", "forever", "name"])
        #expect(reader.docs.first?.defaultValue == "10")
    }
}
