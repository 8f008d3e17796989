import Builtins
import Foundation
import Pipeline
import Redis
import Sources
import Testing
import TestSupport

/// What an operator meets first: the image's user, the HTTP basics, `make run`,
/// the load generator, the README's senders and reference.
@Suite struct DeploymentTests {
    @Test func unprivilegedUser_isServed() throws {
        // The image runs as uid 10001; a socket option only root may set would
        // reset every connection.
        let setpriv = try #require(RedisServer.which("setpriv"), "setpriv not installed (util-linux)")
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"],
                                         launcher: [setpriv, "--reuid=10001", "--regid=10001", "--clear-groups"])
        #expect(try httpGet(port: gateway.port, path: "/").status == 200)
        #expect(eventually { (try? httpGet(port: gateway.port, path: "/ready").status) == 200 })
        try redis.push([#"{"type":"counter","name":"unprivileged_total","value":1}"#])
        #expect(eventually { (try? gateway.value("unprivileged_total")) == 1 })
        let (status, output) = try runCommand("/bin/ps", ["-o", "uid=", "-p", String(gateway.process.processIdentifier)])
        #expect(status == 0 && output.trimmingCharacters(in: .whitespacesAndNewlines) == "10001", "\(output)")
    }

    @Test func http_namesAllowedMethodsAndHasPrometheusAliases() throws {
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:1"])
        let post = try httpGet(port: gateway.port, path: "/metrics", method: "POST")
        #expect(post.status == 405)
        #expect(post.headers["allow"] == "GET, HEAD", "\(post.headers)")
        #expect(try httpGet(port: gateway.port, path: "/-/healthy").status == 200)
        #expect(try httpGet(port: gateway.port, path: "/-/ready").status == 503, "Redis on port 1 is unreachable")
    }

    /// The README's first sending snippet: the PHP library, one LPUSH for both measurements; and, with
    /// nothing listening on its port, the same script ends normally (a Redis that is down throws nothing).
    @Test func phpLibrarySnippet_reachesTheGateway_andRunsWithRedisDown() throws {
        let php = try #require(RedisServer.which("php"), "php not installed (apt-get install php-cli php-redis)")
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        let readme = try document("README.md")
        let start = try #require(readme.range(of: "```php\n// PHP, clients/php\n"))
        let end = try #require(readme[start.upperBound...].range(of: "```"))
        let snippet = String(readme[start.upperBound..<end.lowerBound])
            .replacingOccurrences(of: "'clients/php/autoload.php'", with: "'\(packageRoot.appendingPathComponent("clients/php/autoload.php").path)'")
        #expect(snippet.contains("connect('127.0.0.1', 6379)"))
        func run(port: Int) throws -> (Int32, String) {
            try runCommand(php, ["-r", snippet.replacingOccurrences(of: "connect('127.0.0.1', 6379)", with: "connect('127.0.0.1', \(port))")
                                 + "\necho $m->flush(), ' ', $m->failures();"])
        }
        let (downStatus, downOutput) = try run(port: freePort())
        #expect(downStatus == 0 && downOutput.hasSuffix("0 1"), "the flush failed, counted, nothing thrown: \(downOutput)")
        let (status, output) = try run(port: redis.port)
        #expect(status == 0 && output.hasSuffix("0 0"), "everything was sent by the snippet's flush: \(output)")
        let both = { (try? gateway.value("jobs_total{queue=\"mail\"}")) == 1 && (try? gateway.value("job_duration_seconds_count{queue=\"mail\"}")) == 1 }
        #expect(eventually(both), "\((try? gateway.metrics()) ?? "")")
    }

    @Test func phpSenders_reachTheGateway() throws {
        let php = try #require(RedisServer.which("php"), "php not installed (apt-get install php-cli php-redis php-predis)")
        let redis = try RedisServer()
        let gateway = try GatewayProcess(environment: ["Redis__ConnectionString": "127.0.0.1:\(redis.port)"])
        let readme = try document("docs/sending.md")
        let start = try #require(readme.range(of: "```php\n// PHP, phpredis\n"))
        let end = try #require(readme[start.upperBound...].range(of: "```"))
        let script = """
        <?php
        // PHP, phpredis
        $redis = new Redis(); $redis->connect('127.0.0.1', \(redis.port));
        require '/usr/share/php/Predis/autoload.php';
        $client = new Predis\\Client(['host' => '127.0.0.1', 'port' => \(redis.port)]);
        \(readme[start.upperBound..<end.lowerBound])
        """
        let (status, output) = try runCommand(php, ["-r", String(script.dropFirst("<?php\n".count))])
        #expect(status == 0, "\(output)")
        #expect(eventually { (try? gateway.value("jobs_total{queue=\"mail\"}")) == 1 && (try? gateway.value("jobs_total")) == 1 && (try? gateway.value("queue_depth")) == 42 },
                "\((try? gateway.metrics()) ?? "")")
        #expect(!(try gateway.metrics()).contains("reason=\"wrong_field_type\""))
    }

    @Test func makeRun_stopsTheRedisServerItStarted() throws {
        let redisPort = freePort(), httpPort = freePort()
        let p = Process()
        p.executableURL = packageRoot.appendingPathComponent("scripts/run.sh")
        p.environment = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "GATEWAY_BIN": GatewayProcess.binary,
                         "LISTEN": "127.0.0.1:\(httpPort)", "REDIS_PORT": String(redisPort)]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        #expect(eventually(timeout: 20) { (try? httpGet(port: httpPort, path: "/ready", timeout: 1).status) == 200 })
        // The gateway ends (here: SIGTERM to it, as a crash or Ctrl-C would end it);
        // the script must take its redis-server down with it.
        try runCommand("/usr/bin/pkill", ["-TERM", "-P", String(p.processIdentifier), "-f", "gateway run"])
        p.waitUntilExit()
        #expect((try? RedisConnection(host: "127.0.0.1", port: redisPort, timeout: 0.5, readTimeout: 1)) == nil,
                "the redis-server make run started is still running")
    }

    @Test func loadgen_pushesExactlyWhatItIsAskedFor() throws {
        let redis = try RedisServer()
        let url = "127.0.0.1:\(redis.port)"
        for (args, reason) in [(["--mix", "0,0,0,0"], "--mix"), (["--mix", "50,50"], "--mix"), (["--mix", "10,10,10,10"], "--mix"),
                               (["--count", "0"], "--count must be positive")] {
            let (status, output) = try runCommand(GatewayProcess.binary, ["loadgen", "--redis", url, "--count", "10"] + args)
            #expect(status != 0 && output.contains(reason), "\(args): \(output)")
        }
        let (status, output) = try runCommand(GatewayProcess.binary, ["loadgen", "--redis", url, "--key", "b", "--count", "1505", "--batch", "10", "--quiet"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("sent=1505 "), "\(output)")
        #expect(try redis.llen("b") == 151)
        let paced = try runCommand(GatewayProcess.binary, ["loadgen", "--redis", url, "--key", "r", "--count", "10", "--rate", "5", "--quiet"])
        let seconds = paced.output.split(separator: " ").first { $0.hasPrefix("seconds=") }.flatMap { Double($0.dropFirst(8)) }
        #expect((seconds ?? 0) >= 1.0, "10 samples at 5/s take about 2 s, not one burst: \(paced.output)")
        #expect(try redis.llen("r") == 10)
    }

    @Test func everyRegisteredStage_decodesAndValidatesItsExample() throws {
        for type in builtinStages.sorted {
            func check<C: StageConfig>(_ t: C.Type) throws { _ = try C.decodeExample() }
            try check(type)
        }
    }

    @Test func stageReference_tableRowsHaveFourCells() throws {
        let reference = StageCatalog.render(builtinStages, markdown: true)
        for line in reference.split(separator: "\n") where line.hasPrefix("|") {
            var cells = 0, escaped = false
            for c in line {
                if c == "|" && !escaped { cells += 1 }
                escaped = c == "\\"
            }
            #expect(cells == 5, "a row splits into other cells: \(line)")
        }
        #expect(!reference.contains("``"), "an empty default shows as literal backticks")
    }
}
