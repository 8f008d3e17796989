@testable import Pipeline
import Testing

/// The table behind every series lookup: keys found again across growth (slots carry
/// 8 bits of hash, entries no hash), keys that share those 8 bits told apart, a full table.
@Suite struct ByteKeyTableTests {
    private func find(_ t: ByteKeyTable, _ key: String) -> Int? {
        var k = Array(key.utf8)
        return k.withUnsafeMutableBytes { t.find(UnsafeRawBufferPointer($0), hash: hashBytes(UnsafeRawBufferPointer($0))) }
    }

    private func insert(_ t: inout ByteKeyTable, _ key: String) -> Int? {
        let k = Array(key.utf8)
        return k.withUnsafeBytes { t.insert($0, hash: hashBytes($0)) }
    }

    @Test func findsEveryKeyAcrossGrowth() {
        var t = ByteKeyTable()
        for i in 0..<50_000 { #expect(insert(&t, "code=\"\(i % 7)\",path=\"/item/\(i)\"") == i) }
        #expect(t.count == 50_000)
        for i in 0..<50_000 { #expect(find(t, "code=\"\(i % 7)\",path=\"/item/\(i)\"") == i) }
        #expect(find(t, "code=\"0\",path=\"/item/50000\"") == nil)
        #expect(find(t, "") == nil)
        #expect(t.withKey(49_999) { Array($0) } == Array("code=\"5\",path=\"/item/49999\"".utf8))
    }

    @Test func keysSharingTheirTagAreToldApart() {
        // Many keys fall on one tag (8 bits of 64): each must still find only itself.
        var t = ByteKeyTable()
        var byTag: [UInt64: [String]] = [:]
        for i in 0..<4096 {
            let k = "k\(i)"
            var bytes = Array(k.utf8)
            byTag[bytes.withUnsafeMutableBytes { hashBytes(UnsafeRawBufferPointer($0)) } >> 56, default: []].append(k)
        }
        let crowd = byTag.values.max { $0.count < $1.count }!
        #expect(crowd.count > 1)
        for (i, k) in crowd.enumerated() { #expect(insert(&t, k) == i) }
        for (i, k) in crowd.enumerated() { #expect(find(t, k) == i) }
        #expect(find(t, "not there") == nil)
    }

    @Test func emptyKeyAndRemoveAll() {
        var t = ByteKeyTable()
        #expect(insert(&t, "") == 0)
        #expect(insert(&t, "a") == 1)
        #expect(find(t, "") == 0)
        t.removeAll()
        #expect(t.count == 0)
        #expect(find(t, "a") == nil)
        #expect(insert(&t, "a") == 0)
        #expect(!t.isFull)
    }

    @Test func aFullTableRefusesNewKeys_andStillFindsItsOwn() {
        var t = ByteKeyTable(limit: 3)
        for i in 0..<3 { #expect(insert(&t, "k\(i)") == i) }
        #expect(t.isFull)
        #expect(insert(&t, "k3") == nil)
        #expect(t.count == 3 && find(t, "k2") == 2 && find(t, "k3") == nil)
        #expect(ByteKeyTable.capacity == 16_777_215)
    }
}
