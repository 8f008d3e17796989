/// Reading a family from `MetricStore.snapshot()` outside the store — what a sink
/// that sends the aggregate somewhere (`remote_write`) needs.
extension Family {
    public var seriesCount: Int { series.count }

    /// Series `s`'s labels as exposition text in label-name order (`a="x",b="y\"z"`).
    public func withLabelText<R>(_ s: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        withLabelTexts { texts in body(texts.text(s)) }
    }

    /// Lends a reader of the series' label text: what a page, a state file or a remote
    /// write request, which read every series, use (the tables are borrowed once, the text written into
    /// one buffer).
    public func withLabelTexts<R>(_ body: (inout LabelTexts) -> R) -> R {
        series.keys.withUnsafeBytes { keys in
            series.keyEnds.withUnsafeBufferPointer { keyEnds in
                schemas.keys.withUnsafeBytes { names in
                    schemas.keyEnds.withUnsafeBufferPointer { nameEnds in
                        var texts = LabelTexts(keys: keys, keyEnds: keyEnds, names: names, nameEnds: nameEnds)
                        defer { texts.buffer.deallocate() }
                        return body(&texts)
                    }
                }
            }
        }
    }
}

/// A family's series keys read back as label text, one series at a time into one buffer
/// (valid until the next `text`).
public struct LabelTexts {
    let keys: UnsafeRawBufferPointer
    let keyEnds: UnsafeBufferPointer<UInt32>
    let names: UnsafeRawBufferPointer
    let nameEnds: UnsafeBufferPointer<UInt32>
    fileprivate var buffer = UnsafeMutableRawPointer.allocate(byteCount: 256, alignment: 1)
    private var capacity = 256

    init(keys: UnsafeRawBufferPointer, keyEnds: UnsafeBufferPointer<UInt32>, names: UnsafeRawBufferPointer,
         nameEnds: UnsafeBufferPointer<UInt32>) {
        self.keys = keys
        self.keyEnds = keyEnds
        self.names = names
        self.nameEnds = nameEnds
    }

    @inline(__always)
    public mutating func text(_ s: Int) -> UnsafeRawBufferPointer {
        let key = UnsafeRawBufferPointer(rebasing: keys[(s == 0 ? 0 : Int(keyEnds[s - 1]))..<Int(keyEnds[s])])
        let (schema, values) = SeriesKey.split(key)
        let list = UnsafeRawBufferPointer(rebasing: names[(schema == 0 ? 0 : Int(nameEnds[schema - 1]))..<Int(nameEnds[schema])])
        let bound = SeriesKey.textBound(values: values, names: list)
        if bound > capacity {
            buffer.deallocate()
            capacity = max(bound, 2 * capacity)
            buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 1)
        }
        return UnsafeRawBufferPointer(start: buffer, count: SeriesKey.writeText(values: values, names: list, to: buffer))
    }
}
