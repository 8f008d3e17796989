import ArgumentParser
import Builtins
import Foundation
import Logging
import Pipeline
import Sinks

@main
struct Gateway: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Drains JSON samples from Redis lists, aggregates them and serves /metrics for Prometheus.",
        version: GatewayVersion.current,
        subcommands: [Run.self, Validate.self, Stages.self, LoadGen.self, Processing.self, DeadLetters.self, ShardOf.self],
        defaultSubcommand: Run.self)

    /// `run` is the default subcommand, so a mistyped subcommand would otherwise be
    /// reported as an unexpected argument of `run`: name the nearest one instead.
    static func main() {
        // glibc raises its mmap threshold to the largest block freed (up to 32 MiB), after
        // which batch buffers come from the heap and freed ones stay in RSS; a fixed
        // threshold returns them (make bench-memory: 5 000-sample elements 133 → 86 MiB).
        // MALLOC_MMAP_THRESHOLD_ in the environment still wins.
        if getenv("MALLOC_MMAP_THRESHOLD_") == nil { fixMmapThreshold(256 << 10) }
        let args = Array(CommandLine.arguments.dropFirst())
        if let first = args.first, !first.hasPrefix("-") {
            let names = configuration.subcommands.map { $0._commandName } + ["help"]
            if !names.contains(first) {
                let hint = OptionReader.closest(to: first, in: names).map { "; did you mean `\($0)`?" } ?? ""
                let commands = names.dropLast().joined(separator: ", ")
                FileHandle.standardError.write(Data("gateway: unknown command `\(first)`\(hint) (commands: \(commands))\n".utf8))
                Foundation.exit(2)
            }
        }
        main(args)
    }
}

/// Options shared by `run` and `validate`.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Pipeline YAML file. Without it, the default pipeline built from the .NET gateway's environment settings.")
    var config: String?

    @Option(name: .long,
            help: ArgumentHelp("HTTP listen address HOST:PORT; sets ${GATEWAY_LISTEN}, which the default pipeline's sink uses (a file "
                + "given with --config must use it too)."))
    var listen: String?

    @Option(name: .customLong("web.config.file"),
            help: ArgumentHelp("exporter-toolkit web config (TLS, basic auth, headers) for /metrics; sets ${GATEWAY_WEB_CONFIG_FILE}, "
                + "which the default pipeline's sink uses (a file given with --config must use it too)."))
    var webConfigFile: String?

    @Flag(name: .customLong("web.enable-lifecycle"),
            help: ArgumentHelp("Serve POST /-/reload (SIGHUP reloads either way); sets ${GATEWAY_ENABLE_LIFECYCLE}, which the default "
                + "pipeline's sink uses (a file given with --config must use it too)."))
    var enableLifecycle = false

    @Flag(name: .customLong("web.enable-admin-api"),
            help: ArgumentHelp("Serve DELETE/POST /api/v1/series?match[]=SELECTOR; sets ${GATEWAY_ENABLE_ADMIN_API}, which the default "
                + "pipeline's sink uses (a file given with --config must use it too)."))
    var enableAdminAPI = false

    /// A problem with the command line or the file itself, said on one line.
    struct LoadError: Error, CustomStringConvertible { var description: String }

    /// What a flag sets for the file to read: the flag as given, the variable and
    /// its value, and the line to write when a file ignores it.
    private var overrides: [(flag: String, variable: String, value: String, hint: String)] {
        var out: [(flag: String, variable: String, value: String, hint: String)] = []
        if let listen { out.append(("--listen \(listen)", "GATEWAY_LISTEN", listen, "listen: \"${GATEWAY_LISTEN:-0.0.0.0:9091}\"")) }
        if let webConfigFile { out.append(("--web.config.file \(webConfigFile)", "GATEWAY_WEB_CONFIG_FILE", webConfigFile,
                "web_config_file: \"${GATEWAY_WEB_CONFIG_FILE:-}\"")) }
        if enableLifecycle { out.append(("--web.enable-lifecycle", "GATEWAY_ENABLE_LIFECYCLE", "true",
                "enable_lifecycle: ${GATEWAY_ENABLE_LIFECYCLE:-false}")) }
        if enableAdminAPI { out.append(("--web.enable-admin-api", "GATEWAY_ENABLE_ADMIN_API", "true",
                "enable_admin_api: ${GATEWAY_ENABLE_ADMIN_API:-false}")) }
        return out
    }

    func load() throws -> PipelineSpec {
        var env = ProcessInfo.processInfo.environment
        for o in overrides { env[o.variable] = o.value }
        let text: String
        if let config {
            text = try Self.read(config)
        } else {
            text = try defaultPipeline(environment: env)
        }
        let spec = try PipelineSpec.load(yaml: text, environment: env, registry: builtinStages)
        // A flag the file silently ignores (its literal wins, or TLS and auth are not
        // served) would be worse than refusing.
        // Without a sink serving HTTP the gateway serves its process endpoints itself (`ProcessServer`) on --listen.
        let processServer = Self.needsProcessServer(spec)
        for o in overrides where !spec.environmentVariablesUsed.contains(o.variable) {
            if processServer && (o.variable == "GATEWAY_LISTEN" || o.variable == "GATEWAY_ENABLE_LIFECYCLE") { continue }
            let key = o.hint.prefix { $0 != ":" }
            throw LoadError(description: "\(o.flag) has no effect: \(name) does not use ${\(o.variable)} (set the sink's `\(key)` in the "
                + "file, or write `\(o.hint)`)")
        }
        return spec
    }

    /// No `prometheus` sink: nothing else answers /ready, /-/healthy and /-/reload.
    static func needsProcessServer(_ spec: PipelineSpec) -> Bool {
        !spec.stages.contains { $0.config is PrometheusSinkConfig }
    }

    /// Where the process server listens and whether it serves POST /-/reload.
    var processListen: (listen: String, lifecycle: Bool) {
        let env = ProcessInfo.processInfo.environment
        let lifecycle = enableLifecycle || ["true", "1", "yes"].contains((env["GATEWAY_ENABLE_LIFECYCLE"] ?? "").lowercased())
        return (listen ?? env["GATEWAY_LISTEN"] ?? "0.0.0.0:9091", lifecycle)
    }

    /// The file's text, or an error with the OS's reason.
    static func read(_ path: String) throws -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw LoadError(description: "cannot read --config \(path): it is a directory")
        }
        guard let f = fopen(path, "rb") else {
            throw LoadError(description: "cannot read --config \(path): \(String(cString: strerror(errno)).lowercased())")
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n > 0 { bytes += chunk[0..<n] }
            if n < chunk.count {
                if ferror(f) != 0 { throw LoadError(description: "cannot read --config \(path): \(String(cString: strerror(errno)).lowercased())") }
                break
            }
        }
        guard !bytes.isEmpty else { throw LoadError(description: "--config \(path) is empty (a pipeline file declares sources and sinks)") }
        return String(decoding: bytes, as: UTF8.self)
    }

    var name: String { config ?? "default pipeline" }

    /// What a pipeline was built from, to tell a reload that changes nothing: the
    /// file's text and the web config's.
    func fingerprint() -> String {
        let text = (config.flatMap { try? Self.read($0) }) ?? (try? defaultPipeline(environment: ProcessInfo.processInfo.environment))
            ?? defaultPipelineYAML
        let web = (webConfigFile ?? ProcessInfo.processInfo.environment["GATEWAY_WEB_CONFIG_FILE"]).flatMap { try? String(contentsOfFile: $0,
                encoding: .utf8) } ?? ""
        return text + "\u{0}" + web
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a pipeline until SIGTERM or SIGINT, then drain and exit 0.")

    @OptionGroup var options: ConfigOptions

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: $LOG_LEVEL, else info).")
    var logLevel: String?

    @Option(help: ArgumentHelp("Log format: text (one line per event, the default) or json (one JSON object per line: ts, level, logger, "
        + "msg, source, metadata); default $LOG_FORMAT, else text."))
    var logFormat: String?

    func validate() throws {
        _ = try level()
        _ = try format()
    }

    private func format() throws -> Bool {
        let text = logFormat ?? ProcessInfo.processInfo.environment["LOG_FORMAT"] ?? "text"
        switch text.lowercased() {
        case "text": return false
        case "json": return true
        default: throw ValidationError("\(logFormat != nil ? "--log-format" : "LOG_FORMAT") `\(text)` is not one of text, json")
        }
    }

    private func level() throws -> Logger.Level {
        let env = ProcessInfo.processInfo.environment["LOG_LEVEL"]
        let text = logLevel ?? env ?? "info"
        guard let level = Logger.Level(rawValue: text.lowercased()) else {
            let source = logLevel != nil ? "--log-level" : "LOG_LEVEL"
            throw ValidationError("\(source) `\(text)` is not one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return level
    }

    func run() throws {
        let signals = SignalWaiter.blockTerminationSignals()
        let level = try level()
        if try format() {
            LoggingSystem.bootstrap { label in
                var h = JSONLogHandler(label: label)
                h.logLevel = level
                return h
            }
        } else {
            LoggingSystem.bootstrap { label in
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            }
        }
        let logger = Logger(label: "gateway")
        let spec: PipelineSpec
        do { spec = try options.load() } catch let e as ConfigErrors {
            for error in e.errors { logger.critical("\(options.name): \(error)") }
            throw ExitCode(2)
        } catch {
            logger.critical("\(error)")
            throw ExitCode(2)
        }
        let supervisor: Supervisor
        let options = self.options
        do {
            supervisor = try Supervisor(spec: spec, fingerprint: options.fingerprint(), logger: logger) {
                (try options.load(), options.fingerprint())
            }
        } catch let e as ConfigErrors {
            for error in e.errors { logger.critical("cannot start: \(error)") }
            throw ExitCode(1)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        ReloadSignal.install { supervisor.request(reason: "POST /-/reload") }
        var processServer: ProcessServer?
        if ConfigOptions.needsProcessServer(spec) {
            let (listen, lifecycle) = options.processListen
            do {
                processServer = try ProcessServer(listen: listen, telemetry: supervisor.runtime.telemetry, health: supervisor.runtime.health,
                                                  enableLifecycle: lifecycle, logger: logger)
            } catch {
                logger.critical("cannot start: \(error)")
                supervisor.stop()
                _ = supervisor.wait()
                throw ExitCode(1)
            }
        }
        defer { processServer?.shutdown() }
        for w in spec.warnings { logger.warning("\(options.name): \(w)") }
        logger.info("prom-stream-gateway \(GatewayVersion.current) running", metadata: ["pipeline": "\(spec.summary)"])
        signals.onSignal { signal in
            if signal == SIGHUP {
                logger.info("received SIGHUP; re-reading the pipeline file and TLS certificates")
                ReloadSignal.bump()
                _ = supervisor.request(reason: "SIGHUP")
                return
            }
            logger.info("received \(signal == SIGTERM ? "SIGTERM" : "SIGINT"); draining")
            supervisor.stop()
        }
        let runtime = supervisor.wait()
        let t = runtime.telemetry
        // popped = processed + dropped when every element carries one sample
        // (dropped includes what a full drop_newest buffer discarded).
        logger.info("stopped", metadata: ["popped": "\(runtime.sourceItemsEmitted)", "processed": "\(t.processedTotal)",
                "dropped": "\(t.droppedTotal())"])
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check a pipeline file: print a one-line summary, or every error with its line.")

    @OptionGroup var options: ConfigOptions

    @Argument(help: "Pipeline files to check, as `promtool check config` takes them: each as with --config, all of them reported.")
    var files: [String] = []

    func run() throws {
        var each = files.map { file in var o = options; o.config = file; return o }
        if each.isEmpty || options.config != nil { each.insert(options, at: 0) }
        // Every file is checked, the exit status says whether all passed.
        if !each.map(check).allSatisfy({ $0 }) { throw ExitCode(1) }
    }

    private func check(_ options: ConfigOptions) -> Bool {
        do {
            let spec = try options.load()
            for w in spec.warnings { FileHandle.standardError.write(Data("\(options.name): warning: \(w)\n".utf8)) }
            print("ok: \(options.name): \(spec.summary)")
            return true
        } catch let e as ConfigErrors {
            for error in e.errors {
                FileHandle.standardError.write(Data("\(options.name): \(error)\n".utf8))
            }
        } catch {
            FileHandle.standardError.write(Data("\(error)\n".utf8))
        }
        return false
    }
}

struct Stages: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the registered stage types with their options and defaults.")

    @Flag(help: "Print Markdown (docs/stages.md, the stage reference).")
    var markdown = false

    func run() {
        print(StageCatalog.render(builtinStages, markdown: markdown), terminator: "")
    }
}

/// `mallopt(M_MMAP_THRESHOLD, bytes)`; malloc.h is not in Swift's Glibc module.
private func fixMmapThreshold(_ bytes: Int32) {
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }   // RTLD_DEFAULT
    _ = unsafeBitCast(symbol, to: Mallopt.self)(-3, bytes)   // M_MMAP_THRESHOLD
}
