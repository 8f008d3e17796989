import CJanssonArena
import Foundation
import Logging
import Pipeline
import Testing
@testable import Transforms

func decoder(_ config: JSONDecodeConfig? = nil) -> JSONDecodeTransform {
    let c = config ?? JSONDecodeConfig(options: OptionReader(describing: "d"))
    return JSONDecodeTransform(config: c, context: StageContext(id: "d", logger: Logger(label: "t"), telemetry: Telemetry(), health: HealthBoard(), workers: 1))
}

func run(_ t: JSONDecodeTransform, _ payloads: [String]) -> Batch {
    var p = PayloadBatch()
    for s in payloads { p.append(Array(s.utf8), origin: 1) }
    var batch = Batch(payloads: p)
    t.process(&batch, worker: 0)
    return batch
}

func reasons(_ b: Batch) -> [String] {
    b.drops.entries.flatMap { e in Array(repeating: e.reason.name, count: e.count) }.sorted()
}

@Suite struct JSONDecodeTransformTests {
    func exemplarDrops(_ t: Telemetry) -> [String: Double] {
        var out: [String: Double] = [:]
        for f in t.collect() where f.name == "prom_stream_gateway_dropped_exemplars_total" {
            for s in f.samples where s.value > 0 { out[s.labels[0].1] = s.value }
        }
        return out
    }

    @Test func exemplar_isKeptWithItsLabelsValueAndTimestamp_orDroppedAloneWithAReason() {
        let telemetry = Telemetry()
        let d = JSONDecodeTransform(config: JSONDecodeConfig(options: OptionReader(describing: "d")),
                                    context: StageContext(id: "d", logger: Logger(label: "t"), telemetry: telemetry, health: HealthBoard(), workers: 1))
        let long = String(repeating: "x", count: 120)
        let b = run(d, [
            #"{"type":"counter","name":"a_total","value":2,"exemplar":{"labels":{"trace_id":"4bf9"},"value":0.31,"timestamp":1732550000.123}}"#,
            #"{"exemplar":{"labels":{"trace_id":"t"}},"type":"histogram","name":"h","value":5,"buckets":[1]}"#,   // value defaults to the sample's
            #"{"type":"counter","name":"b_total","value":1,"exemplar":{"labels":{"trace_id":"\#(long)"}}}"#,   // 8 + 120 = 128: kept
            #"{"type":"counter","name":"c_total","value":1,"exemplar":{"labels":{"trace_id":"\#(long)é"}}}"#,   // 129 characters
            #"{"type":"counter","name":"d_total","value":1,"exemplar":{"labels":{"1bad":"x"}}}"#,
            #"{"type":"counter","name":"e_total","value":1,"exemplar":{"labels":{"n":1}}}"#,
            #"{"type":"counter","name":"f_total","value":1,"exemplar":[1]}"#,
            #"{"type":"counter","name":"g_total","value":1,"exemplar":{"timestamp":-1}}"#,
            #"{"type":"counter","name":"t_total","value":1,"exemplar":{"timestamp":1e300}}"#,   // protobuf's int64 seconds could not hold it
            #"{"type":"gauge","name":"g","value":1,"exemplar":{"labels":{"trace_id":"t"}}}"#,
            #"{"type":"counter","name":"h_total","value":1,"exemplar":null}"#,
        ])
        #expect(b.drops.isEmpty, "a bad exemplar never drops its sample")
        #expect(b.samples.count == 11)
        let s = b.samples
        let first = s.exemplar(of: s.records[0])
        #expect(first?.value == 0.31 && first?.timestamp == 1732550000.123)
        #expect(first.map { s.string(s.labels[$0.labelRange.lowerBound].value) } == "4bf9")
        let second = s.exemplar(of: s.records[1])
        #expect(second?.value == 5 && second?.timestamp.isNaN == true)
        #expect(s.exemplar(of: s.records[2]) != nil)
        #expect((3..<11).allSatisfy { s.exemplar(of: s.records[$0]) == nil })
        #expect(exemplarDrops(telemetry) == ["exemplar_too_long": 1, "invalid_exemplar": 5, "exemplar_unsupported_type": 1])
        #expect(s.labels.count == 4, "invalid exemplars leave no labels behind (the gauge's valid one stays unused in the arena)")
    }
    @Test func fullSample_extractsEveryField() {
        let b = run(decoder(), [#"{"type":"summary","name":"rpc_seconds","value":0.25,"help":"RPC time","labels":{"svc":"api","code":200,"ok":true,"r":1.5},"quantiles":[0.5,0.9],"epsilons":[0.05,0.01],"extra":{"ignored":[1,2]}}"#])
        #expect(b.kind == .samples)
        #expect(b.samples.count == 1)
        let s = b.samples
        #expect(s.records[0].type == .summary)
        #expect(s.name(at: 0) == "rpc_seconds")
        #expect(s.records[0].value == 0.25)
        #expect(s.string(s.records[0].help) == "RPC time")
        #expect(s.labels(at: 0).map { "\($0.name)=\($0.value)" }.sorted() == ["code=200", "ok=true", "r=1.5", "svc=api"])
        #expect(Array(s.numbers(s.records[0].quantiles)) == [0.5, 0.9])
        #expect(Array(s.numbers(s.records[0].epsilons)) == [0.05, 0.01])
        #expect(s.records[0].origin == 1)
        #expect(b.drops.isEmpty)
    }

    @Test func bucketCounts_makeABinnedHistogram_withTheirTotalFirst() {
        let b = run(decoder(), [
            #"{"type":"histogram","name":"h","value":12.5,"buckets":[0.1,0.5,1],"counts":[3,5,1,2]}"#,
            #"{"type":"histogram","name":"o","value":0.3,"buckets":[1],"counts":null}"#,   // null: an observation
            #"{"type":"counter","name":"c","value":1,"counts":[1,2]}"#,                     // not a histogram's: ignored
            #"{"type":"histogram","name":"x","value":1,"buckets":[1],"counts":[1,"2"]}"#,
            #"{"type":"histogram","name":"e","value":2,"counts":[2],"exemplar":{"labels":{"t":"a"},"value":0.7}}"#,
            #"{"type":"histogram","name":"n","value":2,"counts":[2],"exemplar":{"labels":{"t":"a"}}}"#,
        ])
        let s = b.samples
        #expect(s.count == 5 && reasons(b) == ["bad_buckets"])
        #expect(s.records[0].shape == .binned && Array(s.numbers(s.records[0].bins)) == [11, 3, 5, 1, 2])
        #expect(Array(s.numbers(s.records[0].buckets)) == [0.1, 0.5, 1] && s.records[0].value == 12.5)
        #expect(s.records[1].shape == .observation && s.records[2].shape == .observation)
        #expect(s.exemplar(of: s.records[3])?.value == 0.7)
        #expect(s.exemplar(of: s.records[4]) == nil, "a sum is no observation for an exemplar to stand for")
        let tooMany = "[" + Array(repeating: "0", count: JSONDecodeConfig.defaultMaxBuckets + 2).joined(separator: ",") + "]"
        #expect(reasons(run(decoder(), [#"{"type":"histogram","name":"h","value":0,"counts":\#(tooMany)}"#])) == ["too_long"])
    }

    @Test func arrayElement_yieldsOneSamplePerObjectAndDropsTheBadOnes() {
        let b = run(decoder(), [#"[{"type":"counter","name":"a","value":1},{"type":"gauge","name":"b","value":2},3,{"type":"nope","name":"c","value":1}]"#])
        #expect(b.samples.count == 2)
        #expect(b.samples.name(at: 1) == "b")
        #expect(reasons(b) == ["not_an_object", "unknown_type"])
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var payload: String
        var reason: String
        var testDescription: String { "\(reason): \(payload.prefix(40))" }
    }

    static let cases: [Case] = [
        Case(payload: "not json", reason: "invalid_json"),
        Case(payload: "", reason: "invalid_json"),
        Case(payload: #"{"type":"counter","name":"a","value":1"#, reason: "invalid_json"),
        Case(payload: #"{"type":"counter","name":"a","value":NaN}"#, reason: "invalid_json"),
        Case(payload: #"{"type":"counter","name":"a","value":Infinity}"#, reason: "invalid_json"),
        Case(payload: #"{"type":"counter","type":"gauge","name":"a","value":1}"#, reason: "invalid_json"),
        Case(payload: #"{"type":"counter","name":"a\u0000b","value":1}"#, reason: "invalid_json"),
        Case(payload: #"{"type":"counter","name":"a","value":1e999}"#, reason: "invalid_json"),
        Case(payload: "42", reason: "not_an_object"),
        Case(payload: #""text""#, reason: "not_an_object"),
        Case(payload: #"{"name":"a","value":1}"#, reason: "missing_field"),
        Case(payload: #"{"type":"counter","value":1}"#, reason: "missing_field"),
        Case(payload: #"{"type":"counter","name":"a"}"#, reason: "missing_field"),
        Case(payload: #"{"type":"Countr","name":"a","value":1}"#, reason: "unknown_type"),
        Case(payload: #"{"type":"count\u00e9r","name":"a","value":1}"#, reason: "unknown_type"),
        Case(payload: #"{"type":4,"name":"a","value":1}"#, reason: "unknown_type"),
        Case(payload: #"{"type":1.5,"name":"a","value":1}"#, reason: "unknown_type"),
        Case(payload: #"{"type":"untyped","name":"a","value":1}"#, reason: "unknown_type"),
        Case(payload: #"{"type":true,"name":"a","value":1}"#, reason: "wrong_field_type"),
        Case(payload: #"{"type":"counter","name":"a","value":1,"labels":[{"x":"y"}]}"#, reason: "wrong_field_type"),
        Case(payload: #"{"type":"counter","name":["a"],"value":1}"#, reason: "wrong_field_type"),
        Case(payload: #"{"type":"counter","name":"a","value":"1"}"#, reason: "wrong_field_type"),
        Case(payload: #"{"type":"counter","name":"a","value":null}"#, reason: "wrong_field_type"),
        Case(payload: #"{"type":"counter","name":"a","value":1,"labels":["x"]}"#, reason: "wrong_field_type"),
        Case(payload: #"{"type":"counter","name":"a","value":1,"labels":{"x":null}}"#, reason: "wrong_field_type"),
        Case(payload: #"{"type":"counter","name":"a","value":1,"labels":{"x":{"y":1}}}"#, reason: "wrong_field_type"),
        Case(payload: #"{"type":"counter","name":"a","value":1,"help":5}"#, reason: "wrong_field_type"),
        Case(payload: #"{"type":"histogram","name":"a","value":1,"buckets":"1,2"}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"histogram","name":"a","value":1,"buckets":[1,"2"]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"summary","name":"a","value":1,"quantiles":["x"],"epsilons":[0.1]}"#, reason: "bad_quantiles"),
    ]

    /// The .NET reader's spellings (case-insensitive names, enum numbers), PHP's
    /// empty label map, and integers of any size, which every sender means as doubles.
    @Test(arguments: [
        (#"{"type":"Gauge","name":"a","value":1}"#, MetricType.gauge, 1.0, 0),
        (#"{"type":"COUNTER","name":"a","value":1}"#, .counter, 1, 0),
        (#"{"type":"hIsToGrAm","name":"a","value":1,"buckets":[1]}"#, .histogram, 1, 0),
        (#"{"type":0,"name":"a","value":1}"#, .counter, 1, 0),
        (#"{"type":1,"name":"a","value":1}"#, .gauge, 1, 0),
        (#"{"type":2,"name":"a","value":1}"#, .summary, 1, 0),
        (#"{"type":3,"name":"a","value":1,"buckets":[1]}"#, .histogram, 1, 0),
        (#"{"type":1.0,"name":"a","value":1}"#, .gauge, 1, 0),
        (#"{"type":"counter","name":"a","value":1,"labels":[]}"#, .counter, 1, 0),
        (#"{"type":"counter","name":"a","value":100000000000000000000}"#, .counter, 1e20, 0),
        (#"{"type":"counter","name":"a","value":9223372036854776000}"#, .counter, 9223372036854775808, 0),
        (#"{"type":"gauge","name":"a","value":-18446744073709551616}"#, .gauge, -18446744073709551616, 0),
        (#"{"type":"counter","name":"a","value":1,"labels":{"n":100000000000000000000,"i":42}}"#, .counter, 1, 2),
    ] as [(String, MetricType, Double, Int)])
    func compatibleSpelling_isAccepted(_ payload: String, _ type: MetricType, _ value: Double, _ labels: Int) {
        let b = run(decoder(), [payload])
        #expect(b.drops.isEmpty, "\(reasons(b))")
        #expect(b.samples.records.first?.type == type)
        #expect(b.samples.records.first?.value == value)
        #expect(b.samples.records.first.map { Int($0.labelCount) } == labels)
        if labels == 2 { #expect(b.samples.labels(at: 0).map(\.value) == ["1e+20", "42"]) }
    }

    @Test(arguments: cases)
    func malformedPayload_isDroppedWithItsReason(_ c: Case) {
        let b = run(decoder(), [c.payload])
        #expect(b.samples.count == 0)
        #expect(reasons(b) == [c.reason])
    }

    @Test func limits_dropWithTheirOwnReasons() {
        var c = JSONDecodeConfig(options: OptionReader(describing: "d"))
        c.maxPayloadBytes = 200
        c.maxSamplesPerPayload = 2
        c.maxLabels = 2
        c.maxNameBytes = 10
        c.maxLabelValueBytes = 5
        c.maxHelpBytes = 5
        c.maxBuckets = 2
        let t = decoder(c)
        let b = run(t, [
            "[" + String(repeating: #"{"type":"counter","name":"a","value":1},"#, count: 3).dropLast() + "]",
            #"{"type":"counter","name":"a","value":1,"labels":{"a":"1","b":"2","c":"3"}}"#,
            #"{"type":"counter","name":"abcdefghijk","value":1}"#,
            #"{"type":"counter","name":"a","value":1,"labels":{"a":"123456"}}"#,
            #"{"type":"counter","name":"a","value":1,"help":"123456"}"#,
            #"{"type":"histogram","name":"a","value":1,"buckets":[1,2,3]}"#,
            #"[{"type":"counter","name":"a","value":1},{"type":"counter","name":"b","value":1}]"#,
            #"{"type":"counter","name":"a","value":1, "pad":"\#(String(repeating: "x", count: 300))"}"#,
        ])
        #expect(reasons(b) == ["payload_too_large", "too_long", "too_long", "too_long", "too_long", "too_many_labels", "too_many_samples"])
        #expect(b.samples.count == 2)
    }

    @Test func failedSample_leavesNoTraceInTheArena() {
        let b = run(decoder(), [#"[{"type":"counter","name":"first","value":1,"labels":{"x":"y"}},{"type":"counter","name":"zzz","value":1,"labels":{"p":"q","r":[]}},{"type":"gauge","name":"last","value":2}]"#])
        #expect(b.samples.count == 2)
        #expect(b.samples.labels.count == 1)
        #expect(b.samples.name(at: 1) == "last")
        #expect(!String(decoding: b.samples.bytes, as: UTF8.self).contains("zzz"))
    }

    @Test func documentLargerThanTheArenaBlock_decodes_andTheArenaShrinksBackAfterwards() {
        let big = "[" + (0..<3000).map { #"{"type":"counter","name":"c\#($0)","value":\#($0),"labels":{"k":"v\#($0)"}}"# }.joined(separator: ",") + "]"
        let small = #"{"type":"gauge","name":"g","value":2}"#
        let b = run(decoder(), [small, big, "{not json", small, big])
        #expect(b.samples.count == 2 + 2 * 3000)
        #expect(b.samples.name(at: 3000) == "c2999")
        #expect(b.samples.labels(at: 3000).map(\.value) == ["v2999"])
        #expect(b.samples.name(at: 3001) == "g")
        #expect(reasons(b) == ["invalid_json"])
        // The overflow blocks went with the document; the thread keeps its first block.
        #expect(jansson_arena_capacity() == 64 * 1024)
    }

    @Test func hostileCorpus_isDroppedWithoutCrashing() throws {
        var corpus: [[UInt8]] = []
        var rng = SystemRandomNumberGenerator()
        for n in [1, 7, 100, 4096] { corpus.append((0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }) }
        corpus.append(Array((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8))
        corpus.append(Array((String(repeating: "{\"a\":", count: 100_000) + "1" + String(repeating: "}", count: 100_000)).utf8))
        corpus.append(Array(#"{"type":"counter","name":"\#(String(repeating: "n", count: 2_000_000))","value":1}"#.utf8))
        let manyLabels = (0..<5000).map { "\"l\($0)\":\"v\"" }.joined(separator: ",")
        corpus.append(Array(#"{"type":"counter","name":"a","value":1,"labels":{\#(manyLabels)}}"#.utf8))
        corpus.append([0x7B, 0x22, 0x6E, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D])   // invalid UTF-8
        corpus.append(Array(#"{"type":"counter","name":"a","value":-Infinity}"#.utf8))
        corpus.append(Array(#"{"type":"counter","name":"a","value":1,"value":2}"#.utf8))
        corpus.append(Array(#"[[[{"type":"counter","name":"a","value":1}]]]"#.utf8))
        var p = PayloadBatch()
        for c in corpus { p.append(c, origin: 0) }
        var batch = Batch(payloads: p)
        decoder().process(&batch, worker: 0)
        #expect(batch.samples.count == 0)
        #expect(batch.drops.total == corpus.count)
        let r = Set(reasons(batch))
        #expect(r.isSubset(of: ["invalid_json", "not_an_object", "payload_too_large", "too_many_labels", "too_long"]))
        #expect(r.contains("payload_too_large"))
        #expect(r.contains("too_many_labels"))
    }
}
