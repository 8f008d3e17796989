import Foundation
import Logging
import Pipeline
import Sinks
import Sources
import Synchronization

/// Runs the pipeline and replaces it when its file is reloaded (SIGHUP, or
/// `POST /-/reload` with `--web.enable-lifecycle`).
///
/// A reload first loads and validates the file; one that does not validate is
/// refused, its errors logged, and the running pipeline stays (metric
/// `prom_stream_gateway_config_last_reload_successful` 0). A file that did not
/// change (nor the web config it names) restarts nothing. Otherwise the running
/// pipeline drains as at SIGTERM — sources stop popping, what was taken reaches
/// the sinks, a `prometheus` sink writes its final snapshot — and the new one
/// starts; each `prometheus` sink whose id is in both takes over the old one's
/// aggregate and stream positions in memory (`PrometheusSink.takeOver`), whatever
/// of its options changed, as a restart with its state file would. So aggregates
/// and reliable positions survive; the HTTP listener and the Redis connections are
/// re-opened (a scrape during the switch may be refused), and the meta-metrics'
/// counters start again from zero, as after a restart. If the new pipeline cannot
/// start (a port taken), the previous file's pipeline is started again in its place.
final class Supervisor: Sendable {
    private struct State {
        var runtime: PipelineRuntime
        var spec: PipelineSpec
        var fingerprint: String
        var pending: (PipelineSpec, String)?
        var stopping = false
    }
    private let state: Mutex<State>
    private let load: @Sendable () throws -> (PipelineSpec, String)
    private let logger: Logger
    private let wake = DispatchSemaphore(value: 0)
    private let reloading = Mutex(())

    /// `load` reads and validates the file: the spec and a fingerprint of what it was built from.
    init(spec: PipelineSpec, fingerprint: String, logger: Logger, load: @escaping @Sendable () throws -> (PipelineSpec, String)) throws {
        let runtime = try PipelineRuntime(spec: spec, logger: logger, deadLetters: redisDeadLetterWriters)
        state = Mutex(State(runtime: runtime, spec: spec, fingerprint: fingerprint))
        self.load = load
        self.logger = logger
        try runtime.start()
        ReloadSignal.record(success: true)
        let wake = self.wake
        _ = OSThread.spawn(name: "reload") { [self] in
            while true {
                wake.wait()
                guard let next = state.withLock({ s -> (PipelineSpec, String)? in defer { s.pending = nil }; return s.stopping ? nil : s.pending }) else {
                    if state.withLock({ $0.stopping }) { return }
                    continue
                }
                replace(with: next.0, fingerprint: next.1)
            }
        }
    }

    var runtime: PipelineRuntime { state.withLock { $0.runtime } }

    /// Checks the file now; when it validates and changed, the pipeline is replaced
    /// on the reload thread (the caller does not wait for that).
    func request(reason: String) -> ReloadSignal.Outcome {
        let loaded: (PipelineSpec, String)
        do { loaded = try load() } catch {
            let errors = (error as? ConfigErrors)?.errors.map(\.description) ?? ["\(error)"]
            for e in errors { logger.error("reload refused; the running pipeline stays", metadata: ["reason": "\(reason)", "error": "\(e)"]) }
            ReloadSignal.record(success: false)
            return .refused(errors)
        }
        let unchanged = state.withLock { s in s.fingerprint == loaded.1 }
        if unchanged {
            logger.info("reload: the pipeline file did not change; nothing restarted", metadata: ["reason": "\(reason)"])
            ReloadSignal.record(success: true)
            return .accepted("unchanged; nothing to reload")
        }
        state.withLock { $0.pending = loaded }
        wake.signal()
        return .accepted("reloading")
    }

    private func replace(with spec: PipelineSpec, fingerprint: String) {
        reloading.withLock { _ in
            let (old, oldSpec) = state.withLock { ($0.runtime, $0.spec) }
            let fresh: PipelineRuntime
            do { fresh = try PipelineRuntime(spec: spec, logger: logger, deadLetters: redisDeadLetterWriters) } catch {
                logger.error("reload refused: the new pipeline cannot be built; the running pipeline stays", metadata: ["error": "\(error)"])
                ReloadSignal.record(success: false)
                return
            }
            logger.info("reloading: draining the running pipeline", metadata: ["pipeline": "\(spec.summary)"])
            old.stop()
            old.wait()
            if state.withLock({ $0.stopping }) { return }
            Self.handOver(from: old, to: fresh, spec: spec)
            do {
                try fresh.start()
            } catch {
                logger.error("the reloaded pipeline cannot start; starting the previous one again", metadata: ["error": "\(error)"])
                ReloadSignal.record(success: false)
                do {
                    let back = try PipelineRuntime(spec: oldSpec, logger: logger, deadLetters: redisDeadLetterWriters)
                    Self.handOver(from: old, to: back, spec: oldSpec)
                    try back.start()
                    state.withLock { $0.runtime = back }
                } catch {
                    logger.critical("the previous pipeline cannot start again either; exiting", metadata: ["error": "\(error)"])
                    exit(1)
                }
                return
            }
            state.withLock { s in s.runtime = fresh; s.spec = spec; s.fingerprint = fingerprint }
            ReloadSignal.record(success: true)
            logger.info("reloaded the pipeline file", metadata: ["pipeline": "\(spec.summary)"])
        }
    }

    private static func handOver(from old: PipelineRuntime, to new: PipelineRuntime, spec: PipelineSpec) {
        for decl in spec.stages where decl.role == .sink {
            guard let next = new.sink(decl.id) as? PrometheusSink, let previous = old.sink(decl.id) as? PrometheusSink else { continue }
            next.takeOver(from: previous)
        }
    }

    /// SIGTERM/SIGINT: the running pipeline drains; a reload in progress does not start another.
    func stop() {
        let r = state.withLock { s in s.stopping = true; return s.runtime }
        wake.signal()
        r.stop()
    }

    /// Blocks until stopped (not merely replaced by a reload); returns the last pipeline.
    func wait() -> PipelineRuntime {
        while true {
            let r = runtime
            r.wait()
            let (stopping, current) = state.withLock { ($0.stopping, $0.runtime) }
            if stopping && current === r {
                reloading.withLock { _ in }   // a reload that was draining has finished
                let last = runtime
                if last !== r { last.stop(); last.wait() }
                return last
            }
        }
    }
}
