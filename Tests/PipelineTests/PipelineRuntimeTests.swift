import Foundation
import Logging
import Pipeline
import Testing
import TestSupport

@Suite struct PipelineRuntimeTests {
    func run(_ yaml: String) throws -> PipelineRuntime {
        let spec = try PipelineSpec.load(yaml: yaml, environment: [:], registry: testRegistry)
        let runtime = try PipelineRuntime(spec: spec, logger: Logger(label: "test"))
        try runtime.start()
        return runtime
    }

    @Test func multiWorkerTransforms_deliverInSourceOrderToOrderedSink() throws {
        let key = uniqueKey()
        let runtime = try run("""
        sources:
          src: { type: test_counter_source, batches: 200, batch_size: 5 }
        transforms:
          t1: { type: test_jitter, inputs: [src], workers: 4, buffer: { capacity: 2 } }
          t2: { type: test_jitter, inputs: [t1], workers: 4 }
        sinks:
          out: { type: test_collect, inputs: [t2], workers: 3, key: \(key) }
        """)
        runtime.wait()
        #expect(runtime.phase == .stopped)
        let values = TestRegistry.shared.values(key).map(\.1)
        #expect(values == (0..<1000).map(Double.init))
    }

    @Test func fanOutAndFanIn_deliverEveryBatchToEverySinkInPerSourceOrder() throws {
        let k1 = uniqueKey(), k2 = uniqueKey()
        let runtime = try run("""
        sources:
          a: { type: test_counter_source, batches: 50, batch_size: 2, name: a }
          b: { type: test_counter_source, batches: 50, batch_size: 2, name: b }
        transforms:
          mix: { type: test_jitter, inputs: [a, b], workers: 3 }
        sinks:
          one: { type: test_collect, inputs: [mix], key: \(k1) }
          two: { type: test_collect, inputs: [mix, a], key: \(k2) }
        """)
        runtime.wait()
        let one = TestRegistry.shared.values(k1)
        #expect(one.filter { $0.0 == "a" }.map(\.1) == (0..<100).map(Double.init))
        #expect(one.filter { $0.0 == "b" }.map(\.1) == (0..<100).map(Double.init))
        let two = TestRegistry.shared.values(k2)
        #expect(two.filter { $0.0 == "a" }.count == 200)   // via mix and directly
        #expect(two.filter { $0.0 == "b" }.map(\.1) == (0..<100).map(Double.init))
    }

    @Test func stop_drainsEverythingAlreadyEmitted() throws {
        let key = uniqueKey()
        let runtime = try run("""
        sources:
          src: { type: test_counter_source, forever: true, batch_size: 7 }
        transforms:
          slow: { type: test_jitter, inputs: [src], workers: 2, max_delay_us: 2000, buffer: { capacity: 16 } }
        sinks:
          out: { type: test_collect, inputs: [slow], key: \(key) }
        """)
        #expect(runtime.phase == .running)
        usleep(200_000)
        runtime.stop()
        #expect(runtime.phase == .draining || runtime.phase == .stopped)
        runtime.wait()
        #expect(runtime.phase == .stopped)
        let values = TestRegistry.shared.values(key).map(\.1)
        #expect(values.count > 0)
        #expect(values.count % 7 == 0)
        // Every emitted sample arrived, in order, none missing at the end.
        #expect(values == (0..<values.count).map(Double.init))
        let items = runtime.telemetry.collect().first { $0.name == "prom_stream_gateway_stage_items_out_total" }
        let emitted = items?.samples.first { $0.labels.first?.1 == "src" }?.value
        #expect(emitted == Double(values.count))
    }

    @Test func dropNewest_countsDroppedBatchesAndNeverBlocksTheSource() throws {
        let key = uniqueKey()
        let runtime = try run("""
        sources:
          src: { type: test_counter_source, batches: 300, batch_size: 1 }
        sinks:
          out: { type: test_collect, inputs: [src], key: \(key), buffer: { capacity: 1, when_full: drop_newest } }
        """)
        runtime.wait()
        let got = TestRegistry.shared.values(key).count
        let dropped = runtime.telemetry.collect().first { $0.name == "prom_stream_gateway_stage_buffer_dropped_batches_total" }?.samples.first?.value ?? -1
        #expect(Double(got) + dropped == 300)
    }
}

/// What the runtime does for every stage: count and log drops, count processed,
/// clean up a half-started pipeline, report every factory error.
@Suite struct RuntimeAccountingTests {
    @Test func dropNewestBuffer_countsEverySampleItDiscards() throws {
        let key = uniqueKey()
        let spec = try PipelineSpec.load(yaml: """
        sources:
          src: { type: test_counter_source, batches: 300, batch_size: 10 }
        sinks:
          out: { type: test_collect, inputs: [src], key: \(key), delay_us: 2000, buffer: { capacity: 1, when_full: drop_newest } }
        """, environment: [:], registry: testRegistry)
        let logs = CapturedLogs()
        let runtime = try PipelineRuntime(spec: spec, logger: logs.logger)
        try runtime.start()
        runtime.wait()
        let t = runtime.telemetry
        let delivered = UInt64(TestRegistry.shared.values(key).count)
        #expect(t.droppedTotal(reason: .bufferFull) > 0, "the sink is slow enough to fill a 1-batch buffer")
        #expect(t.droppedTotal(reason: .bufferFull) % 10 == 0, "samples, not batches")
        #expect(t.processedTotal == delivered)
        #expect(t.processedTotal + t.droppedTotal() == 3000, "every sample is either processed or counted as dropped")
        let family = t.collect().first { $0.name == "prom_stream_gateway_dropped_metrics_total" }
        #expect(family?.samples.contains { $0.labels.contains { $0 == ("reason", "buffer_full") } } == true)
        #expect(logs.messages.contains { $0.level == .warning && $0.text.contains("buffer_full") && $0.text.contains("`out` is full") })
    }

    @Test func everyStagesDrops_areLoggedWithReasonStageAndSample() throws {
        let spec = try PipelineSpec.load(yaml: """
        sources:
          src: { type: test_counter_source, batches: 3, batch_size: 4, name: odd_gauge }
        transforms:
          odd: { type: test_drop_odd, inputs: [src] }
        sinks:
          out: { type: test_collect, inputs: [odd], key: \(uniqueKey()) }
        """, environment: [:], registry: testRegistry)
        let logs = CapturedLogs()
        let runtime = try PipelineRuntime(spec: spec, logger: logs.logger)
        try runtime.start()
        runtime.wait()
        #expect(runtime.telemetry.droppedTotal(reason: DropReason("test_odd")) == 6)
        #expect(runtime.telemetry.processedTotal == 6)
        let warning = logs.messages.first { $0.level == .warning }
        #expect(warning?.text.contains("2 dropped (test_odd 2); first: test_odd: odd_gauge gauge 1.0") == true, "\(logs.messages.map(\.text))")
        #expect(warning?.metadata["stage"] == "odd")
    }

    @Test func stageThatFailsToStart_stopsTheOnesAlreadyStarted() throws {
        let key = uniqueKey()
        let spec = try PipelineSpec.load(yaml: """
        sources:
          src: { type: test_counter_source }
        sinks:
          a: { type: test_lifecycle, inputs: [src], key: \(key) }
          b: { type: test_lifecycle, inputs: [src], key: \(key), fail_start: true }
        """, environment: [:], registry: testRegistry)
        let runtime = try PipelineRuntime(spec: spec, logger: Logger(label: "t"))
        #expect(throws: ConfigErrors.self) { try runtime.start() }
        #expect(runtime.phase == .stopped)
        let events = TestRegistry.shared.values(key).map(\.0)
        #expect(events.filter { $0.hasPrefix("start") } == events.filter { $0.hasPrefix("shutdown") }.map { $0.replacingOccurrences(of: "shutdown", with: "start") })
        #expect(events.contains("start a") == events.contains("shutdown a"))
        runtime.wait()   // returns: nothing runs
    }

    @Test func everyFactoryError_isReported() throws {
        let spec = try PipelineSpec.load(yaml: """
        sources:
          src: { type: test_counter_source }
        sinks:
          a: { type: test_lifecycle, inputs: [src], fail_build: true }
          b: { type: test_lifecycle, inputs: [src], fail_build: true }
        """, environment: [:], registry: testRegistry)
        do {
            _ = try PipelineRuntime(spec: spec, logger: Logger(label: "t"))
            Issue.record("expected errors")
        } catch let e as ConfigErrors {
            #expect(e.errors.map(\.description) == ["line 4: sinks.a: cannot build a", "line 5: sinks.b: cannot build b"])
        }
    }

    @Test func sameLabelsFromTwoStages_areOneSeries() {
        let t = Telemetry()
        t.addCollector { [MetaFamily(name: "x", help: "h", type: .counter, samples: [MetaSample(labels: [("queueKey", "q")], value: 2)])] }
        t.addCollector { [MetaFamily(name: "x", help: "h", type: .counter, samples: [MetaSample(labels: [("queueKey", "q")], value: 3)])] }
        t.addCollector { [MetaFamily(name: "g", help: "h", type: .gauge, samples: [MetaSample(labels: [], value: .nan)])] }
        t.addCollector { [MetaFamily(name: "g", help: "h", type: .gauge, samples: [MetaSample(labels: [], value: 4)])] }
        let families = t.collect()
        #expect(families.first { $0.name == "x" }?.samples.map(\.value) == [5])
        #expect(families.first { $0.name == "g" }?.samples.map(\.value) == [4])
    }
}
