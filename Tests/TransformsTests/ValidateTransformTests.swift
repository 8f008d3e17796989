import Logging
import Pipeline
import Testing
@testable import Transforms

@Suite struct ValidateTransformTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var payload: String
        var reason: String?   // nil: valid
        var testDescription: String { "\(reason ?? "valid"): \(payload)" }
    }

    static let cases: [Case] = [
        Case(payload: #"{"type":"counter","name":"http_requests_total","value":1,"labels":{"code":"200"}}"#, reason: nil),
        Case(payload: #"{"type":"counter","name":"ns:sub_total","value":0}"#, reason: nil),
        Case(payload: #"{"type":"gauge","name":"g","value":-5}"#, reason: nil),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1]}"#, reason: nil),
        Case(payload: #"{"type":"summary","name":"s","value":1}"#, reason: nil),
        Case(payload: #"{"type":"summary","name":"s","value":1,"quantiles":[0.5],"epsilons":[0]}"#, reason: nil),
        Case(payload: #"{"type":"counter","name":"_x","value":1,"labels":{"_a":"1"}}"#, reason: nil),
        Case(payload: #"{"type":"counter","name":"1abc","value":1}"#, reason: "invalid_name"),
        Case(payload: #"{"type":"counter","name":"","value":1}"#, reason: "invalid_name"),
        Case(payload: #"{"type":"counter","name":"a-b","value":1}"#, reason: "invalid_name"),
        Case(payload: #"{"type":"counter","name":"a b","value":1}"#, reason: "invalid_name"),
        Case(payload: #"{"type":"counter","name":"métrique","value":1}"#, reason: "invalid_name"),
        Case(payload: #"{"type":"counter","name":"a","value":1,"labels":{"__name__":"x"}}"#, reason: "invalid_label_name"),
        Case(payload: #"{"type":"counter","name":"a","value":1,"labels":{"a:b":"x"}}"#, reason: "invalid_label_name"),
        Case(payload: #"{"type":"counter","name":"a","value":1,"labels":{"9a":"x"}}"#, reason: "invalid_label_name"),
        Case(payload: #"{"type":"counter","name":"a","value":1,"labels":{"":"x"}}"#, reason: "invalid_label_name"),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1],"labels":{"le":"1"}}"#, reason: "reserved_label"),
        Case(payload: #"{"type":"summary","name":"s","value":1,"labels":{"quantile":"1"}}"#, reason: "reserved_label"),
        Case(payload: #"{"type":"counter","name":"c","value":1,"labels":{"le":"1","quantile":"2"}}"#, reason: nil),
        Case(payload: #"{"type":"counter","name":"c","value":-1}"#, reason: "bad_value"),
        // Without buckets it is the sink's call (native histograms need none).
        Case(payload: #"{"type":"histogram","name":"h","value":1}"#, reason: nil),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[]}"#, reason: nil),
        // Bucket counts: one whole count per bucket and +Inf, over strictly increasing bounds.
        Case(payload: #"{"type":"histogram","name":"h","value":12.5,"buckets":[0.1,0.5,1],"counts":[3,5,1,2]}"#, reason: nil),
        Case(payload: #"{"type":"histogram","name":"h","value":0,"counts":[4]}"#, reason: nil),
        Case(payload: #"{"type":"histogram","name":"h","value":0,"buckets":[1],"counts":[0,0]}"#, reason: nil),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1,2],"counts":[1,1]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1],"counts":[1,1,1]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[2,1],"counts":[1,1,1]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1,1],"counts":[1,1,1]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1],"counts":[0.5,1]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1],"counts":[-1,2]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1],"counts":[1e16,1]}"#, reason: "bad_buckets"),
        // Each count exact, their sum not: 2^53 + 1 rounds to 2^53 (and the sum may not reach 2^53 at all).
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1],"counts":[9007199254740992,1]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1],"counts":[4503599627370496,4503599627370496]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"buckets":[1],"counts":[4503599627370495,4503599627370496]}"#, reason: nil),
        Case(payload: #"{"type":"histogram","name":"h","value":1,"counts":[]}"#, reason: "bad_buckets"),
        Case(payload: #"{"type":"summary","name":"s","value":1,"quantiles":[0.5]}"#, reason: "bad_quantiles"),
        Case(payload: #"{"type":"summary","name":"s","value":1,"quantiles":[1],"epsilons":[0.1]}"#, reason: "bad_quantiles"),
        Case(payload: #"{"type":"summary","name":"s","value":1,"quantiles":[0],"epsilons":[0.1]}"#, reason: "bad_quantiles"),
        Case(payload: #"{"type":"summary","name":"s","value":1,"quantiles":[0.5],"epsilons":[1]}"#, reason: "bad_quantiles"),
        Case(payload: #"{"type":"summary","name":"s","value":1,"quantiles":[0.5],"epsilons":[-0.1]}"#, reason: "bad_quantiles"),
    ]

    @Test(arguments: cases)
    func sample_isKeptOrDroppedWithItsReason(_ c: Case) {
        var batch = run(decoder(), [c.payload])
        #expect(batch.samples.count == 1, "decoding failed: \(reasons(batch))")
        batch.drops.removeAll()
        ValidateTransform().process(&batch, worker: 0)
        #expect(reasons(batch) == (c.reason.map { [$0] } ?? []))
        #expect(batch.liveSampleCount == (c.reason == nil ? 1 : 0))
    }

    @Test func nonFiniteValues_areRejectedExceptForGauges() {
        var s = SampleBatch()
        let name = s.appendString("x")
        for t in MetricType.allCases {
            var r = SampleRecord(type: t, origin: 0, value: .nan, name: name)
            if t == .histogram { r.buckets = s.appendNumbers([1]) }
            s.records.append(r)
        }
        var b = Batch(samples: s)
        ValidateTransform().process(&b, worker: 0)
        #expect(b.samples.records.map(\.isDropped) == [true, false, true, true])
    }
}
