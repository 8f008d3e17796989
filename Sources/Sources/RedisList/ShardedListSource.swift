import Logging
import Pipeline
import Redis
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `redis_list` with `shards: N`: drains the queues `K:{0}` … `K:{N-1}` (senders
/// route by `crc32(name) mod N`, `ShardRouting`) over a Redis Cluster or a single
/// Redis (`RedisCluster` tells them apart from the server).
///
/// Every shard is drained as the reliable queue is (`ShardKeys`): pops move
/// elements onto the shard's processing list, numbered per shard (one
/// `Checkpoints` stream each), trimmed once the sink's state holds them, and
/// re-emitted after a broken connection or a restart from where the state ends.
///
/// **Without `group`** this gateway owns every shard; state is the sink's
/// `state_file`. One gateway per queue.
///
/// **With `group: NAME`** the gateways of the group split the shards with leases
/// (`K:{s}:owner`, `SET NX PX lease_ttl`, renewed every third of it, released on
/// a clean stop). Each aims at ⌈N / live members⌉ shards — members are those
/// whose heartbeat in `K:group:NAME` has not expired — preferring shards
/// `s mod live == its rank`, releasing the excess when members join, taking free
/// shards when they leave. The state is per shard in Redis (`K:{s}:state`), held
/// by the `prometheus` sink (`state: redis`) and written by the runtime's
/// `ShardHandover` through this source with the lease's token (`ShardStateStore`),
/// so a former owner cannot overwrite it. This source tells the handover of lease
/// events only; it never calls the sink.
///
/// **Handover.** Gaining a shard: wait until the sink has consumed every batch
/// this gateway emitted for the shard before (a shard may come back), load its
/// state into the sink, continue its numbering from the state's position, re-emit
/// what the processing list holds beyond it — exactly a restart. Releasing
/// (rebalance, SIGTERM): stop popping, let the sink write the shard's state with
/// everything applied, trim, make the sink stop serving its families, then delete
/// the lease. Losing a lease (not renewed within `lease_ttl`, or `FENCED`): the
/// sink stops serving the families at once and skips the shard's batches still in
/// flight; the next owner continues from the state in Redis and the processing
/// list, so nothing this gateway applied after its last state write counts twice.
public final class ShardedListSource: Source, ShardStateStore {
    let config: RedisListConfig
    let context: StageContext
    let shardKeys: [ShardKeys]
    let streams: [UInt16]
    let streamNames: [String]
    /// Per shard: fresh, or where a predecessor this reload replaced stopped.
    private let starts: [StreamStart]
    private let durable: [DurablePosition]
    let origin: UInt16
    let seeds: [RedisEndpoint]
    let popped = MetaCounter(), replayed = MetaCounter(), errors = MetaCounter(), lostReplies = MetaCounter()
    let gains = MetaCounter(), releases = MetaCounter(), losses = MetaCounter(), fenced = MetaCounter()
    let ownedGauge = MetaGauge(), membersGauge = MetaGauge(), pending = MetaGauge(), processingSize = MetaGauge()
    private let warnings: RateLimitedLog

    /// A shard this gateway owns, touched by the source thread; `token` is also
    /// read by the handover's writer thread (`writeState`).
    struct Owned: Sendable {
        var token: String
        /// Monotonic time by which the lease must have been renewed.
        var leaseDeadline: UInt64
        var phase = Phase.leased
        var emittedThrough: UInt64 = 0
        var trimmedThrough: UInt64 = 0
        /// ASK from a migrating slot: the next pop goes there with ASKING.
        var ask: RedisEndpoint?
        /// A shard whose pops fail (WRONGTYPE, a migration's TRYAGAIN) waits until
        /// then, without holding up the others.
        var retryAt: UInt64 = 0
    }
    /// Where an owned shard stands.
    enum Phase: Sendable, Equatable {
        /// The lease is ours; the sink does not serve the shard yet (its state is not loaded).
        case leased
        /// The sink serves it, but Redis must be read again before popping: what a broken
        /// connection's lost replies popped, or what a reload's predecessor emitted.
        case interrupted
        /// Recovered: popping.
        case serving
    }
    private let owned = Mutex<[Int: Owned]>([:])
    /// The elements' size so far (source thread only), for pops sized to the memory budget.
    private let elementSize = Mutex(ElementSize())
    /// The sink's state writes, on a cluster client of their own.
    private let stateWriter = Mutex<RedisCluster?>(nil)
    private let leaseTTL: UInt64
    private let instanceToken: String

    var group: String? { config.group.isEmpty ? nil : config.group }

    public init(config: RedisListConfig, context: StageContext) {
        self.config = config
        self.context = context
        warnings = RateLimitedLog(logger: context.logger, interval: .seconds(5))
        shardKeys = (0..<config.shards).map { ShardKeys(key: config.key, shard: $0) }
        origin = context.telemetry.registerOrigin(labels: [("worker", "0"), ("queueKey", config.key)])
        seeds = config.redis.cluster.isEmpty ? config.redis.url.endpoints : config.redis.cluster
        leaseTTL = UInt64(config.leaseTTL.inSeconds * 1e9)
        instanceToken = "\(config.instance):\(UInt64.random(in: 1...UInt64.max))"
        var streams: [UInt16] = [], names: [String] = [], durable: [DurablePosition] = [], starts: [StreamStart] = []
        for k in shardKeys {
            let d = DurablePosition()
            let name = "redis_list:\(k.processing)"
            let registration = context.checkpoints.register(stream: name, source: context.id) { through in
                d.value.store(through, ordering: .releasing)
            }
            if case .continuing(_, let through) = registration.start { d.value.store(through, ordering: .releasing) }
            streams.append(registration.stream)
            starts.append(registration.start)
            names.append(name)
            durable.append(d)
        }
        self.starts = starts
        self.streams = streams
        self.streamNames = names
        self.durable = durable
        ownedGauge.set(0)
        membersGauge.set(.nan)
        pending.set(.nan)
        processingSize.set(.nan)
        let key = config.key, groupName = config.group, shardCount = config.shards
        let (popped, replayed, errors, lostReplies, gains, releases, losses, fenced, ownedGauge, membersGauge) =
            (popped, replayed, errors, lostReplies, gains, releases, losses, fenced, ownedGauge, membersGauge)
        let (pending, processingSize, interval) = (pending, processingSize, OptionReader.format(config.pendingInterval))
        context.addCollector {
            let p = Telemetry.prefix
            let q = [("queueKey", key)]
            var out = RedisListSource.drainFamilies(key: key, popped: popped, errors: errors, lostReplies: lostReplies, replayed: replayed) + [
                MetaFamily(name: p + "shards_owned", help: "Shards of the sharded queue this gateway drains now.", type: .gauge,
                           samples: [MetaSample(labels: q, value: ownedGauge.value)]),
                MetaFamily(name: p + "redis_queue_pending_size",
                        help: "Elements waiting on the queue (LLEN; summed over the shards this gateway owns when sharded), sampled every "
                            + "\(interval).", type: .gauge,
                           samples: [MetaSample(labels: q, value: pending.value)]),
                MetaFamily(name: p + "processing_list_size",
                        help: "Elements on the owned shards' processing lists: popped, not yet in a durable state.", type: .gauge,
                           samples: [MetaSample(labels: q, value: processingSize.value)]),
                MetaFamily(name: p + "shards",
                        help: "Shards the queue has (shards): every gateway of a group says the same; less owned in sum than this is an "
                            + "unowned shard.", type: .gauge,
                           samples: [MetaSample(labels: q, value: Double(shardCount))]),
            ]
            if !groupName.isEmpty {
                let g = q + [("group", groupName)]
                out += [
                    MetaFamily(name: p + "group_members",
                            help: "Live gateways of the group (heartbeats not expired), as this gateway last read them.", type: .gauge,
                               samples: [MetaSample(labels: g, value: membersGauge.value)]),
                    MetaFamily(name: p + "shard_leases_total",
                            help: "Shard leases by what happened: gained (taken), released (handed back on a rebalance or a stop), lost "
                                + "(not renewed in time or taken by another).", type: .counter,
                               samples: [MetaSample(labels: g + [("event", "gained")], value: Double(gains.value)),
                                         MetaSample(labels: g + [("event", "released")], value: Double(releases.value)),
                                         MetaSample(labels: g + [("event", "lost")], value: Double(losses.value))]),
                    MetaFamily(name: p + "fenced_operations_total",
                            help: "Shard operations Redis refused because this gateway no longer held the lease.", type: .counter,
                               samples: [MetaSample(labels: g, value: Double(fenced.value))]),
                ]
            }
            return out
        }
        context.health.set(context.id, ready: false, detail: "connecting to \(seeds.map(\.description).joined(separator: ","))")
    }

    /// Without a group, a shard is this gateway's from the start: fresh (recovered
    /// from the restored state), or continuing a predecessor a reload replaced —
    /// then exactly as after a broken connection, from what that one emitted.
    static func ownedAtStart(_ start: StreamStart) -> Owned {
        var o = Owned(token: "", leaseDeadline: .max)
        if case .continuing(let emitted, _) = start {
            o.phase = .interrupted
            o.emittedThrough = emitted
        }
        return o
    }

    // MARK: Running

    public func run(worker: Int, output: StageOutput, control: SourceControl) {
        let handover = context.checkpoints.shards
        if group != nil {
            guard handover.hasHolder else {
                let message = "group: needs a prometheus sink with state: redis below this source (the shards' state lives in Redis)"
                context.logger.error("\(message)")
                context.health.set(context.id, ready: false, detail: message)
                while !control.isStopping { control.sleep(seconds: 1) }
                return
            }
            handover.attach(store: self)
        }
        let cluster = RedisCluster(connector: config.connector, seeds: seeds)
        cluster.retryFor = config.redis.readTimeout.inSeconds
        cluster.elementLimit = config.maxElementBytes
        var nextTick: UInt64 = 0, nextLLEN: UInt64 = 0
        var outage = Outage()
        while !control.isStopping {
            do throws(RedisError) {
                let now = monotonicNanos()
                let holding = group == nil || handover.hasHolder
                if group != nil, now >= nextTick {
                    // While a reload replaces the sink that holds the state, leases are
                    // only renewed: no shard changes hands without a holder.
                    try leaseTick(cluster, output: output, rebalance: holding)
                    nextTick = now + leaseTTL / 3
                } else if group == nil, owned.withLock({ $0.isEmpty }) {
                    owned.withLock { o in for s in shardKeys.indices { o[s] = Self.ownedAtStart(starts[s]) } }
                    ownedGauge.set(Double(shardKeys.count))
                }
                if now >= nextLLEN {
                    try sampleLengths(cluster)
                    nextLLEN = now + UInt64(config.pendingInterval.inSeconds * 1e9)
                }
                var any = false
                for shard in owned.withLock({ $0.keys.sorted() }) where !control.isStopping {
                    if try drain(shard, cluster, output: output) { any = true }
                }
                if outage.answered().endsOutage {
                    context.logger.info("Redis answers again", metadata: ["redis": "\(seeds.map(\.description).joined(separator: ","))"])
                }
                context.health.set(context.id, ready: true,
                        detail: "draining \(owned.withLock { $0.count }) of \(shardKeys.count) shards of \(config.key)")
                if !any { control.sleep(seconds: config.emptyBackoff.inSeconds) }
            } catch {
                errors.add()
                context.health.set(context.id, ready: false, detail: "\(error)")
                let (delay, starts) = outage.failed(maxBackoff: config.maxBackoff.inSeconds)
                if starts { context.logger.error("Redis fails; retrying with back-off", metadata: ["error": "\(error)"]) }
                control.sleep(seconds: delay)
            }
        }
        if group != nil {
            for shard in owned.withLock({ $0.keys.sorted() }) { release(shard, cluster) }
            _ = try? cluster.run(key: membersKey, "ZREM", membersKey, config.instance)
            handover.detach(store: self)
        }
        context.health.set(context.id, ready: false, detail: "stopped")
    }

    /// The owned shards' queue and processing-list lengths, summed.
    private func sampleLengths(_ cluster: RedisCluster) throws(RedisError) {
        var waiting = 0.0, processing = 0.0
        for shard in owned.withLock({ $0.keys.sorted() }) {
            let k = shardKeys[shard]
            if case .integer(let n) = try cluster.run(key: k.queue, "LLEN", k.queue) { waiting += Double(n) }
            if case .integer(let n) = try cluster.run(key: k.processing, "LLEN", k.processing) { processing += Double(n) }
        }
        pending.set(waiting)
        processingSize.set(processing)
    }

    var membersKey: String { ShardKeys.members(key: config.key, group: config.group) }

    // MARK: Leases

    /// Heartbeat, renew what is held, then give back or take shards toward the fair share.
    private func leaseTick(_ cluster: RedisCluster, output: StageOutput, rebalance: Bool) throws(RedisError) {
        let ttlMs = String(leaseTTL / 1_000_000)
        let reply = try cluster.script(ShardKeys.heartbeat, keys: [membersKey], args: [Array(config.instance.utf8), Array(ttlMs.utf8)])
        guard case .array(let items) = reply else { throw .protocolViolation("the heartbeat script answered \(reply)") }
        let members = items.compactMap(\.text)
        membersGauge.set(Double(members.count))
        for shard in owned.withLock({ $0.keys.sorted() }) {
            guard let token = owned.withLock({ $0[shard]?.token }) else { continue }
            let sent = monotonicNanos()
            let r = try cluster.script(ShardKeys.renew, keys: [shardKeys[shard].owner], args: [Array(token.utf8), Array(ttlMs.utf8)])
            if case .integer(1) = r {
                owned.withLock { $0[shard]?.leaseDeadline = sent + leaseTTL }
            } else {
                lose(shard, reason: "the lease was taken by another gateway or expired")
            }
        }
        guard rebalance else { return }
        let mine = owned.withLock { Set($0.keys) }
        let share = FairShare(shards: shardKeys.count, members: members, me: config.instance, mine: mine)
        for shard in share.release { release(shard, cluster) }
        var count = mine.count
        for shard in share.candidates where count < share.target {
            let token = "\(instanceToken):\(gains.value + 1)"
            let sent = monotonicNanos()
            let r = try cluster.run(key: shardKeys[shard].owner, "SET", shardKeys[shard].owner, token, "NX", "PX", ttlMs)
            guard case .status("OK") = r else { continue }
            gains.add()
            count += 1
            owned.withLock { $0[shard] = Owned(token: token, leaseDeadline: sent + leaseTTL) }
            context.logger.info("took a shard", metadata: ["shard": "\(shard)", "members": "\(members.count)", "target": "\(share.target)"])
        }
        ownedGauge.set(Double(owned.withLock { $0.count }))
    }

    /// The lease is gone: stop serving the shard now.
    private func lose(_ shard: Int, reason: String) {
        guard let o = owned.withLock({ $0.removeValue(forKey: shard) }) else { return }
        losses.add()
        context.checkpoints.shards.lost(shard, emitted: o.emittedThrough)
        ownedGauge.set(Double(owned.withLock { $0.count }))
        context.logger.warning("lost a shard; another gateway continues it", metadata: ["shard": "\(shard)", "reason": "\(reason)"])
    }

    /// Hands a shard back: its state written with everything applied, the
    /// processing list trimmed, the sink no longer serving it, then the lease deleted.
    private func release(_ shard: Int, _ cluster: RedisCluster) {
        guard var o = owned.withLock({ $0[shard] }) else { return }
        let released = context.checkpoints.shards.release(shard, emitted: o.emittedThrough)
        if !released.consumed { unconsumedWarning(shard) }
        if let through = released.written, through > o.trimmedThrough { try? trim(shard, &o, through: through, cluster) }
        owned.withLock { _ = $0.removeValue(forKey: shard) }
        _ = try? cluster.script(ShardKeys.release, keys: [shardKeys[shard].owner], args: [Array(o.token.utf8)])
        releases.add()
        ownedGauge.set(Double(owned.withLock { $0.count }))
        context.logger.info("released a shard", metadata: ["shard": "\(shard)", "through": "\(o.emittedThrough)"])
    }

    private func unconsumedWarning(_ shard: Int) {
        context.logger.warning("the sink did not consume the shard's earlier batches within 10 s; its state is taken as it is",
                               metadata: ["shard": "\(shard)"])
    }

    // MARK: ShardStateStore

    public func writeState(shard: Int, bytes: [UInt8]) -> Bool {
        guard let token = owned.withLock({ $0[shard]?.token }), shard < shardKeys.count else { return false }
        let k = shardKeys[shard]
        return stateWriter.withLock { w -> Bool in
            if w == nil {
                let c = RedisCluster(connector: config.connector, seeds: seeds)
                c.retryFor = config.redis.readTimeout.inSeconds
                w = c
            }
            do throws(RedisError) {
                let r = try w!.script(ShardKeys.writeState, keys: [k.state, k.owner], args: [Array(token.utf8), bytes])
                if case .error(let m) = r {
                    if m.hasPrefix("FENCED") { fenced.add() }
                    warnings.warning("cannot write the state of shard \(shard): \(m)")
                    return false
                }
                return true
            } catch {
                warnings.warning("cannot write the state of shard \(shard): \(error)")
                return false
            }
        }
    }

    // MARK: Draining

    /// One round on one shard: recover if needed, trim, pipelined pops. Returns
    /// whether anything was popped.
    private func drain(_ shard: Int, _ cluster: RedisCluster, output: StageOutput) throws(RedisError) -> Bool {
        guard var o = owned.withLock({ $0[shard] }) else { return false }
        if monotonicNanos() > o.leaseDeadline {
            lose(shard, reason: "the lease was not renewed within lease_ttl")
            return false
        }
        guard monotonicNanos() >= o.retryAt else { return false }
        let k = shardKeys[shard]
        defer { owned.withLock { if $0[shard] != nil { $0[shard] = o } } }
        do throws(RedisError) {
            if o.phase != .serving { try recover(shard, &o, cluster, output: output) }
            guard o.phase == .serving else { return false }   // no sink holds the state yet (a reload)
            let d = durable[shard].value.load(ordering: .acquiring)
            if d > o.trimmedThrough { try trim(shard, &o, through: d, cluster) }
        } catch .reply(let m) where m.hasPrefix("FENCED") {
            fenced.add()
            owned.withLock { $0[shard] = o }
            lose(shard, reason: m)
            return false
        }
        let endpoint: RedisEndpoint
        if let a = o.ask { endpoint = a } else { endpoint = try cluster.node(forSlot: k.slot) }
        let c: RedisConnection
        do throws(RedisError) { c = try cluster.connection(to: endpoint) } catch { cluster.drop(endpoint); try? cluster.refresh(); throw error }
        let plan = ReadSizing.plan(averageElementBytes: elementSize.withLock { $0.average }, share: context.memoryBudget.readShare,
                                   popCount: config.effectivePopCount, maxPopCount: config.maxPopCount, maxInFlight: config.pipeline)
        let depth = o.ask != nil ? 1 : plan.inFlight
        let count = Array(String(plan.count).utf8)
        let call = [Array("EVALSHA".utf8), Array(ShardKeys.pop.sha.utf8), Array("3".utf8), Array(k.queue.utf8), Array(k.processing.utf8),
                Array(k.owner.utf8), Array(o.token.utf8), count]
        let asked = o.ask != nil
        if asked { c.append("ASKING") }
        for _ in 0..<depth { c.append(call) }
        o.ask = nil
        let replies = PopReplies()
        replies.batch = BatchBuffers.take(payloads: plan.count * depth, bytes: BatchBuffers.bytes(elements: plan.count * depth,
                average: elementSize.withLock { $0.average }, share: context.memoryBudget.readShare))
        var got = 0, full = 0
        var problem: String?
        var pending = depth
        do throws(RedisError) {
            if asked { _ = try c.withReply { r throws(RedisError) in RedisConnection.copy(r) } }   // ASKING's +OK
            while pending > 0 {
                let outcome = try c.readPop(into: replies, blmpop: false, origin: origin)
                pending -= 1
                switch outcome {
                case .elements(let n):
                    got += n
                    if n == plan.count { full += 1 }
                case .error(let m): if problem == nil { problem = m }
                case .unexpected(let what): if problem == nil { problem = "unexpected reply: \(what)" }
                }
            }
        } catch {
            lostReplies.add(UInt64(pending))
            emit(shard, &o, replies, output: output)
            o.phase = .interrupted   // the processing list holds what the lost replies popped
            cluster.drop(endpoint)
            try? cluster.refresh()
            throw error
        }
        elementSize.withLock { $0.observe(bytes: replies.batch.bytes.count, elements: got) }
        emit(shard, &o, replies, output: output)
        if let problem {
            if problem.hasPrefix("FENCED") {
                fenced.add()
                owned.withLock { $0[shard] = o }
                lose(shard, reason: problem)
                return got > 0
            }
            if problem.hasPrefix("NOSCRIPT") {
                _ = try c.command("SCRIPT", "LOAD", ShardKeys.pop.source)
            } else if let r = RedisCluster.redirect(problem) {
                if case .ask(_, let to) = r { o.ask = to } else { cluster.follow(r) }
                if r == .retry { o.retryAt = monotonicNanos() + 20_000_000 }
            } else {
                errors.add()
                warnings.warning("popping shard \(shard) (`\(k.queue)`) fails: \(problem)")
                o.retryAt = monotonicNanos() + 1_000_000_000
            }
        }
        return got > 0
    }

    /// Hands the popped elements on, numbered in the shard's stream.
    private func emit(_ shard: Int, _ o: inout Owned, _ replies: PopReplies, output: StageOutput) {
        guard !replies.batch.isEmpty else { return }
        let n = UInt64(replies.batch.count)
        popped.add(n)
        var b = Batch(payloads: replies.batch)
        replies.batch = PayloadBatch()
        b.acknowledgement = Acknowledgement(stream: streams[shard], first: o.emittedThrough + 1, through: o.emittedThrough + n)
        o.emittedThrough += n
        output.emit(b)
        FaultInjection.point("after_pop")
    }

    private func trim(_ shard: Int, _ o: inout Owned, through: UInt64, _ cluster: RedisCluster) throws(RedisError) {
        let k = shardKeys[shard]
        let r = try cluster.script(ShardKeys.trim, keys: [k.processing, k.acked, k.owner], args: [Array(o.token.utf8), Array(String(through).utf8)])
        if case .error(let m) = r { throw .reply(m) }
        o.trimmedThrough = through
    }

    /// On gaining a shard and after a broken connection: where the state ends,
    /// what Redis holds, and the processing list's elements not yet emitted.
    private func recover(_ shard: Int, _ o: inout Owned, _ cluster: RedisCluster, output: StageOutput) throws(RedisError) {
        let k = shardKeys[shard]
        var emitted: UInt64
        if o.phase != .leased {
            emitted = o.emittedThrough
        } else if group != nil {
            let handover = context.checkpoints.shards
            guard handover.hasHolder else { return }
            let t0 = monotonicNanos()
            let state = try cluster.withoutElementLimit { () throws(RedisError) in try cluster.command(key: k.state, "GET", k.state) }
            var bytes: [UInt8]?
            if case .string(let b) = state { bytes = b }
            switch handover.gain(shard, of: shardKeys.count, stream: streams[shard], state: bytes) {
            case .noHolder: return
            case .served(let position, let waited):
                if !waited { unconsumedWarning(shard) }
                emitted = position
            }
            context.checkpoints.reset(stream: streamNames[shard], through: emitted)
            durable[shard].value.store(emitted, ordering: .releasing)
            context.logger.info("serving a shard", metadata: ["shard": "\(shard)", "state_bytes": "\(bytes?.count ?? 0)", "position": "\(emitted)",
                                                              "load_seconds": "\(Double(monotonicNanos() - t0) / 1e9)"])
        } else {
            emitted = context.checkpoints.restored(stream: streamNames[shard]) ?? 0
        }
        let acked = UInt64(try cluster.command(key: k.acked, "GET", k.acked).text ?? "0") ?? 0
        guard case .integer(let length) = try cluster.command(key: k.processing, "LLEN", k.processing) else {
            throw .protocolViolation("LLEN \(k.processing) did not answer an integer")
        }
        let start = emitted
        let plan = Recovery(acked: acked, length: length, emitted: start,
                            durable: o.phase != .leased ? durable[shard].value.load(ordering: .acquiring) : nil, raiseToAcked: true)
        emitted = plan.emitted
        if plan.stateBehindAcked {
            context.logger.warning("the shard's state ends before what Redis already acknowledged; elements up to \(acked) are not in it",
                                   metadata: ["shard": "\(shard)", "state": "\(start)", "acked": "\(acked)"])
        }
        if let renumbered = plan.renumberAckedTo {
            context.logger.warning("Redis holds less than the state says was popped; renumbering the processing list",
                                   metadata: ["shard": "\(shard)", "state": "\(emitted)", "redis": "\(plan.held)"])
            let r = try cluster.script(ShardKeys.setAcked, keys: [k.acked, k.owner], args: [Array(o.token.utf8), Array(String(renumbered).utf8)])
            if case .error(let m) = r { throw .reply(m) }
        }
        if let through = plan.trimThrough { try trim(shard, &o, through: through, cluster) }
        o.trimmedThrough = max(o.trimmedThrough, acked)
        let missing = plan.missing
        o.phase = .interrupted   // served from now on; serving once the replay below is emitted
        o.emittedThrough = emitted
        if missing > 0 {
            context.logger.info("re-emitting processing-list elements not yet emitted", metadata: ["shard": "\(shard)", "count": "\(missing)"])
        }
        // Page by page within the memory budget; `emit` advances `emittedThrough`, so a break between pages
        // re-reads none of what was emitted.
        _ = try ReplayPages.replay(missing: missing, share: context.memoryBudget.readShare, batchSize: config.batchSize, origin: origin,
                                   stopping: { false }, read: { page throws(RedisError) in
            try cluster.command(key: k.processing, "LRANGE", k.processing, String(page.lowerBound), String(page.upperBound))
        }, emit: { batch in
            replayed.add(UInt64(batch.count))
            let replies = PopReplies()
            replies.batch = batch
            emit(shard, &o, replies, output: output)
        })
        o.phase = .serving
    }
}
