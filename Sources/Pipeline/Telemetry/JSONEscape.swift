/// `s` as the inside of a JSON string literal (`/ready`'s body, JSON log lines, dead letters),
/// cut before the escaped text would pass `limit` bytes. Byte by byte: a dead letter escapes a
/// hostile element on the stage's thread, where a `String` per control character cost ~10 ms a letter.
public func jsonEscape(_ s: String, limit: Int = .max) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(min(s.utf8.count + 16, limit))
    var cut = false
    for b in s.utf8 {
        let needed = b == 0x22 || b == 0x5C || b == 0x0A ? 2 : b < 0x20 ? 6 : 1
        guard out.count + needed <= limit else { cut = true; break }
        switch b {
        case 0x22, 0x5C: out.append(0x5C); out.append(b)                    // \" and \\
        case 0x0A: out.append(0x5C); out.append(0x6E)                       // \n
        case ..<0x20:                                                       // \u00XX
            out.append(0x5C); out.append(0x75); out.append(0x30); out.append(0x30)
            out.append(hexDigit(b >> 4)); out.append(hexDigit(b & 0x0F))
        default: out.append(b)
        }
    }
    if cut { dropPartialCharacter(&out) }
    return String(decoding: out, as: UTF8.self)
}

@inline(__always) private func hexDigit(_ n: UInt8) -> UInt8 { n < 10 ? 0x30 + n : 0x57 + n }

/// A cut in the middle of a UTF-8 sequence leaves its first bytes: they go too.
private func dropPartialCharacter(_ out: inout [UInt8]) {
    var i = out.count
    while i > 0 && out[i - 1] & 0xC0 == 0x80 { i -= 1 }   // continuation bytes
    guard i > 0, out[i - 1] >= 0xC0 else { return }       // the text ends in ASCII
    let lead = out[i - 1], length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
    if out.count - (i - 1) < length { out.removeSubrange((i - 1)...) }
}
