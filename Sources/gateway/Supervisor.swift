import Foundation
import Logging
import Pipeline
import Sinks
import Redis
import Sources
import Synchronization

/// Runs the pipeline and reconfigures it when its file is reloaded (SIGHUP, or
/// `POST /-/reload` with `--web.enable-lifecycle`).
///
/// A reload first loads and validates the file; one that does not validate is
/// refused, its errors logged, and the running pipeline stays (metric
/// `prom_stream_gateway_config_last_reload_successful` 0). A file that did not
/// change (nor the web config it names) touches nothing. Otherwise the runtime
/// changes only what changed (`PipelineRuntime.reconfigure`): stages whose YAML
/// did not change and that feed no changed stage keep running — a `prometheus`
/// sink keeps its aggregate, its HTTP listener and its counters; a changed one is
/// rebuilt and takes over the old one's aggregate (whatever options changed, as a
/// restart with its state file would). If the changed stages cannot start (a port
/// taken), the previous ones start again in their place; if even that fails, the
/// gateway exits 1.
final class Supervisor: Sendable {
    private struct State {
        var fingerprint: String
        var pending: (PipelineSpec, String)?
        var stopping = false
    }
    let runtime: PipelineRuntime
    private let state: Mutex<State>
    private let load: @Sendable () throws -> (PipelineSpec, String)
    private let logger: Logger
    private let wake = DispatchSemaphore(value: 0)

    /// `load` reads and validates the file: the spec and a fingerprint of what it was built from.
    init(spec: PipelineSpec, fingerprint: String, logger: Logger, load: @escaping @Sendable () throws -> (PipelineSpec, String)) throws {
        runtime = try PipelineRuntime(spec: spec, logger: logger)
        state = Mutex(State(fingerprint: fingerprint))
        self.load = load
        self.logger = logger
        try runtime.start()
        ReloadSignal.record(success: true)
        let wake = self.wake
        _ = OSThread.spawn(name: "reload") { [self] in
            while true {
                wake.wait()
                guard let next = state.withLock({ s -> (PipelineSpec, String)? in defer { s.pending = nil };
                        return s.stopping ? nil : s.pending }) else {
                    if state.withLock({ $0.stopping }) { return }
                    continue
                }
                reconfigure(to: next.0, fingerprint: next.1)
            }
        }
    }

    /// Checks the file now; when it validates and changed, the pipeline is
    /// reconfigured on the reload thread (the caller does not wait for that).
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

    private func reconfigure(to spec: PipelineSpec, fingerprint: String) {
        do {
            let report = try runtime.reconfigure(to: spec)
            state.withLock { $0.fingerprint = fingerprint }
            ReloadSignal.record(success: true)
            logger.info(report.changesNothing ? "reloaded the pipeline file; no stage changed" : "reloaded the pipeline file",
                        metadata: ["kept": "\(report.kept.joined(separator: ","))", "restarted": "\(report.restarted.joined(separator: ","))",
                                   "rebuilt": "\(report.rebuilt.joined(separator: ","))", "removed": "\(report.removed.joined(separator: ","))",
                                   "pipeline": "\(spec.summary)"])
        } catch {
            switch error {
            case .notRunning:
                return
            case .rolledBack:
                logger.error("reload failed; the previous pipeline runs again", metadata: ["error": "\(error)"])
                ReloadSignal.record(success: false)
            case .failed:
                logger.critical("reload failed and the previous pipeline cannot start again; exiting", metadata: ["error": "\(error)"])
                exit(1)
            }
        }
    }

    /// SIGTERM/SIGINT: the running pipeline drains (after a reload in progress).
    func stop() {
        state.withLock { $0.stopping = true }
        wake.signal()
        runtime.stop()
    }

    /// Blocks until stopped; returns the pipeline.
    func wait() -> PipelineRuntime {
        runtime.wait()
        return runtime
    }
}
