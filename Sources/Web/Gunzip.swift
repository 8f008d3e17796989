import CZlib

/// Inflates a gzip (or zlib) request body, refusing to produce more than `limit`
/// bytes: a small body that inflates to gigabytes is refused, not allocated.
/// Owns its `z_stream` for the duration of one call only.
package enum Gunzip {
    package enum Failure: Error, Equatable { case tooLarge, malformed }

    package static func inflate(_ input: [UInt8], limit: Int) throws(Failure) -> [UInt8] {
        var stream = z_stream()
        guard cz_inflate_init_auto(&stream) == Z_OK else { throw .malformed }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: min(limit + 1, max(4096, input.count * 4)))
        var produced = 0
        var status: Int32 = Z_OK
        input.withUnsafeBufferPointer { inp in
            stream.next_in = UnsafeMutablePointer(mutating: inp.baseAddress)
            stream.avail_in = uInt(inp.count)
            while true {
                if produced == output.count {
                    guard output.count <= limit else { status = Z_BUF_ERROR; return }
                    output.append(contentsOf: repeatElement(0, count: min(output.count, limit + 1 - output.count)))
                }
                status = output.withUnsafeMutableBufferPointer { outp in
                    stream.next_out = outp.baseAddress! + produced
                    stream.avail_out = uInt(outp.count - produced)
                    let s = CZlib.inflate(&stream, Z_NO_FLUSH)
                    produced = outp.count - Int(stream.avail_out)
                    return s
                }
                if status == Z_STREAM_END || (status != Z_OK && status != Z_BUF_ERROR) { return }
                if status == Z_BUF_ERROR && stream.avail_in == 0 && produced < output.count { return }   // truncated input
            }
        }
        if produced > limit { throw .tooLarge }
        guard status == Z_STREAM_END else { throw status == Z_BUF_ERROR && produced >= output.count ? .tooLarge : .malformed }
        output.removeSubrange(produced...)
        return output
    }
}
