import Testing
@testable import Aggregation
@testable import Sinks

/// The admin API's PromQL series selectors: what parses, what is refused, what matches.
@Suite struct SeriesSelectorTests {
    func selects(_ selector: String, _ name: String, _ labels: [(String, String)]) throws -> Bool {
        let s = try SeriesSelector(parsing: selector)
        return s.matches(name: Array(name.utf8), labels: labels.map { (Array($0.0.utf8), Array($0.1.utf8)) }, data: s.makeMatchData())
    }

    @Test(arguments: [
        ("jobs_total", "jobs_total", [("queue", "mail")], true),
        ("jobs_total", "jobs", [], false),
        (#"jobs_total{queue="mail"}"#, "jobs_total", [("queue", "mail")], true),
        (#"jobs_total{queue="mail"}"#, "jobs_total", [("queue", "sms")], false),
        (#"{__name__=~"job.*", queue!="sms"}"#, "jobs_total", [("queue", "mail")], true),
        (#"{__name__=~"job"}"#, "jobs_total", [], false),   // anchored, as in Prometheus
        (#"x{a=~"m.*|s.*",b!~"1|2"}"#, "x", [("a", "sms"), ("b", "3")], true),
        (#"x{a=~"m.*|s.*",b!~"1|2"}"#, "x", [("a", "sms"), ("b", "2")], false),
        (#"x{missing=""}"#, "x", [("a", "1")], true),       // an absent label is ""
        (#"x{a!=""}"#, "x", [], false),
        ("x{ a = 'v\\'q' , }", "x", [("a", "v'q")], true),
        ("x{a=`raw\\d`}", "x", [("a", "raw\\d")], true),
        (#"x{path="/a \"q\"\nb"}"#, "x", [("path", "/a \"q\"\nb")], true),
        // A regex that gives up at the match limit on a hostile value selects nothing, with either operator.
        (#"x{a=~"(\\w+\\s?)+"}"#, "x", [("a", String(repeating: "a", count: 40) + "!")], false),
        (#"x{a!~"(\\w+\\s?)+"}"#, "x", [("a", String(repeating: "a", count: 40) + "!")], false),
        (#"x{a!~"(\\w+\\s?)+"}"#, "x", [("a", "!")], true),
    ] as [(String, String, [(String, String)], Bool)])
    func selector_matchesAsPrometheusWould(_ selector: String, _ name: String, _ labels: [(String, String)], _ expected: Bool) throws {
        #expect(try selects(selector, name, labels) == expected)
    }

    @Test(arguments: [
        ("{}", "empty selector"), ("", "empty selector"), (#"{a=~".*"}"#, "does not match the empty string"),
        (#"{a=""}"#, "does not match the empty string"), ("x{a}", "expected =, !=, =~ or !~ after `a`"),
        (#"x{a="v""#, "expected `,` or `}`"), (#"x{a="v}"#, "unterminated string"), (#"x{a=~"("}"#, "invalid regex `(`"),
        (#"x{1a="v"}"#, "expected a label name"), ("x y", "unexpected `y`"), ("x{a=v}", "expected a quoted string"),
    ])
    func badSelector_isRefusedSayingWhy(_ selector: String, _ reason: String) {
        #expect { try SeriesSelector(parsing: selector) } throws: { "\($0)".contains(reason) }
    }

    @Test func seriesKey_isReadBackAsLabels() {
        let key = Array(#"a="x",b="q\"\\\nz",c="""#.utf8)
        let pairs = key.withUnsafeBytes { MetricStore.labelPairs(ofKey: $0) }
        #expect(pairs.map { String(decoding: $0.0, as: UTF8.self) } == ["a", "b", "c"])
        #expect(pairs.map { String(decoding: $0.1, as: UTF8.self) } == ["x", "q\"\\\nz", ""])
    }
}
