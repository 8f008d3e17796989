import ArgumentParser
import Foundation
import Logging
import Pipeline

@main
struct Gateway: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Drains JSON samples from Redis lists, aggregates them and serves /metrics for Prometheus.",
        version: GatewayVersion.current,
        subcommands: [Run.self, Validate.self, Stages.self, LoadGen.self],
        defaultSubcommand: Run.self)
}

/// Options shared by `run` and `validate`.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Pipeline YAML file. Without it, the default pipeline built from the .NET gateway's environment settings.")
    var config: String?

    @Option(name: .long, help: "HTTP listen address HOST:PORT; sets ${GATEWAY_LISTEN}, which the default pipeline's sink uses.")
    var listen: String?

    func load() throws -> PipelineSpec {
        var env = ProcessInfo.processInfo.environment
        if let listen { env["GATEWAY_LISTEN"] = listen }
        let text: String
        if let config {
            guard let data = FileManager.default.contents(atPath: config) else {
                throw ValidationError("cannot read --config \(config)")
            }
            text = String(decoding: data, as: UTF8.self)
        } else {
            text = defaultPipelineYAML
        }
        return try PipelineSpec.load(yaml: text, environment: env, registry: builtinStages)
    }

    var name: String { config ?? "default pipeline" }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a pipeline until SIGTERM or SIGINT, then drain and exit 0.")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["LOG_LEVEL"] ?? "info"

    func run() throws {
        let signals = SignalWaiter.blockTerminationSignals()
        let level = Logger.Level(rawValue: logLevel.lowercased()) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "gateway")
        let spec: PipelineSpec
        do { spec = try options.load() } catch let e as ConfigErrors {
            for error in e.errors { logger.critical("\(options.name): \(error)") }
            throw ExitCode(2)
        }
        let runtime: PipelineRuntime
        do {
            runtime = try PipelineRuntime(spec: spec, logger: logger)
            try runtime.start()
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        logger.info("prom-stream-gateway \(GatewayVersion.current) running", metadata: ["pipeline": "\(spec.summary)"])
        signals.onSignal { signal in
            logger.info("received \(signal == SIGTERM ? "SIGTERM" : "SIGINT"); draining")
            runtime.stop()
        }
        runtime.wait()
        let t = runtime.telemetry
        // popped = processed + dropped when every element carries one sample.
        logger.info("stopped", metadata: ["popped": "\(runtime.sourceItemsEmitted)", "processed": "\(t.processedTotal)", "dropped": "\(t.droppedTotal())"])
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a pipeline file: print a one-line summary, or every error with its line.")

    @OptionGroup var options: ConfigOptions

    func run() throws {
        do {
            let spec = try options.load()
            print("ok: \(options.name): \(spec.summary)")
        } catch let e as ConfigErrors {
            for error in e.errors {
                FileHandle.standardError.write(Data("\(options.name): \(error)\n".utf8))
            }
            throw ExitCode(1)
        }
    }
}

struct Stages: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the registered stage types with their options and defaults.")

    @Flag(help: "Print Markdown (the README's configuration reference).")
    var markdown = false

    func run() {
        print(StageCatalog.render(builtinStages, markdown: markdown), terminator: "")
    }
}
