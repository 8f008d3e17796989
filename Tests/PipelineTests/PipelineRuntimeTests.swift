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

/// `reconfigure(to:)`: what keeps running, what restarts, and that no sample is
/// lost, repeated or reordered across reloads.
@Suite struct RuntimeReloadTests {
    func run(_ yaml: String) throws -> PipelineRuntime {
        let runtime = try PipelineRuntime(spec: spec(yaml), logger: Logger(label: "test"))
        try runtime.start()
        return runtime
    }

    func spec(_ yaml: String) throws -> PipelineSpec { try PipelineSpec.load(yaml: yaml, environment: [:], registry: testRegistry) }

    func reloadable(_ key: String, delay: Int, extra: String = "") -> String {
        """
        sources:
          src: { type: test_counter_source, forever: true, batch_size: 5 }
        transforms:
          t1: { type: test_jitter, inputs: [src], workers: 3, max_delay_us: \(delay) }
        sinks:
          out: { type: test_collect, inputs: [t1], workers: 2, key: \(key) }
        \(extra)
        """
    }

    @Test func reconfigure_keepsUnchangedStagesRunning_restartsWhatFeedsAChange_andLosesOrRepeatsNothing() throws {
        let key = uniqueKey(), key2 = uniqueKey()
        let runtime = try run(reloadable(key, delay: 200))
        let out = try #require(runtime.sink("out"))
        #expect(eventually { TestRegistry.shared.values(key).count > 500 })

        let changedTransform = try runtime.reconfigure(to: spec(reloadable(key, delay: 300)))
        #expect(changedTransform.kept == ["src", "out"] && changedTransform.restarted == [] && changedTransform.rebuilt == ["t1"], "\(changedTransform)")
        #expect(runtime.sink("out").map(ObjectIdentifier.init) == ObjectIdentifier(out), "the sink instance ran throughout")
        let before = TestRegistry.shared.values(key).count
        #expect(eventually { TestRegistry.shared.values(key).count > before + 500 })

        let same = try runtime.reconfigure(to: spec(reloadable(key, delay: 300)))
        #expect(same.changesNothing, "\(same)")

        let second = "  second: { type: test_collect, inputs: [t1], key: \(key2) }"
        let added = try runtime.reconfigure(to: spec(reloadable(key, delay: 300, extra: second)))
        #expect(added.kept == ["src", "out"] && added.restarted == ["t1"] && added.rebuilt == ["second"], "\(added)")
        #expect(eventually { TestRegistry.shared.values(key2).count > 100 })
        let removed = try runtime.reconfigure(to: spec(reloadable(key, delay: 300)))
        #expect(removed.kept == ["src", "out"] && removed.restarted == ["t1"] && removed.removed == ["second"], "\(removed)")
        let oneWorker = reloadable(key, delay: 300).replacingOccurrences(of: "workers: 2", with: "workers: 1")
        let sinkChanged = try runtime.reconfigure(to: spec(oneWorker))
        #expect(sinkChanged.kept == ["src", "t1"] && sinkChanged.rebuilt == ["out"], "\(sinkChanged)")
        let bufferChanged = try runtime.reconfigure(to: spec(oneWorker.replacingOccurrences(of: "workers: 3,", with: "workers: 3, buffer: { capacity: 4 },")))
        #expect(bufferChanged.kept == ["out"] && bufferChanged.restarted == ["src"] && bufferChanged.rebuilt == ["t1"], "a new buffer rewires its producers: \(bufferChanged)")
        let after = TestRegistry.shared.values(key).count
        #expect(eventually { TestRegistry.shared.values(key).count > after + 100 })
        runtime.stop()
        runtime.wait()
        #expect(runtime.phase == .stopped)

        let values = TestRegistry.shared.values(key).map(\.1)
        #expect(values == (0..<values.count).map(Double.init), "every sample once, in source order, across six reloads")
        let seen = TestRegistry.shared.values(key2).map(\.1)
        #expect(seen.count > 100 && seen == (0..<seen.count).map { seen[0] + Double($0) }, "the added sink saw one contiguous run")
    }

    @Test func reconfigure_whoseNewStageCannotStart_runsThePreviousStagesAgain() throws {
        let key = uniqueKey(), lifecycle = uniqueKey()
        let runtime = try run(reloadable(key, delay: 0))
        #expect(eventually { TestRegistry.shared.values(key).count > 100 })
        let broken = "  bad: { type: test_lifecycle, inputs: [t1], key: \(lifecycle), fail_start: true }"
        #expect {
            _ = try runtime.reconfigure(to: spec(reloadable(key, delay: 0, extra: broken)))
        } throws: { error in
            guard case PipelineRuntime.ReconfigurationError.rolledBack(let why)? = error as? PipelineRuntime.ReconfigurationError else { return false }
            return why.contains("sinks.bad")
        }
        #expect(runtime.phase == .running)
        let before = TestRegistry.shared.values(key).count
        #expect(eventually { TestRegistry.shared.values(key).count > before + 100 }, "the previous stages run again")
        #expect(try runtime.reconfigure(to: spec(reloadable(key, delay: 0))).changesNothing, "and are the previous file's")
        runtime.stop()
        runtime.wait()
        let values = TestRegistry.shared.values(key).map(\.1)
        #expect(values == (0..<values.count).map(Double.init))
    }

    @Test func reconfigure_rebuildingASinkThatHoldsDurableStateButCannotTakeItOver_isRefused() throws {
        let key = uniqueKey()
        let durable = reloadable(key, delay: 0).replacingOccurrences(of: "key: \(key) }", with: "key: \(key), durable: true }")
        let runtime = try run(durable)
        #expect(eventually { TestRegistry.shared.values(key).count > 100 })
        #expect {
            _ = try runtime.reconfigure(to: spec(durable.replacingOccurrences(of: "workers: 2", with: "workers: 1")))
        } throws: { error in
            guard case PipelineRuntime.ReconfigurationError.rolledBack(let why)? = error as? PipelineRuntime.ReconfigurationError else { return false }
            return why.contains("sinks.out") && why.contains("holds durable state but cannot take it over")
        }
        let before = TestRegistry.shared.values(key).count
        #expect(eventually { TestRegistry.shared.values(key).count > before + 100 }, "the previous stages run again")
        runtime.stop()
        runtime.wait()
        let values = TestRegistry.shared.values(key).map(\.1)
        #expect(values == (0..<values.count).map(Double.init))
    }

    @Test func reconfigure_whenNeitherTheNewNorThePreviousStageCanStart_reportsFailed() throws {
        let key = uniqueKey(), lifecycle = uniqueKey()
        let once = "  once: { type: test_lifecycle, inputs: [t1], key: \(lifecycle), max_starts: 1 }"
        let runtime = try run(reloadable(key, delay: 500, extra: once))
        #expect(eventually { TestRegistry.shared.values(key).count > 10 })
        #expect {
            _ = try runtime.reconfigure(to: spec(reloadable(key, delay: 500, extra: once.replacingOccurrences(of: "max_starts: 1", with: "fail_start: true"))))
        } throws: { error in
            guard case PipelineRuntime.ReconfigurationError.failed(let why)? = error as? PipelineRuntime.ReconfigurationError else { return false }
            return why.contains("started 1 times already")
        }
        // The gateway exits 1 here (Supervisor); this runtime is left as it is.
    }
}
