import Pipeline
import Testing
import TestSupport
import Yams

/// Durations and sizes as users write them, including the ones that used to trap.
@Suite struct OptionReaderTests {
    func read<T>(_ yaml: String, _ get: (OptionReader) -> T) throws -> (T, [String]) {
        let node = try #require(try Yams.compose(yaml: yaml)?.mapping)
        let reader = OptionReader(mapping: node, path: "s", line: 1)
        let value = get(reader)
        reader.finishReading()
        return (value, reader.errors.map(\.message))
    }

    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("2s", .seconds(2)), ("1.5s", .milliseconds(1500)), ("10m", .seconds(600)),
        ("1h", .seconds(3600)), ("250us", .microseconds(250)), ("0", .zero), ("3", .seconds(3)),
        ("106751d", nil), ("1e300s", nil), ("9.3e9s", nil), ("-1s", nil), ("fast", nil), ("1e19ms", nil), ("nan s", nil),
    ] as [(String, Duration?)])
    func duration_parsesOrRejectsWithoutTrapping(_ text: String, _ expected: Duration?) {
        #expect(OptionReader.parseDuration(text) == expected)
    }

    @Test(arguments: [
        ("4096", 4096), ("4KiB", 4096), ("1MiB", 1 << 20), ("2GiB", 2 << 30), ("10B", 10),
        ("99999999999999GiB", nil), ("9223372036854775807KiB", nil), ("0", nil), ("-1", nil), ("lots", nil),
    ] as [(String, Int?)])
    func byteSize_parsesOrRejectsWithoutTrapping(_ text: String, _ expected: Int?) throws {
        let (value, errors) = try read("size: \(text)") { $0.byteSize("size", default: 7, doc: "") }
        if let expected {
            #expect(value == expected && errors.isEmpty, "\(errors)")
        } else {
            #expect(value == 7 && errors.count == 1, "\(errors)")
        }
    }

    @Test func positiveDuration_rejectsZero() throws {
        let (value, errors) = try read("t: 0s") { $0.duration("t", default: .seconds(5), positive: true, doc: "") }
        #expect(value == .seconds(5))
        #expect(errors == ["must be greater than 0"])
    }

    @Test func unknownKey_suggestsTheNearestKnownOne() throws {
        let (_, errors) = try read("max_serie: 1\nzzz: 2") { o in
            _ = o.int("max_series", default: 0, doc: "")
            _ = o.int("max_labels", default: 0, doc: "")
        }
        #expect(errors == ["unknown key (did you mean `max_series`? known: max_labels, max_series)",
                           "unknown key (known: max_labels, max_series)"])
    }

    @Test(arguments: [("wokers", ["workers", "inputs"], "workers"), ("sinks", ["sources", "sinks"], "sinks"),
                      ("x", ["y"], nil), ("listn", ["listen", "key"], "listen"), ("completely", ["workers"], nil)] as [(String, [String], String?)])
    func closest_findsOnlyNearMisses(_ word: String, _ candidates: [String], _ expected: String?) {
        #expect(OptionReader.closest(to: word, in: candidates) == expected)
    }
}
