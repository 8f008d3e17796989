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
        var expected: [String]   // every error, in full, in order
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "unknown key names stage, key and line", yaml: """
            sources:
              a: { type: test_counter_source, batchez: 3 }
            sinks:
              s: { type: test_collect, inputs: [a] }
            """, expected: ["line 2: sources.a.batchez: unknown key (did you mean `batches`? known: batch_size, batches, forever, name)"]),
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
            """, expected: ["line 2: sources.a.type: unknown source type `kafka` (known: test_counter_source, test_payload_source)", "line 4: sinks.s.inputs: unknown input `a`"]),
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
            """, expected: ["line 4: sinks.s.inputs: `p` emits payloads but `test_collect` takes samples"]),
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
            """, expected: ["line 2: sources.a.type: `test_collect` is a sink, not a source; declare it under `sinks`", "line 4: sinks.s.inputs: unknown input `a`"]),
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
            """, expected: ["line 2: sources.a: source is not used as an input by any stage", "line 4: sinks.s: missing required key `inputs`"]),
        Case(name: "unknown top-level key and YAML error", yaml: """
            source:
              a: { type: test_counter_source }
            """, expected: ["line 1: source: unknown top-level key (did you mean `sources`? expected sources, transforms, sinks, memory_budget)", "sinks: at least one sink is required", "sources: at least one source is required"]),
        Case(name: "invalid YAML reports its line", yaml: """
            sources:
              a: { type: test_counter_source
            sinks: {}
            """, expected: ["line 3: invalid YAML: did not find expected ',' or '}'"]),
        Case(name: "inputs as a scalar is one error", yaml: """
            sources:
              a: { type: test_counter_source }
            sinks:
              s: { type: test_collect, inputs: a }
            """, expected: ["line 2: sources.a: source is not used as an input by any stage", "line 4: sinks.s.inputs: expected a list of strings such as [a]"]),
        Case(name: "an input listed twice", yaml: """
            sources:
              a: { type: test_counter_source }
            sinks:
              s: { type: test_collect, inputs: [a, a] }
            """, expected: ["line 4: sinks.s.inputs: lists `a` twice"]),
        Case(name: "unknown key of a sink suggests a common one", yaml: """
            sources:
              a: { type: test_counter_source }
            sinks:
              s: { type: test_collect, inputs: [a], wokers: 2 }
            """, expected: ["line 4: sinks.s.wokers: unknown key (did you mean `workers`? known: buffer, dead_letter, delay_us, durable, inputs, key, ordered, workers)"]),
        Case(name: "duplicate key is reported at its second line", yaml: """
            sources:
              a:
                type: test_counter_source
                batches: 1
                batches: 2
            sinks:
              s: { type: test_collect, inputs: [a] }
            """, expected: ["line 5: batches: duplicate key (first at line 4)"]),
        Case(name: "unset variable without default", yaml: """
            sources:
              a: { type: test_counter_source, batches: ${NOT_SET_ANYWHERE} }
            sinks:
              s: { type: test_collect, inputs: [a] }
            """, expected: ["line 2: environment variable `NOT_SET_ANYWHERE` is not set and `${NOT_SET_ANYWHERE}` has no default (write `${NOT_SET_ANYWHERE:-value}`; a literal `${NOT_SET_ANYWHERE}`, such as a named regex group, is written `$${NOT_SET_ANYWHERE}`)"]),
    ]

    @Test(arguments: cases)
    func invalidConfig_reportsEveryErrorWithItsLine(_ c: Case) {
        switch load(c.yaml) {
        case .success: Issue.record("expected errors for \(c.name)")
        case .failure(let e):
            #expect(e.errors.map(\.description) == c.expected)
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
        ("${A}", ["A": #"a"b"#], #"a"b"#),
        ("${A}", ["A": #"q\tx"#], #"q\tx"#),
        ("${A}", ["A": "x # not a comment: [y]"], "x # not a comment: [y]"),
        ("${A:+on}", ["A": "x"], "on"),
        ("${A:+on}", ["A": ""], ""),
        ("${A:+on}", [:], ""),
    ] as [(String, [String: String], String)])
    func envExpansion_substitutesValuesAsData(_ input: String, _ env: [String: String], _ expected: String) throws {
        // In a double-quoted scalar, in a plain one, and in a flow mapping: the value
        // arrives as set, never read as YAML. (`${1}` and `$${A}` are literal text
        // with a `{`, which is syntax in a flow mapping: left out there.)
        for yaml in ["name: \"\(input)\"", "name: \(input)", "{ name: \(input) }"] where !(yaml.hasPrefix("{") && (input.contains("${1}") || input.contains("$${"))) {
            let c = try PipelineSpec.decodeStage(CountingSourceConfig.self, yaml: yaml, environment: env)
            #expect(c.name == expected, "\(yaml)")
        }
    }

    @Test func envExpansion_ignoresCommentsAndNamesTheVariableInErrors() {
        let yaml = """
        # ${NOT_SET_ANYWHERE} in a comment is neither expanded nor an error
        sources:
          a: { type: test_counter_source, batches: "${BATCHES}" }   # ${ALSO_NOT_SET}
        sinks:
          s: { type: test_collect, inputs: [a] }
        """
        guard case .failure(let e) = load(yaml, env: ["BATCHES": "-1x"]) else { Issue.record("expected an error"); return }
        #expect(e.errors.map(\.description) == ["line 3: sources.a.batches (from environment variable `BATCHES`): expected an integer, got `-1x`"])
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
