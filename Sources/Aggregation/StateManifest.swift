import Pipeline
#if canImport(Glibc)
import Glibc
#endif

/// The state file since version 3: `state_file` is a manifest; the aggregate lives
/// in segment files beside it (`<state_file>.seg.<id>`), so a snapshot rewrites
/// only what changed (`SnapshotPlan`) instead of every series every interval.
///
/// The manifest (framed as every state file: magic, version, length, CRC-32) holds
/// the capture time, the stream positions, the segments it uses (id, the time they
/// were written, size) and one entry per part — a chunk of `Family.chunkSeries`
/// series of one family — naming its segment, offset, length and CRC-32. A part is
/// a family record of the single-file format, holding that chunk's series.
///
/// Crash safety: a segment is written under a new name, `fsync`ed, and its
/// directory synced before the manifest that names it replaces the old one
/// (`StateFile.write`: temporary file, `fsync`, `rename`, directory `fsync`). Only
/// then are segments the new manifest does not name removed. A crash at any point
/// leaves the old manifest with all its segments, or the new one with all of its;
/// unnamed segments left behind are removed at the next start. A named segment that
/// is missing, of another size, or whose part fails its checksum refuses the state
/// whole, as a damaged single file does.
struct StateManifest: Sendable {
    struct Segment: Sendable, Equatable { var id: UInt64; var writtenAt: UInt64; var size: UInt64 }
    struct Entry: Sendable, Equatable {
        var name: [UInt8]
        var chunk: UInt32
        var segment: UInt64
        var offset: UInt64
        var length: UInt64
        var checksum: UInt32
    }
    var writtenAt: UInt64 = 0
    var positions: [(stream: String, through: UInt64)] = []
    var segments: [Segment] = []
    var entries: [Entry] = []

    static let version: UInt32 = 3
    typealias Corrupt = StateFile.Corrupt

    static func segmentPath(_ path: String, _ id: UInt64) -> String { "\(path).seg.\(id)" }

    func encode() -> [UInt8] {
        var p = StateFile.Writer()
        p.u64(writtenAt)
        p.u32(UInt32(positions.count))
        for (stream, through) in positions { p.bytes(Array(stream.utf8)); p.u64(through) }
        p.u32(UInt32(segments.count))
        for s in segments { p.u64(s.id); p.u64(s.writtenAt); p.u64(s.size) }
        p.u32(UInt32(entries.count))
        for e in entries { p.bytes(e.name); p.u32(e.chunk); p.u64(e.segment); p.u64(e.offset); p.u64(e.length); p.u32(e.checksum) }
        return StateFile.frame(version: Self.version, payload: p.out)
    }

    static func decode(_ bytes: [UInt8]) throws(Corrupt) -> StateManifest {
        let payload = try StateFile.unframe(bytes, versions: version...version).payload
        var r = StateFile.Reader(payload[...])
        var m = StateManifest()
        m.writtenAt = try r.u64()
        for _ in 0..<(try r.count()) { m.positions.append((String(decoding: try r.bytes(), as: UTF8.self), try r.u64())) }
        for _ in 0..<(try r.count()) { m.segments.append(Segment(id: try r.u64(), writtenAt: try r.u64(), size: try r.u64())) }
        let sizes = Dictionary(m.segments.map { ($0.id, $0.size) }, uniquingKeysWith: { a, _ in a })
        for _ in 0..<(try r.count()) {
            let e = Entry(name: try r.bytes(), chunk: try r.u32(), segment: try r.u64(), offset: try r.u64(), length: try r.u64(),
                          checksum: try r.u32())
            guard let size = sizes[e.segment], e.offset <= size, e.length <= size - e.offset else {
                throw Corrupt(description: "a part outside its segment (\(e.segment))")
            }
            // The parts of a family follow each other, chunk 0, 1, 2, …
            let next: UInt32 = m.entries.last.map { $0.name == e.name ? $0.chunk + 1 : 0 } ?? 0
            guard e.chunk == next else { throw Corrupt(description: "parts out of order") }
            m.entries.append(e)
        }
        guard r.atEnd else { throw Corrupt(description: "trailing bytes after the last part") }
        return m
    }

    /// Reads the segments beside `path` and the families they hold, ages moved to
    /// the manifest's time (a part kept from an earlier snapshot counted them then).
    func load(from path: String) throws(Corrupt) -> StoreState {
        var files: [UInt64: [UInt8]] = [:]
        var ages: [UInt64: UInt64] = [:]
        for s in segments {
            let file = Self.segmentPath(path, s.id)
            guard let bytes = try StateFile.read(file) else { throw Corrupt(description: "segment \(file) is missing") }
            guard UInt64(bytes.count) == s.size else { throw Corrupt(description: "segment \(file) has \(bytes.count) bytes, not \(s.size)") }
            files[s.id] = bytes
            ages[s.id] = writtenAt > s.writtenAt ? writtenAt - s.writtenAt : 0
        }
        var state = StoreState()
        state.writtenAt = writtenAt
        state.positions = positions
        for e in entries {
            let bytes = files[e.segment]!   // decode checked every entry's segment
            let part = bytes[Int(e.offset)..<Int(e.offset + e.length)]
            guard StateFile.checksum(part) == e.checksum else { throw Corrupt(description: "checksum mismatch in segment \(e.segment)") }
            var r = StateFile.Reader(part)
            var f = try StateFile.decodeFamily(&r, version: StateFile.version)
            guard r.atEnd, f.name == e.name else { throw Corrupt(description: "a part of segment \(e.segment) is not what the manifest says") }
            if let delta = ages[e.segment], delta > 0 {
                for i in f.series.indices { f.series[i].age = f.series[i].age.map { $0 &+ delta } }
            }
            if e.chunk == 0 {
                state.families.append(f)
            } else {
                guard state.families[state.families.count - 1].type == f.type, state.families[state.families.count - 1].bounds == f.bounds else {
                    throw Corrupt(description: "the parts of \(String(decoding: e.name, as: UTF8.self)) disagree on its type")
                }
                state.families[state.families.count - 1].series.append(contentsOf: f.series)
            }
        }
        return state
    }

    /// The ids of the segment files beside `path` (whatever a manifest names).
    static func segmentsOnDisk(beside path: String) -> [UInt64] {
        let dir = StateFile.directory(of: path)
        let prefix = Array((path.split(separator: "/").last.map(String.init) ?? path).utf8) + Array(".seg.".utf8)
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var ids: [UInt64] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 }))
            }
            guard name.starts(with: prefix), let id = UInt64(String(decoding: name.dropFirst(prefix.count), as: UTF8.self)) else { continue }
            ids.append(id)
        }
        return ids
    }

    /// Removes the segment files beside `path` that `keep` does not hold.
    static func removeSegments(beside path: String, keeping keep: Set<UInt64>) {
        for id in segmentsOnDisk(beside: path) where !keep.contains(id) { unlink(segmentPath(path, id)) }
    }
}
