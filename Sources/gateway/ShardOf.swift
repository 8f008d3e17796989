import ArgumentParser
import Pipeline
import Redis

/// What a sender computes to route a metric: the shard and the key to LPUSH onto.
struct ShardOf: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "shard-of",
        abstract: "Print the shard of a metric name (crc32(name) mod N, IEEE CRC-32) and the key to push it onto.")

    @Argument(help: "The metric name.") var name: String
    @Option(help: "Shards of the queue (the gateways' shards).") var shards: Int
    @Option(help: "The queue's key.") var key = "prom-stream-gateway:metric-queue"

    func validate() throws {
        guard (1...16384).contains(shards) else { throw ValidationError("--shards must be from 1 to 16384") }
    }

    func run() {
        let shard = ShardRouting.shard(of: name, shards: shards)
        print("\(shard) \(ShardRouting.queueKey(key, shard: shard))")
    }
}
