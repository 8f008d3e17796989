'use strict';
// Send Prometheus measurements to prom-stream-gateway in one Redis round trip per
// invocation. Measurements are buffered; `await m.flush()` sends one LPUSH per shard
// (per queue key without shards, several shards pipelined in one round trip), each
// element a JSON array of samples, split only above maxElementBytes. Counter increments
// of one series are summed, a gauge series sends its last value and a histogram series its
// observations counted into its buckets (`counts`; bucketHistograms: false sends each
// observation, as the .NET gateway reads them). A Redis failure
// (or a flush slower than timeoutMs) is never thrown into the application: it is
// counted (m.failures), passed to onError, and the buffer is dropped.
// Works with node-redis 4 (client.lPush) and ioredis (client.lpush).

const DEFAULT_KEY = 'prom-stream-gateway:metric-queue';
const DEFAULT_MAX_ELEMENT_BYTES = 512 * 1024;

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** IEEE CRC-32 of the UTF-8 bytes (Debian's Node 18 has no zlib.crc32). */
function crc32(text) {
  let c = 0xffffffff;
  for (const b of Buffer.from(text, 'utf8')) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** crc32(name) mod shards, as `gateway shard-of`. */
function shardOf(name, shards) {
  return shards > 0 ? crc32(name) % shards : 0;
}

function labelsJSON(labels) {
  if (!labels) return '';
  const keys = Object.keys(labels);
  if (keys.length === 0) return '';
  const o = {};
  for (const k of keys) o[k] = String(labels[k]);
  return ',"labels":' + JSON.stringify(o);
}

function numbers(values) {
  return JSON.stringify(Array.from(values, Number).filter(Number.isFinite));
}

/** A histogram's bounds as the gateway takes bucket counts: finite, sorted, de-duplicated. */
function boundsOf(buckets) {
  return [...new Set(Array.from(buckets, Number).filter(Number.isFinite))].sort((a, b) => a - b);
}

function sameList(a, b) {
  return a === b || (Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => x === b[i]));
}

// Instances holding measurements not flushed yet, for the one beforeExit listener: a listener
// per instance would keep every instance an application made (one per request) alive forever.
const pending = new Set();
let exitHook = false;

class Metrics {
  /**
   * @param client node-redis 4 or ioredis client
   * @param {{key?: string, shards?: number, maxElementBytes?: number, timeoutMs?: number,
   *          onError?: (e: Error) => void, autoFlush?: boolean, bucketHistograms?: boolean}} options
   */
  constructor(client, options = {}) {
    this.client = client;
    this.key = options.key ?? DEFAULT_KEY;
    this.shards = Math.max(0, options.shards ?? 0);
    this.maxElementBytes = Math.max(1024, options.maxElementBytes ?? DEFAULT_MAX_ELEMENT_BYTES);
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.onError = options.onError;
    this.failures = 0;
    this.invalid = 0;
    this.buffer = new Map();
    this.series = new Map(); // counter and gauge series, combined until flush
    this.histograms = new Map(); // histogram series: counts per bucket and sum, until flush
    this.boundsCache = new Map(); // name → [the caller's buckets, bounds, their JSON]
    this.bucketHistograms = options.bucketHistograms ?? true;
    this.count = 0;
    this.shardCache = new Map();
    this.autoFlush = options.autoFlush ?? true;
    if (this.autoFlush && !exitHook) {
      exitHook = true;
      // The event loop ran empty: send what is left (once per batch of measurements).
      process.on('beforeExit', () => { for (const m of pending) m.flush(); });
    }
  }

  /** One more measurement buffered; the first makes this instance one that beforeExit flushes. */
  recorded() {
    if (this.count++ === 0 && this.autoFlush) pending.add(this);
  }

  /** Increments of one series are summed here and sent as one sample (the page shows the same total). */
  counter(name, value = 1, labels) {
    const v = Number(value);
    if (!Number.isFinite(v) || v < 0) { this.invalid++; return; }   // a counter only goes up (the gateway: bad_value)
    const l = labelsJSON(labels);
    const key = `c\0${name}\0${l}`;
    const s = this.series.get(key);
    if (s) s.value += v; else this.series.set(key, { type: 'counter', name, value: v, labels: l });
    this.recorded();
  }

  /** Only a series' last value is sent: the gateway keeps the last one anyway. */
  gauge(name, value, labels) {
    const v = Number(value);
    if (!Number.isFinite(v)) { this.invalid++; return; }
    const l = labelsJSON(labels);
    this.series.set(`g\0${name}\0${l}`, { type: 'gauge', name, value: v, labels: l });
    this.recorded();
  }

  /** Observations of one series (name, labels, buckets) are counted into its buckets here and sent as one sample. */
  histogram(name, value, buckets, labels) {
    const v = Number(value);
    if (!Number.isFinite(v)) { this.invalid++; return; }
    let cached = this.boundsCache.get(name);
    if (!cached || !sameList(cached[0], buckets)) {
      if (this.boundsCache.size >= 1024) this.boundsCache.clear();
      const bounds = boundsOf(buckets);
      cached = [buckets, bounds, JSON.stringify(bounds)];
      this.boundsCache.set(name, cached);
    }
    const [, bounds, json] = cached;
    const l = labelsJSON(labels);
    if (!this.bucketHistograms) {
      this.add(name, v, `{"type":"histogram","name":${JSON.stringify(name)},"value":${v},"buckets":${json}${l}}`);
      return;
    }
    const key = `${name}\0${json}\0${l}`;
    let s = this.histograms.get(key);
    if (!s) {
      s = { name, json, labels: l, counts: new Array(bounds.length + 1).fill(0), sum: 0 };
      this.histograms.set(key, s);
    }
    let i = 0;
    while (i < bounds.length && v > bounds[i]) i++; // a bucket holds what is <= its bound, as Prometheus' le
    s.counts[i]++;
    s.sum += v;
    this.recorded();
  }

  /** objectives: {quantile: epsilon}, e.g. {0.5: 0.05, 0.99: 0.001}. */
  summary(name, value, objectives, labels) {
    let q = '';
    const entries = Object.entries(objectives ?? {}).map(([k, v]) => [Number(k), Number(v)])
      .filter(([k, v]) => Number.isFinite(k) && Number.isFinite(v)) // a pair, both numbers: the lists stay aligned
      .sort((a, b) => a[0] - b[0]);
    if (entries.length) q = `,"quantiles":${numbers(entries.map((e) => e[0]))},"epsilons":${numbers(entries.map((e) => e[1]))}`;
    this.add(name, value, `{"type":"summary","name":${JSON.stringify(name)},"value":${Number(value)}${q}${labelsJSON(labels)}}`);
  }

  /** Runs fn (sync or async), observes its wall time in seconds into histogram `name`, returns its result. */
  async time(name, buckets, fn, labels) {
    const start = process.hrtime.bigint();
    try {
      return await fn();
    } finally {
      this.histogram(name, Number(process.hrtime.bigint() - start) / 1e9, buckets, labels);
    }
  }

  /**
   * `handler` (sync or async) wrapped to flush after every call, also when it throws: a Lambda
   * keeps the process between invocations, and beforeExit does not come while it does.
   */
  flushAfter(handler) {
    return async (...args) => {
      try {
        return await handler(...args);
      } finally {
        await this.flush();
      }
    };
  }

  add(name, value, json) {
    if (!Number.isFinite(Number(value))) { this.invalid++; return; }
    this.push(name, json);
    this.recorded();
  }

  push(name, json) {
    let shard = 0;
    if (this.shards > 0) {
      shard = this.shardCache.get(name);
      if (shard === undefined) { shard = shardOf(name, this.shards); this.shardCache.set(name, shard); }
    }
    let list = this.buffer.get(shard);
    if (!list) { list = []; this.buffer.set(shard, list); }
    list.push(json);
  }

  elements(samples) {
    const out = [];
    let current = [];
    let size = 2;
    for (const s of samples) {
      const n = Buffer.byteLength(s) + 1;
      if (current.length && size + n > this.maxElementBytes) {
        out.push('[' + current.join(',') + ']');
        current = [];
        size = 2;
      }
      current.push(s);
      size += n;
    }
    if (current.length) out.push('[' + current.join(',') + ']');
    return out;
  }

  /** Sends what is buffered; resolves to the number of samples sent (0 on failure). Never rejects. */
  async flush() {
    if (this.count === 0) return 0;
    for (const s of this.series.values()) {
      // A sum past the largest double: the gateway would drop it too.
      if (Number.isFinite(s.value)) this.push(s.name, `{"type":"${s.type}","name":${JSON.stringify(s.name)},"value":${s.value}${s.labels}}`);
      else this.invalid++;
    }
    this.series = new Map();
    for (const h of this.histograms.values()) {
      if (Number.isFinite(h.sum)) {
        const counts = `"buckets":${h.json},"counts":[${h.counts}]`;
        this.push(h.name, `{"type":"histogram","name":${JSON.stringify(h.name)},"value":${h.sum},${counts}${h.labels}}`);
      } else {
        this.invalid += h.counts.reduce((a, b) => a + b, 0);
      }
    }
    this.histograms = new Map();
    const buffer = this.buffer;
    pending.delete(this);
    const count = this.count;
    this.buffer = new Map();
    this.count = 0;
    const pushes = [...buffer].map(([shard, samples]) => [this.shards > 0 ? `${this.key}:{${shard}}` : this.key, this.elements(samples)]);
    let timer;
    try {
      // Every shard's LPUSH is sent before any reply is awaited: one round trip (node-redis 4
      // also writes a tick's commands at once). Not an ioredis pipeline: on a Cluster its keys
      // must all live on one node, and shards are spread over the nodes.
      const send = typeof this.client.lPush === 'function'
        ? Promise.all(pushes.map(([key, elements]) => this.client.lPush(key, elements)))
        : Promise.all(pushes.map(([key, elements]) => this.client.lpush(key, ...elements)));
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`flush took longer than ${this.timeoutMs} ms`)), this.timeoutMs);
      });
      await Promise.race([send, timeout]);
      return count;
    } catch (e) {
      this.failures++;
      if (this.onError) { try { this.onError(e); } catch (_) { /* never into the application */ } }
      return 0;
    } finally {
      clearTimeout(timer);
    }
  }
}

module.exports = { Metrics, shardOf, crc32, DEFAULT_KEY };
