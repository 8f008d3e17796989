import Foundation
import Fuzzing

// libFuzzer entry point. `make fuzz` builds this with `-sanitize=fuzzer,address -DFUZZING`:
// libFuzzer then supplies `main`, and any crash — or a rendered page that does not
// re-parse — stops the fuzzer with the offending input saved. Built normally it is
// a replayer: `fuzz FILE…` runs each file through the same harness.
// With PSG_FUZZ=diff (`make fuzz-diff`) it runs the parser differential instead:
// jansson, the simdjson path (scanner, then On-Demand) and On-Demand alone must decode every input alike. libFuzzer calls one input at a time.
// With PSG_FUZZ=otlp (`make fuzz-otlp`) it runs the otlp source's protobuf decoder and mapping.
nonisolated(unsafe) let differential = ProcessInfo.processInfo.environment["PSG_FUZZ"] == "diff" ? ParserDifferential() : nil
let otlp = ProcessInfo.processInfo.environment["PSG_FUZZ"] == "otlp" ? OTLPHarness() : nil
let harness = try! FuzzHarness()

func problem(_ data: UnsafeRawBufferPointer) -> String? {
    if let differential { return differential.difference(data) }
    if let otlp { return otlp.run(data) }
    return harness.run(data)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    if let problem = problem(UnsafeRawBufferPointer(start: data, count: size)) {
        fatalError(problem)
    }
    return 0
}

#if FUZZING
// SwiftPM links every executable's entry point as `main`; hand control to libFuzzer.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
               _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

@main
struct FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(runDriver(&argc, &argv, fuzzOne))
    }
}
#else
@main
struct Replay {
    static func main() throws {
        for path in CommandLine.arguments.dropFirst() {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            if let problem = data.withUnsafeBytes({ problem($0) }) {
                print("\(path): \(problem)")
                exit(1)
            }
        }
    }
}
#endif
