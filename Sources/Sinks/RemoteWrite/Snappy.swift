import CSnappy

/// snappy's block format (what remote write's `Content-Encoding: snappy` means; not
/// the framed stream format), through libsnappy's C API.
enum Snappy {
    static func compress(_ input: [UInt8], into output: inout [UInt8]) {
        var length = snappy_max_compressed_length(input.count)
        output = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            let status = input.withUnsafeBytes { i in
                buffer.withMemoryRebound(to: CChar.self) { o in
                    i.withMemoryRebound(to: CChar.self) { snappy_compress($0.baseAddress, i.count, o.baseAddress, &length) }
                }
            }
            initialized = status == SNAPPY_OK ? length : 0
        }
    }

    /// nil when `input` is not a valid snappy block.
    static func uncompress(_ input: [UInt8]) -> [UInt8]? {
        var length = 0
        let ok = input.withUnsafeBytes { i in
            i.withMemoryRebound(to: CChar.self) { snappy_uncompressed_length($0.baseAddress, i.count, &length) }
        }
        guard ok == SNAPPY_OK else { return nil }
        var failed = false
        let out = [UInt8](unsafeUninitializedCapacity: length) { buffer, initialized in
            let status = input.withUnsafeBytes { i in
                buffer.withMemoryRebound(to: CChar.self) { o in
                    i.withMemoryRebound(to: CChar.self) { snappy_uncompress($0.baseAddress, i.count, o.baseAddress, &length) }
                }
            }
            failed = status != SNAPPY_OK
            initialized = failed ? 0 : length
        }
        return failed ? nil : out
    }
}
