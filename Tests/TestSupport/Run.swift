import Foundation

/// Runs a command to completion; returns exit status and combined output.
@discardableResult
public func runCommand(_ path: String, _ args: [String], stdin: [UInt8]? = nil, environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    let inPipe = Pipe()
    p.standardInput = stdin == nil ? FileHandle.nullDevice : inPipe
    try p.run()
    // A child that exits before reading all of stdin must not kill the test runner.
    signal(SIGPIPE, SIG_IGN)
    if let stdin {
        DispatchQueue.global().async {
            inPipe.fileHandleForWriting.write(Data(stdin))
            try? inPipe.fileHandleForWriting.close()
        }
    }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// The `python3` on PATH (where `make test`'s pip installs the test decoders).
public let python3: String = {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
        let path = "\(dir)/python3"
        if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    return "/usr/bin/python3"
}()

/// The package root (for fixtures and `pipelines/`).
public let packageRoot: URL = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
}()

/// A documentation file's text (`README.md`, `docs/…`): tests run the snippets where they live.
public func document(_ relativePath: String) throws -> String {
    try String(contentsOf: packageRoot.appendingPathComponent(relativePath), encoding: .utf8)
}

/// A new, empty folder under the temporary directory (the caller removes it).
public func makeTemporaryDirectory(_ prefix: String) throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}
