import Testing
@testable import Sinks

/// When the sink hands the heap's free pages back: after the series count moved by a
/// sixteenth (at least 1024 series) either way since the last trim.
@Suite struct HeapTrimTests {
    @Test(arguments: [
        (0, 0, false), (0, 1023, false), (0, 1024, true),                  // a start: 1024 series at least
        (100_000, 106_249, false), (100_000, 106_250, true),              // growth by a sixteenth
        (100_000, 93_751, false), (100_000, 93_750, true),                // expiry or deletion, the same
        (1_000_000, 1_000_000, false), (1_000_000, 0, true),
    ])
    func due(last: Int, series: Int, expected: Bool) {
        #expect(HeapTrim.due(last: last, series: series) == expected)
    }

    @Test func trim_runs() {
        _ = HeapTrim.trim()   // glibc's answer (released or not) depends on the heap; it must not fail
    }
}
