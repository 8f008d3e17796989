import Foundation
import Synthetic
import Testing

/// `gateway loadgen --series N` makes N distinct series, also beyond the 49 850 its names
/// and label values cover before they repeat.
@Suite struct SyntheticPayloadsTests {
    @Test(arguments: [1_000, 49_850, 120_000])
    func series_areDistinct(_ n: Int) throws {
        let elements = SyntheticPayloads(series: n, mix: [100, 0, 0, 0]).elements()
        var seen = Set<String>()
        for e in elements {
            let o = try #require(JSONSerialization.jsonObject(with: Data(e)) as? [String: Any])
            let labels = try #require(o["labels"] as? [String: String]).sorted { $0.key < $1.key }
            seen.insert("\(o["name"]!)\(labels)")
        }
        #expect(seen.count == n)
    }
}
