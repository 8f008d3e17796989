import Foundation
import Testing
import TestSupport

/// Every relative link in README.md and docs/ reaches a file of this repository, and a
/// link with a `#fragment` a heading of that file (GitHub's anchors: lower case,
/// punctuation dropped, spaces as hyphens). The manual moved into docs/; this keeps
/// its cross-references honest.
@Suite struct DocumentationLinkTests {
    static let files: [String] = {
        let docs = (try? FileManager.default.contentsOfDirectory(atPath: packageRoot.appendingPathComponent("docs").path)) ?? []
        return ["README.md"] + docs.filter { $0.hasSuffix(".md") }.sorted().map { "docs/\($0)" }
    }()

    static func anchors(_ markdown: String) -> Set<String> {
        var out = Set<String>()
        var inCode = false
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inCode.toggle() }
            guard !inCode, line.hasPrefix("#"), let space = line.firstIndex(of: " ") else { continue }
            let text = line[line.index(after: space)...].lowercased()
            let kept = text.unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) || $0 == " " || $0 == "-" || $0 == "_" }
            out.insert(String(String.UnicodeScalarView(kept)).replacingOccurrences(of: " ", with: "-"))
        }
        return out
    }

    static func links(_ markdown: String) -> [String] {
        var out: [String] = []
        var inCode = false
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inCode.toggle() }
            if inCode { continue }
            var rest = Substring(line)
            while let open = rest.range(of: "](") {
                let after = rest[open.upperBound...]
                guard let close = after.firstIndex(of: ")") else { break }
                out.append(String(after[..<close]))
                rest = after[close...]
            }
        }
        return out
    }

    @Test func docsExist() {
        #expect(Self.files.count > 10, "\(Self.files)")
    }

    @Test(arguments: files) func relativeLinks_resolve(_ file: String) throws {
        let text = try document(file)
        let base = packageRoot.appendingPathComponent(file).deletingLastPathComponent()
        for link in Self.links(text) where !link.hasPrefix("http://") && !link.hasPrefix("https://") && !link.hasPrefix("mailto:") {
            let parts = link.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
            let path = String(parts[0]), fragment = parts.count > 1 ? String(parts[1]) : nil
            let target = path.isEmpty ? packageRoot.appendingPathComponent(file) : base.appendingPathComponent(path).standardizedFileURL
            #expect(target.path.hasPrefix(packageRoot.standardizedFileURL.path), "\(file): \(link) leaves the repository")
            #expect(FileManager.default.fileExists(atPath: target.path), "\(file): \(link) — no such file")
            if let fragment, target.pathExtension == "md", let targetText = try? String(contentsOf: target, encoding: .utf8) {
                #expect(Self.anchors(targetText).contains(fragment), "\(file): \(link) — no such heading")
            }
        }
    }

    /// The README names what `make run` and `make test` install: the Makefile's two lists, word for word.
    @Test func readmePackageLists_areTheMakefiles() throws {
        let makefile = try document("Makefile"), readme = try document("README.md")
        func makeList(_ variable: String) throws -> Set<Substring> {
            let line = try #require(makefile.split(separator: "\n").first { $0.hasPrefix("\(variable) := ") })
            return Set(line.dropFirst(variable.count + 4).split(separator: " "))
        }
        let start = try #require(readme.range(of: "Both work on")), end = try #require(readme.range(of: "Then push"))
        let quoted = readme[start.upperBound..<end.lowerBound].split(separator: "`", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }.map { Set($0.element.split(whereSeparator: \.isWhitespace)) }
        #expect(quoted.contains(try makeList("APT_PACKAGES")), "README.md's apt-get list is not the Makefile's APT_PACKAGES")
        #expect(quoted.contains(try makeList("TEST_APT_PACKAGES")), "README.md's test package list is not the Makefile's TEST_APT_PACKAGES")
    }
}
