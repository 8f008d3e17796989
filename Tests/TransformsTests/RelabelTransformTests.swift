import Foundation
import Pipeline
import Testing
import TestSupport
@testable import Transforms

/// Loads `rules` (YAML list) as a relabel stage.
func relabelConfig(_ rules: String) throws -> RelabelConfig {
    let spec = try PipelineSpec.load(yaml: """
        sources: { s: { type: test_counter_source } }
        transforms:
          r:
            type: relabel
            inputs: [s]
            rules:
        \(rules.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n"))
        sinks: { k: { type: test_collect, inputs: [r] } }
        """, environment: [:], registry: testRegistry.adding(RelabelConfig.self))
    return spec.stage("r")!.config as! RelabelConfig
}

extension StageRegistry {
    func adding(_ t: any StageConfig.Type) -> StageRegistry { var r = self; r.register(t); return r }
}

/// Applies the rules to one sample; nil when dropped, else "name{a=1,b=2}" with sorted labels.
func relabel(_ rules: String, _ name: String, _ labels: [(String, String)], type: MetricType = .counter) throws -> String? {
    let config = try relabelConfig(rules)
    var batch = sampleBatch([TestSample(type, name, 1, labels: labels)])
    RelabelTransform(rules: config.rules).process(&batch, worker: 0)
    guard !batch.samples.records[0].isDropped else {
        #expect(batch.drops.entries.first?.reason == .relabelDrop)
        return nil
    }
    let l = batch.samples.labels(at: 0).sorted { $0.name < $1.name }.map { "\($0.name)=\($0.value)" }
    return batch.samples.name(at: 0) + "{" + l.joined(separator: ",") + "}"
}

@Suite struct RelabelTransformTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var rules: String
        var input: [(String, String)]
        var expected: String?   // nil: dropped
        var metric = "m"
        var type = MetricType.counter
        var testDescription: String { name }
    }

    static let abc: [(String, String)] = [("a", "foo"), ("b", "bar"), ("c", "baz")]

    static let cases: [Case] = [
        Case(name: "replace with groups", rules: #"- { source_labels: [a], regex: "f(.*)", target_label: d, replacement: "ch${1}-ch${1}" }"#,
             input: abc, expected: "m{a=foo,b=bar,c=baz,d=choo-choo}"),
        Case(name: "replace joins several sources with the separator", rules: #"- { source_labels: [a, b], regex: "f(.*);(.*)r", target_label: a, replacement: "b${1}${2}m" }"#,
             input: abc, expected: "m{a=boobam,b=bar,c=baz}"),
        Case(name: "rules chain", rules: """
            - { source_labels: [a], regex: "f(.*)", target_label: d, replacement: "ch$1" }
            - { source_labels: [d], regex: "ch(.*)", target_label: e, replacement: "x${1}" }
            """, input: abc, expected: "m{a=foo,b=bar,c=baz,d=choo,e=xoo}"),
        Case(name: "replace without match changes nothing", rules: #"- { source_labels: [a], regex: "x(.*)", target_label: d }"#,
             input: abc, expected: "m{a=foo,b=bar,c=baz}"),
        Case(name: "regex is fully anchored", rules: #"- { source_labels: [a], regex: "f|o", target_label: d, replacement: hit }"#,
             input: abc, expected: "m{a=foo,b=bar,c=baz}"),
        Case(name: "missing source label reads as empty", rules: #"- { source_labels: [zzz], regex: "", target_label: d, replacement: empty }"#,
             input: abc, expected: "m{a=foo,b=bar,c=baz,d=empty}"),
        Case(name: "empty replacement deletes the target", rules: #"- { source_labels: [a], target_label: b, replacement: "" }"#,
             input: abc, expected: "m{a=foo,c=baz}"),
        Case(name: "default replacement copies the value", rules: "- { source_labels: [a], target_label: z }",
             input: abc, expected: "m{a=foo,b=bar,c=baz,z=foo}"),
        Case(name: "$1x names a group `1x`, which is empty", rules: #"- { source_labels: [a], regex: "(f)oo", target_label: b, replacement: "$1x" }"#,
             input: abc, expected: "m{a=foo,c=baz}"),
        // `$$` escapes twice: once for ${VAR} expansion of the file, once for the template.
        Case(name: "$$ is a literal dollar", rules: #"- { source_labels: [a], target_label: d, replacement: "$$$$${1}" }"#,
             input: abc, expected: "m{a=foo,b=bar,c=baz,d=$foo}"),
        Case(name: "named groups", rules: #"- { source_labels: [a], regex: "(?P<first>f)(?<rest>.*)", target_label: d, replacement: "$${rest}-$${first}" }"#,
             input: abc, expected: "m{a=foo,b=bar,c=baz,d=oo-f}"),
        Case(name: "target label from a template", rules: #"- { source_labels: [a], regex: "(f)(.*)", target_label: "lbl_${2}", replacement: "$1" }"#,
             input: abc, expected: "m{a=foo,b=bar,c=baz,lbl_oo=f}"),
        Case(name: "invalid expanded target leaves the sample unchanged", rules: #"- { source_labels: [a], regex: "(.*)", target_label: "${1}", replacement: x }"#,
             input: [("a", "9-not-a-name")], expected: "m{a=9-not-a-name}"),
        Case(name: "drop on match", rules: #"- { source_labels: [a], regex: ".*o.*", action: drop }"#, input: abc, expected: nil),
        Case(name: "drop without match keeps", rules: #"- { source_labels: [a], regex: "x", action: drop }"#, input: abc, expected: "m{a=foo,b=bar,c=baz}"),
        Case(name: "keep without match drops", rules: #"- { source_labels: [a], regex: "no-match", action: keep }"#, input: abc, expected: nil),
        Case(name: "keep on match keeps", rules: #"- { source_labels: [a], regex: "f.*", action: keep }"#, input: abc, expected: "m{a=foo,b=bar,c=baz}"),
        Case(name: "keep on an empty missing label", rules: #"- { source_labels: [nope], regex: "", action: keep }"#, input: abc, expected: "m{a=foo,b=bar,c=baz}"),
        Case(name: "hashmod as Prometheus computes it", rules: "- { source_labels: [c], target_label: d, modulus: 1000, action: hashmod }",
             input: abc, expected: "m{a=foo,b=bar,c=baz,d=976}"),
        Case(name: "labelmap copies matching labels under new names", rules: #"- { regex: "(b.*)", replacement: "bar_${1}", action: labelmap }"#,
             input: [("a", "foo"), ("b1", "bar"), ("b2", "baz")], expected: "m{a=foo,b1=bar,b2=baz,bar_b1=bar,bar_b2=baz}"),
        Case(name: "labeldrop removes matching labels", rules: #"- { regex: "b.*", action: labeldrop }"#,
             input: [("a", "foo"), ("b1", "bar"), ("b2", "baz")], expected: "m{a=foo}"),
        Case(name: "labelkeep keeps only matching labels", rules: #"- { regex: "(b.*)", action: labelkeep }"#,
             input: [("a", "foo"), ("b1", "bar"), ("b2", "baz")], expected: "m{b1=bar,b2=baz}"),
        Case(name: "lowercase", rules: "- { source_labels: [foo], target_label: foo_lower, action: lowercase }",
             input: [("foo", "BAR.Baz")], expected: "m{foo=BAR.Baz,foo_lower=bar.baz}"),
        Case(name: "uppercase", rules: "- { source_labels: [foo], target_label: foo_upper, action: uppercase }",
             input: [("foo", "bar")], expected: "m{foo=bar,foo_upper=BAR}"),
        Case(name: "keepequal keeps when equal", rules: "- { source_labels: [a], target_label: b, action: keepequal }",
             input: [("a", "x"), ("b", "x")], expected: "m{a=x,b=x}"),
        Case(name: "keepequal drops when different", rules: "- { source_labels: [a], target_label: b, action: keepequal }",
             input: [("a", "x"), ("b", "y")], expected: nil),
        Case(name: "dropequal drops when equal", rules: "- { source_labels: [a], target_label: b, action: dropequal }",
             input: [("a", "x"), ("b", "x")], expected: nil),
        Case(name: "rename a metric through __name__", rules: #"- { source_labels: [__name__], regex: "(.*)_ms", target_label: __name__, replacement: "${1}_seconds" }"#,
             input: [], expected: "latency_seconds{}", metric: "latency_ms"),
        Case(name: "__type__ is readable", rules: "- { source_labels: [__type__], regex: gauge, action: drop }",
             input: [], expected: nil, type: .gauge),
        Case(name: "__type__ keeps other types", rules: "- { source_labels: [__type__], regex: gauge, action: drop }",
             input: [], expected: "m{}", type: .counter),
        Case(name: "add a static label", rules: "- { target_label: env, replacement: prod }", input: abc, expected: "m{a=foo,b=bar,c=baz,env=prod}"),
        Case(name: "overwrite an existing label", rules: "- { source_labels: [b], target_label: a }", input: abc, expected: "m{a=bar,b=bar,c=baz}"),
    ]

    @Test(arguments: cases)
    func rule_behavesAsPrometheusRelabel(_ c: Case) throws {
        #expect(try relabel(c.rules, c.metric, c.input, type: c.type) == c.expected)
    }

    @Test func cachedOutcomes_matchUncachedOnes() throws {
        let config = try relabelConfig(#"- { source_labels: [a], regex: "(.)(.*)", target_label: d, replacement: "$2$1" }"#)
        let samples = (0..<2000).map { TestSample(.counter, "m", 1, labels: [("a", "v\($0 % 37)")]) }
        var cached = sampleBatch(samples), uncached = sampleBatch(samples)
        RelabelTransform(rules: config.rules, cacheSize: 10).process(&cached, worker: 0)
        RelabelTransform(rules: config.rules, cacheSize: 0).process(&uncached, worker: 0)
        for i in 0..<2000 {
            #expect(cached.samples.labels(at: i).map(\.value) == uncached.samples.labels(at: i).map(\.value))
        }
        #expect(cached.samples.label("d", at: 5) == "5v")
    }

    @Test(arguments: [
        (#"- { source_labels: [a], regex: "(unclosed", target_label: b }"#, "rules[0].regex: invalid regex `(unclosed`"),
        ("- { source_labels: [a], action: explode }", "rules[0].action: must be one of replace, keep"),
        ("- { source_labels: [a], target_label: b, action: hashmod }", "rules[0]: `hashmod` requires a `modulus` greater than 0"),
        ("- { source_labels: [a], action: replace }", "rules[0]: `replace` requires `target_label`"),
        ("- { source_labels: [a], regex: x, action: labeldrop }", "rules[0].source_labels: `labeldrop` takes only regex"),
        ("- { source_labels: [a], target_label: \"bad-name\" }", "rules[0].target_label: `bad-name` is not a valid label name"),
        ("- { regex: a, action: keep }", "rules[0]: `keep` requires `source_labels`"),
        ("- { source_labels: [a], target_label: b, colour: red }", "rules[0].colour: unknown key"),
    ] as [(String, String)])
    func badRule_isAConfigErrorNamingTheRuleAndLine(_ rules: String, _ expected: String) {
        do {
            _ = try relabelConfig("- { source_labels: [ok], target_label: fine }\n" + rules.replacingOccurrences(of: "rules[0]", with: "rules[1]"))
            Issue.record("accepted \(rules)")
        } catch let e as ConfigErrors {
            let text = e.description
            #expect(text.contains("line 8: transforms.r." + expected.replacingOccurrences(of: "rules[0]", with: "rules[1]")), "\(text)")
        } catch { Issue.record("\(error)") }
    }

    /// A backtracking pattern on a value that almost matches gives up at the match limit (it ran
    /// ~47 ms a value and answered "no match": `keep` dropped and `drop` kept what the rule could
    /// not decide): the sample is dropped as `regex_limit`, and so is the same value again (cached).
    @Test(arguments: ["keep", "drop", "replace"])
    func aRegexThatGivesUp_dropsTheSampleAsRegexLimit(action: String) throws {
        let config = try relabelConfig(#"- { source_labels: [a], regex: "(\\w+\\s?)+", action: \#(action), target_label: d }"#)
        let hostile = String(repeating: "a", count: 40) + "!"
        var batch = sampleBatch([TestSample(.counter, "m", 1, labels: [("a", hostile)]), TestSample(.counter, "m", 1, labels: [("a", hostile)]),
                                 TestSample(.counter, "m", 1, labels: [("a", "two words")])])
        RelabelTransform(rules: config.rules).process(&batch, worker: 0)
        #expect(batch.samples.records[0].isDropped && batch.samples.records[1].isDropped)
        #expect(batch.drops.entries.filter { $0.reason == .regexLimit }.reduce(0) { $0 + $1.count } == 2)
        #expect(batch.samples.records[2].isDropped == (action == "drop"), "a value that matches is decided as always")
    }

    @Test func emptyRules_isAConfigError() {
        #expect(throws: ConfigErrors.self) { try relabelConfig("[]") }
    }

    @Test func md5_matchesKnownDigests() {
        let hex = { (s: String) in MD5.digest(Array(s.utf8)).map { String(format: "%02x", $0) }.joined() }
        #expect(hex("") == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(hex("The quick brown fox jumps over the lazy dog") == "9e107d9d372bb6826bd81d3542a419d6")
    }
}
