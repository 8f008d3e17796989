import Logging
import Pipeline

/// Exemplars the decoder dropped while keeping their sample:
/// `prom_stream_gateway_dropped_exemplars_total{reason}`, and a rate-limited warning.
final class ExemplarDrops: Sendable {
    enum Reason: Int, CaseIterable {
        /// Not an object; a label name that is not `[a-zA-Z_][a-zA-Z0-9_]*`; a label
        /// value that is not a string; a value that is not a finite number; a
        /// timestamp that is not a number of seconds in [0, 1e11) (before the year 5138).
        case invalid
        /// Label names and values longer than 128 UTF-8 characters in all.
        case tooLong
        /// On a gauge or a summary: neither format carries exemplars there.
        case unsupportedType

        var label: String {
            switch self {
            case .invalid: "invalid_exemplar"
            case .tooLong: "exemplar_too_long"
            case .unsupportedType: "exemplar_unsupported_type"
            }
        }
    }

    /// The OpenMetrics limit on an exemplar's label set.
    static let maxCharacters = 128
    /// Exemplar timestamps are Unix seconds below this (protobuf carries whole seconds as an int64).
    static let maxTimestamp = 1e11

    private let counters = Reason.allCases.map { _ in MetaCounter() }
    private let log: RateLimitedLog

    init(context: StageContext) {
        log = RateLimitedLog(logger: context.logger)
        let counters = counters
        context.addCollector {
            [MetaFamily(name: Telemetry.prefix + "dropped_exemplars_total",
                        help:
                            "Exemplars dropped while their sample was kept, by reason (invalid_exemplar, exemplar_too_long: over 128 UTF-8 "
                            + "characters of label names and values, exemplar_unsupported_type: on a gauge or summary).",
                        type: .counter,
                        samples: Reason.allCases.map { MetaSample(labels: [("reason", $0.label)], value: Double(counters[$0.rawValue].value)) })]
        }
    }

    func count(_ reason: Reason, sample batch: SampleBatch, record: SampleRecord) {
        counters[reason.rawValue].add()
        log.warning("exemplar dropped (\(reason.label)), sample kept: \(batch.string(record.name))")
    }
}
