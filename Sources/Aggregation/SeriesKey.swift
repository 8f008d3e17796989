import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// A series key: which label names the series has (the number of the name list in its
/// family's `schemas`, a varint) and its label values, each a varint length and the value
/// escaped as the exposition writes it. A series is its label *set*: labels in name
/// order whatever order the sample had, empty values left out (an empty value is no
/// label). The names, the same in nearly every series of a family, are kept once per
/// family: `code="200",method="GET",path="/api/v1/item/7"` is 25 bytes instead of 44.
///
/// A name list (`signature`) is each name as a varint length and its bytes.
///
/// The sink's one thread writes a key per sample into a reused buffer with pointer
/// stores: the values after `schemaRoom` bytes (the number goes in front of them once
/// the family is known), then the names. Labels usually arrive sorted: then nothing is sorted.
enum SeriesKey {
    /// Bytes kept free in front of the values for the schema number (a varint < 2²⁸).
    static let schemaRoom = 4

    /// Where `write` put a sample's values and names in the buffer.
    struct Written { var valuesEnd: Int; var namesEnd: Int }

    /// Writes the values of `r` at `schemaRoom` and its names after them into `buffer`
    /// (grown when short). `labels` is the batch's, borrowed for the batch: reading
    /// `SampleBatch.labels` here retained and released the array per sample (4% of a drain).
    @inline(__always)
    static func write(_ r: SampleRecord, labels: UnsafeBufferPointer<LabelRef>, arena: UnsafeRawBufferPointer, order: inout [Int],
                      into buffer: inout [UInt8]) -> Written {
        order.removeAll(keepingCapacity: true)
        var sorted = true
        var bound = schemaRoom
        for l in r.labelRange where labels[l].value.count > 0 {
            if let last = order.last, !bytesPrecede(slice(arena, labels[last].name), slice(arena, labels[l].name)) { sorted = false }
            order.append(l)
            bound += Int(labels[l].name.count) + 2 * Int(labels[l].value.count) + 20   // two varints; escaping at most doubles
        }
        if !sorted { order.sort { bytesPrecede(slice(arena, labels[$0].name), slice(arena, labels[$1].name)) } }
        if buffer.count < bound { buffer = [UInt8](repeating: 0, count: max(bound, 2 * buffer.count, 256)) }
        // `order` borrowed as a pointer: iterated inside the closure, the captured array was retained and released twice per sample.
        return order.withUnsafeBufferPointer { order in buffer.withUnsafeMutableBytes { out in
            let base = out.baseAddress!
            var n = schemaRoom
            for l in order {
                let value = slice(arena, labels[l].value)
                var specials = 0
                for c in value where c == 0x5C || c == 0x22 || c == 0x0A { specials += 1 }
                n = putVarint(value.count + specials, base, n)
                if specials == 0 {
                    memcpy(base + n, value.baseAddress!, value.count)
                    n += value.count
                } else {
                    for c in value {
                        switch c {
                        case 0x5C: base.storeBytes(of: 0x5C5C, toByteOffset: n, as: UInt16.self); n += 2
                        case 0x22: base.storeBytes(of: 0x225C, toByteOffset: n, as: UInt16.self); n += 2
                        case 0x0A: base.storeBytes(of: 0x6E5C, toByteOffset: n, as: UInt16.self); n += 2
                        default: base.storeBytes(of: c, toByteOffset: n, as: UInt8.self); n += 1
                        }
                    }
                }
            }
            let valuesEnd = n
            for l in order {
                let name = slice(arena, labels[l].name)
                n = putVarint(name.count, base, n)
                memcpy(base + n, name.baseAddress!, name.count)
                n += name.count
            }
            return Written(valuesEnd: valuesEnd, namesEnd: n)
        } }
    }

    /// Puts schema number `schema` right in front of the values (which start at
    /// `schemaRoom`) and returns where the key starts.
    @inline(__always)
    static func prefix(_ schema: Int, _ base: UnsafeMutableRawPointer) -> Int {
        let start = schemaRoom - ProtobufFormat.varintSize(UInt64(schema))
        _ = putVarint(schema, base, start)
        return start
    }

    /// A stored key, `schema`'s number in front of `values` (a key's values), into `key` (emptied first).
    static func assemble(schema: Int, values: UnsafeRawBufferPointer, into key: inout [UInt8]) {
        key.removeAll(keepingCapacity: true)
        ProtobufFormat.varint(UInt64(schema), to: &key)
        key.append(contentsOf: values)
    }

    // MARK: reading a key back

    /// A key's schema number and the values after it.
    @inline(__always)
    static func split(_ key: UnsafeRawBufferPointer) -> (schema: Int, values: UnsafeRawBufferPointer) {
        var p = 0
        let schema = readVarint(key, &p)
        return (schema, UnsafeRawBufferPointer(rebasing: key[p...]))
    }

    /// At least the length of the label text of `values` with `names`: per label `="`, `"`
    /// and `,`, where the two varints take at least 2 bytes.
    @inline(__always)
    static func textBound(values: UnsafeRawBufferPointer, names: UnsafeRawBufferPointer) -> Int { values.count + 2 * names.count }

    /// Writes the label text (`a="x",b="y"`) of `values` with `names` at `out` (at
    /// least `textBound` bytes) and returns its length.
    @inline(__always)
    static func writeText(values: UnsafeRawBufferPointer, names: UnsafeRawBufferPointer, to out: UnsafeMutableRawPointer) -> Int {
        var vp = 0, np = 0, n = 0
        while np < names.count {
            if n > 0 { out.storeBytes(of: 0x2C, toByteOffset: n, as: UInt8.self); n += 1 }
            let nameLength = readVarint(names, &np)
            memcpy(out + n, names.baseAddress! + np, nameLength)
            np += nameLength
            n += nameLength
            out.storeBytes(of: 0x223D, toByteOffset: n, as: UInt16.self)   // `="` (little-endian)
            n += 2
            let valueLength = readVarint(values, &vp)
            if valueLength > 0 { memcpy(out + n, values.baseAddress! + vp, valueLength) }
            vp += valueLength
            n += valueLength
            out.storeBytes(of: 0x22, toByteOffset: n, as: UInt8.self)
            n += 1
        }
        return n
    }

    /// Whether the label text of key `a` sorts before that of key `b` (bytewise), without
    /// writing it when both have the same names: a value that ends first compares as
    /// the `"` that closes it in the text (an escaped value never holds a bare `"`).
    static func textPrecedes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, schemas: ByteKeyTable,
                             scratch: inout ([UInt8], [UInt8])) -> Bool {
        var pa = 0, pb = 0
        let sa = readVarint(a, &pa), sb = readVarint(b, &pb)
        guard sa == sb else { return slowPrecedes(a, b, schemas: schemas, scratch: &scratch) }
        while pa < a.count && pb < b.count {
            let la = readVarint(a, &pa), lb = readVarint(b, &pb)
            let c = memcmp(a.baseAddress! + pa, b.baseAddress! + pb, min(la, lb))
            if c != 0 { return c < 0 }
            if la != lb { return la < lb ? 0x22 < b[pb + la] : a[pa + lb] < 0x22 }
            pa += la
            pb += lb
        }
        return false
    }

    private static func slowPrecedes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, schemas: ByteKeyTable,
                                     scratch: inout ([UInt8], [UInt8])) -> Bool {
        func text(_ key: UnsafeRawBufferPointer, _ out: inout [UInt8]) -> Int {
            let (schema, values) = split(key)
            return schemas.withKey(schema) { names in
                let bound = textBound(values: values, names: names)
                if out.count < bound { out = [UInt8](repeating: 0, count: bound) }
                return out.withUnsafeMutableBytes { writeText(values: values, names: names, to: $0.baseAddress!) }
            }
        }
        let na = text(a, &scratch.0), nb = text(b, &scratch.1)
        return scratch.0[0..<na].lexicographicallyPrecedes(scratch.1[0..<nb])
    }

    // MARK: from label text (a state file's keys)

    /// A key's names and values from its label text (`a="x",b="y"`, values escaped,
    /// names in order): nil when `text` is not label text.
    static func parse(text: [UInt8]) -> (signature: [UInt8], values: [UInt8])? {
        var signature: [UInt8] = [], values: [UInt8] = []
        var i = 0
        while i < text.count {
            if i > 0 { guard text[i] == 0x2C else { return nil }; i += 1 }
            guard let eq = text[i...].firstIndex(of: 0x3D), eq > i, eq + 1 < text.count, text[eq + 1] == 0x22 else { return nil }
            var j = eq + 2
            while j < text.count && text[j] != 0x22 { j += text[j] == 0x5C ? 2 : 1 }
            guard j < text.count else { return nil }
            ProtobufFormat.varint(UInt64(eq - i), to: &signature)
            signature.append(contentsOf: text[i..<eq])
            ProtobufFormat.varint(UInt64(j - eq - 2), to: &values)
            values.append(contentsOf: text[(eq + 2)..<j])
            i = j + 1
        }
        return (signature, values)
    }

    // MARK: varints (LEB128; appended to an array with `ProtobufFormat.varint`)

    @inline(__always)
    static func putVarint(_ v: Int, _ base: UnsafeMutableRawPointer, _ at: Int) -> Int {
        var v = UInt(v), n = at
        while v >= 0x80 { base.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: n, as: UInt8.self); v >>= 7; n += 1 }
        base.storeBytes(of: UInt8(v), toByteOffset: n, as: UInt8.self)
        return n + 1
    }

    @inline(__always)
    static func readVarint(_ b: UnsafeRawBufferPointer, _ p: inout Int) -> Int {
        var v = 0, shift = 0
        while true {
            let c = b[p]
            p += 1
            v |= Int(c & 0x7F) << shift
            if c < 0x80 { return v }
            shift += 7
        }
    }
}
