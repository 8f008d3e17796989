import ArgumentParser
import Foundation
import Pipeline
import Redis
import Sources

/// `gateway processing list|requeue`: the processing lists of reliable gateways on
/// one queue. A list whose instance never comes back is not silently lost: it is
/// listed with its length and idle time, and `requeue` moves its elements back onto
/// the queue, oldest first, for any gateway to pop. That is at-least-once: if the
/// instance had made some of them durable before it vanished (a snapshot written,
/// the trim not yet done), those are applied again — requeue only lists whose
/// instance is gone for good.
struct Processing: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List or requeue the processing lists of reliable gateways.",
                                                    subcommands: [List.self, Requeue.self])

    struct Target: ParsableArguments {
        @Option(help: "Redis URL or .NET connection string.")
        var redis = ProcessInfo.processInfo.environment["Redis__ConnectionString"] ?? "localhost:6379"
        @Option(help: "The queue key.") var key = ProcessInfo.processInfo.environment["Redis__MetricQueueKey"] ?? RedisListConfig.defaultKey

        func connect() throws -> RedisConnection {
            try redisConnector(redis, readTimeout: 10).connect()
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every processing list of the queue: instance, length, seconds since it "
            + "was last touched.")
        @OptionGroup var target: Target

        func run() throws {
            let c = try target.connect()
            let prefix = "\(target.key):processing:"
            var cursor = "0"
            var lists: [String] = []
            repeat {
                guard case .array(let reply) = try c.command("SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"), reply.count == 2,
                      let next = reply[0].text, case .array(let keys) = reply[1] else { throw ValidationError("unexpected SCAN reply") }
                cursor = next
                lists += keys.compactMap(\.text).filter { !$0.hasSuffix(":acked") }
            } while cursor != "0"
            print("instance\tlength\tidle_seconds")
            for list in lists.sorted() {
                guard case .integer(let n) = try c.command("LLEN", list) else { continue }
                let idle = (try? c.command("OBJECT", "IDLETIME", list)).flatMap { if case .integer(let s) = $0 { Int(s) } else { nil } } ?? 0
                print("\(list.dropFirst(prefix.count))\t\(n)\t\(idle)")
            }
        }
    }

    struct Requeue: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move an instance's processing list back onto the queue (at-least-once; "
            + "only for an instance that is gone).")
        @OptionGroup var target: Target
        @Option(help: "The instance whose processing list to requeue.") var instance: String

        func run() throws {
            let c = try target.connect()
            let q = ReliableQueue(key: target.key, instance: instance)
            let moved = try c.command(contentsOf: ["EVAL", ReliableQueue.requeueScript, "3", q.processing, q.acked, target.key])
            if case .integer(let n) = moved { print("requeued \(n) elements from \(q.processing) onto \(target.key)") }
        }
    }
}
