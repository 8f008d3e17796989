/// A classic histogram's upper bounds as a family keeps them: finite, sorted, each once
/// (`+Inf` is implied). The store makes a family's layout with it, and the Swift client the
/// bounds its `counts` go with, so both agree on what a sender's bucket list means.
public func histogramBounds(_ buckets: some Sequence<Double>) -> [Double] {
    var out: [Double] = []
    for b in buckets.filter(\.isFinite).sorted() where out.last != b { out.append(b) }
    return out
}
