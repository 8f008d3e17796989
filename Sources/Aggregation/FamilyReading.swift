/// Reading a family from `MetricStore.snapshot()` outside the store — what a sink
/// that sends the aggregate somewhere (`remote_write`) needs.
extension Family {
    public var seriesCount: Int { series.count }

    /// Series `s`'s labels as exposition text in label-name order (`a="x",b="y\"z"`).
    public func withLabelText<R>(_ s: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R { series.withKey(s, body) }

    /// Calls `body` with each label's name and unescaped value, in label-name order.
    public static func forEachLabel(in text: UnsafeRawBufferPointer, _ body: (_ name: ArraySlice<UInt8>, _ value: [UInt8]) -> Void) {
        var i = 0
        while i < text.count {
            let nameStart = i
            while i < text.count, text[i] != 0x3D { i += 1 }
            let name = ArraySlice(UnsafeRawBufferPointer(rebasing: text[nameStart..<i]))
            i += 2   // `="`
            var value: [UInt8] = []
            while i < text.count, text[i] != 0x22 {
                if text[i] == 0x5C, i + 1 < text.count {
                    value.append(text[i + 1] == 0x6E ? 0x0A : text[i + 1]); i += 2
                } else {
                    value.append(text[i]); i += 1
                }
            }
            i += 2   // `",`
            body(name, value)
        }
    }
}
