'use strict';
// Against a real redis-server and real gateways, started by the Swift suite
// ClientLibraryTests (make test): REDIS_PORT, GATEWAY_PORT, SHARDED_KEY,
// SHARDED_GATEWAY_PORT, GATEWAY_BIN. node-redis 4 is Debian's node-redis.
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync, execFileSync: run, spawnSync } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const { createClient } = require('redis');
const { Metrics, shardOf } = require('..');

function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run through the Swift suite ClientLibraryTests (make test)`);
  return v;
}

function page(port) {
  return new Promise((resolve, reject) => {
    http.get(`http://127.0.0.1:${port}/metrics`, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

/** The page's value of `series` (the exact text before the value), waiting for `want`. */
async function value(port, series, want) {
  let seen;
  for (let i = 0; i < 200; i++) {
    for (const line of (await page(port)).split('\n')) {
      if (line.startsWith(series + ' ')) seen = Number(line.slice(series.length + 1));
    }
    if (seen === want) return seen;
    await new Promise((r) => setTimeout(r, 50));
  }
  return seen;
}

async function client() {
  const c = createClient({ socket: { host: '127.0.0.1', port: Number(env('REDIS_PORT')), connectTimeout: 500 } });
  await c.connect();
  return c;
}

async function lpushCalls(c) {
  const m = /cmdstat_lpush:calls=(\d+)/.exec(await c.info('commandstats'));
  return m ? Number(m[1]) : 0;
}

test('one LPUSH carries every measurement and the page adds up', async () => {
  const c = await client();
  const m = new Metrics(c, { autoFlush: false });
  const before = await lpushCalls(c);
  for (let i = 0; i < 100; i++) {
    m.counter('node_jobs_total', 1, { queue: 'mail' });
    m.histogram('node_job_duration_seconds', i % 2 ? 0.31 : 0.05, [0.1, 0.5, 1], { queue: 'mail' });
  }
  m.gauge('node_queue_depth', 7);
  m.gauge('node_queue_depth', 42);
  m.summary('node_payload_bytes', 512, { 0.5: 0.05, 0.99: 0.001 });
  assert.strictEqual(await m.flush(), 203);
  assert.strictEqual(await lpushCalls(c) - before, 1);
  const port = env('GATEWAY_PORT');
  assert.strictEqual(await value(port, 'node_jobs_total{queue="mail"}', 100), 100);
  assert.strictEqual(await value(port, 'node_job_duration_seconds_count{queue="mail"}', 100), 100);
  assert.strictEqual(await value(port, 'node_job_duration_seconds_bucket{queue="mail",le="0.1"}', 50), 50);
  assert.strictEqual(await value(port, 'node_queue_depth', 42), 42);
  assert.strictEqual(await value(port, 'node_payload_bytes_sum', 512), 512);
  await c.quit();
});

test('counters, gauges and histograms are combined per series', async () => {
  const c = await client();
  const key = `node-combine-${process.pid}`;
  const m = new Metrics(c, { key, autoFlush: false });
  for (let i = 0; i < 100; i++) {
    m.counter('c_total', 0.5, { q: 'a' });
    m.gauge('g', i);
    m.histogram('h', i, [50, 10, 10]); // sorted and de-duplicated: [10, 50]
  }
  m.histogram('h', 3, [10, 50], { q: 'b' });
  m.counter('c_total', 1, { q: 'b' });
  m.counter('c_total', -5, { q: 'b' }); // a counter only goes up: dropped, counted
  m.gauge('g', undefined);
  m.histogram('h', 'abc', [10]);
  assert.strictEqual(m.invalid, 3, 'what is not a number is counted, never thrown');
  m.summary('s', 1, { 0.9: 0.01, x: 1, 0.5: 'y', 0.1: 0.05 }); // only pairs of numbers are objectives
  assert.deepStrictEqual(JSON.parse(m.buffer.get(0).at(-1)).quantiles, [0.1, 0.9]);
  assert.deepStrictEqual(JSON.parse(m.buffer.get(0).at(-1)).epsilons, [0.05, 0.01]);
  assert.strictEqual(await m.flush(), 303);
  const elements = await c.lRange(key, 0, -1);
  await c.del(key);
  assert.strictEqual(elements.length, 1);
  const samples = JSON.parse(elements[0]);
  assert.strictEqual(samples.length, 6);
  const by = {};
  for (const s of samples) (by[s.name + JSON.stringify(s.labels ?? {})] ??= []).push(s);
  assert.deepStrictEqual(by['c_total{"q":"a"}'].map((s) => s.value), [50]);
  assert.deepStrictEqual(by['c_total{"q":"b"}'].map((s) => s.value), [1]);
  assert.deepStrictEqual(by['g{}'].map((s) => s.value), [99]);
  const h = by['h{}'][0];
  assert.deepStrictEqual([h.buckets, h.counts, h.value], [[10, 50], [11, 40, 49], 4950], '10 is in le="10"');
  assert.deepStrictEqual(by['h{"q":"b"}'][0].counts, [1, 0, 0]);
  await c.quit();
});

test('bucketHistograms: false sends each observation', async () => {
  const c = await client();
  const key = `node-observations-${process.pid}`;
  const m = new Metrics(c, { key, autoFlush: false, bucketHistograms: false });
  for (let i = 0; i < 10; i++) m.histogram('h', i, [5]);
  assert.strictEqual(await m.flush(), 10);
  const samples = JSON.parse((await c.lRange(key, 0, -1))[0]);
  await c.del(key);
  assert.deepStrictEqual([samples.length, samples[9].value, 'counts' in samples[9]], [10, 9, false]);
  await c.quit();
});

test('labels, escapes and non-ASCII arrive byte for byte', async () => {
  const c = await client();
  const m = new Metrics(c, { autoFlush: false });
  m.counter('node_text_total', 1, { q: 'a"b\\c\nd', city: 'Zürich ☃', n: 3, b: true });
  m.counter('node_nolabels_total', 2, {});
  m.gauge('node_big', 1e20);
  m.gauge('node_nan', NaN);
  assert.strictEqual(await m.flush(), 3);
  assert.strictEqual(m.invalid, 1);
  const port = env('GATEWAY_PORT');
  assert.strictEqual(await value(port, 'node_text_total{b="true",city="Zürich ☃",n="3",q="a\\"b\\\\c\\nd"}', 1), 1);
  assert.strictEqual(await value(port, 'node_nolabels_total', 2), 2);
  assert.strictEqual(await value(port, 'node_big', 1e20), 1e20);
  await c.quit();
});

test('shards route as the gateway says, one LPUSH per shard in one round trip', async () => {
  const names = [...'abcdef'].map((x) => `node_${x}_total`);
  for (const n of names) {
    const out = execFileSync(env('GATEWAY_BIN'), ['shard-of', n, '--shards', '4']).toString();
    assert.strictEqual(Number(out.split(' ')[0]), shardOf(n, 4), out);
  }
  const c = await client();
  // On keys no gateway drains (its pop script's own LPUSHes would count too).
  const routing = new Metrics(c, { key: 'node:routing', shards: 4, autoFlush: false });
  for (const n of names) routing.counter(n, 5);
  const before = await lpushCalls(c);
  assert.strictEqual(await routing.flush(), 6);
  assert.strictEqual(await lpushCalls(c) - before, new Set(names.map((n) => shardOf(n, 4))).size);
  for (const n of names) assert.ok((await c.lRange(`node:routing:{${shardOf(n, 4)}}`, 0, -1)).join('').includes(`"${n}"`));
  const m = new Metrics(c, { key: env('SHARDED_KEY'), shards: 4, autoFlush: false });
  for (const n of names) m.counter(n, 5);
  assert.strictEqual(await m.flush(), 6);
  for (const n of names) assert.strictEqual(await value(env('SHARDED_GATEWAY_PORT'), n, 5), 5);
  await c.quit();
});

test('a node-redis cluster client sends each shard to its node', async () => {
  const { createCluster } = require('redis');
  const rootNodes = env('CLUSTER_SEEDS').split(',').map((hp) => ({ url: `redis://${hp}` }));
  const cluster = createCluster({ rootNodes });
  await cluster.connect();
  const m = new Metrics(cluster, { key: env('SHARDED_KEY'), shards: 4, autoFlush: false });
  const names = [...'abcde'].map((x) => `node_cluster_${x}_total`);
  assert.ok(new Set(names.map((n) => shardOf(n, 4))).size > 2, 'several shards');
  names.forEach((n, i) => m.counter(n, i + 1));
  m.histogram('node_cluster_seconds', 0.2, [0.1, 1]);
  assert.strictEqual(await m.flush(), 6);
  assert.strictEqual(m.failures, 0);
  for (const [i, n] of names.entries()) assert.strictEqual(await value(env('CLUSTER_GATEWAY_PORT'), n, i + 1), i + 1);
  assert.strictEqual(await value(env('CLUSTER_GATEWAY_PORT'), 'node_cluster_seconds_bucket{le="1"}', 1), 1);
  await cluster.quit();
});

test('a node-redis client over TLS with the private CA', async () => {
  const fs = require('node:fs');
  const tls = createClient({ socket: { host: 'localhost', port: Number(env('TLS_REDIS_PORT')), tls: true,
    ca: fs.readFileSync(env('TLS_CA_FILE')), connectTimeout: 1000 } });
  await tls.connect();
  const key = `node-tls-${process.pid}`;
  const m = new Metrics(tls, { key, autoFlush: false });
  m.counter('node_tls_total', 2);
  assert.strictEqual(await m.flush(), 1);
  const elements = await tls.lRange(key, 0, -1);
  await tls.del(key);
  assert.ok(elements.length === 1 && elements[0].includes('"node_tls_total"'), String(elements));
  await tls.quit();
});

test('large flushes split above the element cap', async () => {
  const c = await client();
  const m = new Metrics(c, { key: 'node:split', maxElementBytes: 2048, autoFlush: false });
  for (let i = 0; i < 100; i++) m.counter('node_split_total', 1, { i: String(i) });
  assert.strictEqual(await m.flush(), 100);
  const elements = await c.lRange('node:split', 0, -1);
  assert.ok(elements.length > 1);
  assert.ok(elements.every((e) => Buffer.byteLength(e) <= 2048));
  assert.strictEqual(elements.reduce((n, e) => n + JSON.parse(e).length, 0), 100);
  await c.quit();
});

test('a Redis failure is counted and reported, never thrown, within timeoutMs', async () => {
  const errors = [];
  // A client that was never connected: the command is refused at once.
  const closed = createClient({ socket: { host: '127.0.0.1', port: 1 } });
  const m = new Metrics(closed, { autoFlush: false, timeoutMs: 300, onError: (e) => errors.push(e) });
  m.counter('node_lost_total');
  assert.strictEqual(await m.flush(), 0);
  // A server that accepts and never answers: the flush gives up after timeoutMs.
  const net = require('node:net');
  const sockets = [];
  const silent = net.createServer((s) => sockets.push(s)).listen(0, '127.0.0.1');
  await new Promise((r) => silent.once('listening', r));
  const hung = createClient({ socket: { host: '127.0.0.1', port: silent.address().port, reconnectStrategy: false } });
  hung.on('error', () => {});
  await hung.connect();
  const m2 = new Metrics(hung, { autoFlush: false, timeoutMs: 300, onError: (e) => errors.push(e) });
  m2.counter('node_lost_total');
  const start = Date.now();
  assert.strictEqual(await m2.flush(), 0);
  assert.ok(Date.now() - start < 1000, 'bounded by timeoutMs');
  assert.deepStrictEqual([m.failures, m2.failures, errors.length], [1, 1, 2]);
  await hung.disconnect().catch(() => {});
  for (const s of sockets) s.destroy();
  silent.close();
});

test('the timer observes and returns', async () => {
  const c = await client();
  const m = new Metrics(c, { autoFlush: false });
  assert.strictEqual(await m.time('node_timed_seconds', [0.001, 1], async () => 'done'), 'done');
  assert.strictEqual(await m.flush(), 1);
  assert.strictEqual(await value(env('GATEWAY_PORT'), 'node_timed_seconds_count', 1), 1);
  await c.quit();
});

test('many instances (one per request) share one beforeExit listener, and each is flushed', async () => {
  const script = `
    const { createClient } = require('redis');
    const { Metrics } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const c = createClient({ socket: { host: '127.0.0.1', port: ${Number(env('REDIS_PORT'))} } });
    for (let i = 0; i < 30; i++) new Metrics(c).counter('node_many_total');
    for (let i = 0; i < 30; i++) new Metrics(c);   // nothing recorded: nothing kept
    if (process.listenerCount('beforeExit') !== 1) throw new Error('listeners: ' + process.listenerCount('beforeExit'));
    c.connect().then(() => c.unref());
    process.once('beforeExit', () => setTimeout(() => c.quit().catch(() => {}), 100));`;
  const out = spawnSync(process.execPath, ['-e', script], { env: process.env, timeout: 10000, encoding: 'utf8' });
  assert.strictEqual(out.status, 0, String(out.stderr));
  assert.ok(!String(out.stderr).includes('MaxListenersExceededWarning'), String(out.stderr));
  assert.strictEqual(await value(env('GATEWAY_PORT'), 'node_many_total', 30), 30);
});

test('flushAfter flushes after every invocation, also when the handler throws', async () => {
  const c = await client();
  const m = new Metrics(c, { autoFlush: false });
  const handler = m.flushAfter(async (event, context) => {
    m.counter('node_invocations_total');
    if (event.fail) throw new Error('handler failed');
    return { ok: context };
  });
  assert.deepStrictEqual(await handler({}, 'ctx'), { ok: 'ctx' });
  assert.strictEqual(await value(env('GATEWAY_PORT'), 'node_invocations_total', 1), 1);
  await assert.rejects(handler({ fail: true }, 'ctx'), /handler failed/);
  assert.strictEqual(await value(env('GATEWAY_PORT'), 'node_invocations_total', 2), 2);
  await c.quit();
});

test('beforeExit flushes what a process left behind', async () => {
  const script = `
    const { createClient } = require('redis');
    const { Metrics } = require(${JSON.stringify(path.join(__dirname, '..'))});
    const c = createClient({ socket: { host: '127.0.0.1', port: ${Number(env('REDIS_PORT'))} } });
    const m = new Metrics(c);
    m.counter('node_exit_total', 3);
    c.connect().then(() => c.unref());   // an idle client lets the loop run empty: beforeExit
    process.once('beforeExit', () => setTimeout(() => c.quit().catch(() => {}), 100));`;
  run(process.execPath, ['-e', script], { env: process.env, timeout: 10000 });
  assert.strictEqual(await value(env('GATEWAY_PORT'), 'node_exit_total', 3), 3);
});
