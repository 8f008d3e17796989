<?php
declare(strict_types=1);

require __DIR__ . '/../autoload.php';

use PHPUnit\Framework\TestCase;
use PromStreamGateway\Laravel\FlushMetrics;
use PromStreamGateway\Metrics;

/**
 * Against a real redis-server and real gateways (started by the Swift suite
 * ClientLibraryTests, which passes their ports): REDIS_PORT, GATEWAY_PORT (default
 * pipeline on the default key), SHARDED_KEY and SHARDED_GATEWAY_PORT (shards: 4), GATEWAY_BIN,
 * CLUSTER_SEEDS and CLUSTER_GATEWAY_PORT (a Redis Cluster, SHARDED_KEY with 4 shards).
 */
final class MetricsTest extends TestCase
{
    private static function env(string $name): string
    {
        $v = getenv($name);
        if ($v === false || $v === '') {
            throw new RuntimeException("$name is not set: run through the Swift suite ClientLibraryTests (make test)");
        }
        return $v;
    }

    private function phpredis(): \Redis
    {
        return Metrics::connect('127.0.0.1', (int)self::env('REDIS_PORT'));
    }

    private function predis(): \Predis\Client
    {
        require_once '/usr/share/php/Predis/Autoloader.php';
        \Predis\Autoloader::register();
        return new \Predis\Client(['host' => '127.0.0.1', 'port' => (int)self::env('REDIS_PORT'), 'timeout' => 0.5, 'read_write_timeout' => 0.5]);
    }

    private function lpushCalls(): int
    {
        $stats = $this->phpredis()->info('commandstats');
        preg_match('/calls=(\d+)/', (string)($stats['cmdstat_lpush'] ?? ''), $m);
        return (int)($m[1] ?? 0);
    }

    /** The page's value of one series line (exact text before the value), waiting for it to become $want. */
    private function awaitValue(string $port, string $series, float $want): ?float
    {
        $seen = null;
        for ($i = 0; $i < 200; $i++) {
            $page = @file_get_contents("http://127.0.0.1:$port/metrics") ?: '';
            foreach (explode("\n", $page) as $line) {
                if (str_starts_with($line, $series . ' ')) {
                    $seen = (float)substr($line, strlen($series) + 1);
                }
            }
            if ($seen === $want) {
                return $seen;
            }
            usleep(50000);
        }
        return $seen;
    }

    /** @return array<string, array{callable(): object}> */
    public static function clients(): array
    {
        return ['phpredis' => ['phpredis'], 'predis' => ['predis']];
    }

    /** @dataProvider clients */
    public function testOneLpushCarriesEveryMeasurement_andThePageAddsUp(string $client): void
    {
        $p = "php_{$client}_";
        $m = new Metrics($this->$client(), ['auto_flush' => false]);
        $before = $this->lpushCalls();
        for ($i = 0; $i < 100; $i++) {
            $m->counter("{$p}jobs_total", 1, ['queue' => 'mail']);
            $m->histogram("{$p}job_duration_seconds", $i % 2 ? 0.31 : 0.05, [0.1, 0.5, 1], ['queue' => 'mail']);
        }
        $m->gauge("{$p}queue_depth", 7);
        $m->gauge("{$p}queue_depth", 42);
        $m->summary("{$p}payload_bytes", 512, [0.5, 0.99], [0.05, 0.001]);
        $this->assertSame(203, $m->flush());
        $this->assertSame(0, $m->flush(), 'nothing left to send');
        $this->assertSame(1, $this->lpushCalls() - $before, 'one round trip');
        $port = self::env('GATEWAY_PORT');
        $this->assertSame(100.0, $this->awaitValue($port, "{$p}jobs_total{queue=\"mail\"}", 100.0));
        $this->assertSame(100.0, $this->awaitValue($port, "{$p}job_duration_seconds_count{queue=\"mail\"}", 100.0));
        $this->assertSame(50.0, $this->awaitValue($port, "{$p}job_duration_seconds_bucket{queue=\"mail\",le=\"0.1\"}", 50.0));
        $this->assertSame(42.0, $this->awaitValue($port, "{$p}queue_depth", 42.0), 'a gauge ends at the last value');
        $this->assertSame(512.0, $this->awaitValue($port, "{$p}payload_bytes_sum", 512.0));
        $this->assertSame(0.0, (float)$m->failures());
    }

    public function testLabelsEscapesAndNonAscii_arriveByteForByte(): void
    {
        $m = new Metrics($this->phpredis(), ['auto_flush' => false]);
        $m->counter('php_text_total', 1, ['q' => "a\"b\\c\nd", 'city' => 'Zürich ☃', 'n' => 3, 'b' => true]);
        $m->counter('php_nolabels_total', 2, []);
        $m->gauge('php_big', 1e20);
        $m->gauge('php_nan', NAN);
        $this->assertSame(3, $m->flush());
        $this->assertSame(1, $m->invalid(), 'NaN cannot be sent as JSON');
        $port = self::env('GATEWAY_PORT');
        $this->assertSame(1.0, $this->awaitValue($port, 'php_text_total{b="true",city="Zürich ☃",n="3",q="a\"b\\\\c\nd"}', 1.0));
        $this->assertSame(2.0, $this->awaitValue($port, 'php_nolabels_total', 2.0));
        $this->assertSame(1e20, $this->awaitValue($port, 'php_big', 1e20));
    }

    /** A label value from request input may be an array: counted as invalid, never a warning (which Laravel turns into an exception). */
    public function testLabelValuesWithoutText_andBoundsThatAreNotNumbers_neverWarnOrThrow(): void
    {
        set_error_handler(function (int $no, string $message) { throw new \ErrorException($message, 0, $no); });
        try {
            $m = new Metrics($this->phpredis(), ['auto_flush' => false]);
            $m->counter('php_arraylabel_total', 1, ['tag' => ['a', 'b']]);
            $m->gauge('php_arraylabel', 1, ['o' => new \stdClass()]);
            $m->histogram('php_arraylabel_seconds', 1, [1], ['tag' => []]);
            $m->histogram('php_oddbounds_seconds', 1.5, ['abc', 1, '2', null, [3]]);   // only the numbers are bounds
            $m->summary('php_oddbounds_bytes', 1, ['x', 0.5, 0.9], [0.1, 0.05, 'y']);   // only pairs of numbers: 0.5 with 0.05
            $m->summary('php_oddbounds_bytes', 1, [0.5, 0.9], [0.05]);   // quantiles without their epsilons: invalid
            $m->summary('php_arraylabel_bytes', 1, [], [], ['tag' => [1]]);
            $m->counter('php_textlabel_total', 1, ['s' => new class { public function __toString(): string { return 'text'; } }, 'z' => null]);
            $m->counter('php_textlabel_total', -1, ['s' => 'text']);   // a counter only goes up: dropped, counted
            $this->assertSame(3, $m->flush());
            $this->assertSame(6, $m->invalid());
        } finally {
            restore_error_handler();
        }
        $this->assertSame(1.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_textlabel_total{s="text"}', 1.0));
        $this->assertSame(1.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_oddbounds_seconds_bucket{le="2"}', 1.0));
        $this->assertSame(1.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_oddbounds_bytes_count', 1.0));
        $this->assertNotNull($this->awaitValue(self::env('GATEWAY_PORT'), 'php_oddbounds_bytes{quantile="0.5"}', 1.0));
    }

    /** A non-finite bucket fails the one-shot encoding: each sample is then encoded alone, the bad bound dropped. */
    public function testANonFiniteBucket_dropsTheBound_notTheFlush(): void
    {
        $m = new Metrics($this->phpredis(), ['auto_flush' => false]);
        $m->histogram('php_fallback_seconds', 0.3, [0.1, INF, 0.5], ['q' => 'x']);
        $m->counter('php_fallback_total', 4);
        $this->assertSame(2, $m->flush());
        $this->assertSame(0, $m->invalid());
        $port = self::env('GATEWAY_PORT');
        $this->assertSame(1.0, $this->awaitValue($port, 'php_fallback_seconds_bucket{q="x",le="0.5"}', 1.0));
        $this->assertSame(4.0, $this->awaitValue($port, 'php_fallback_total', 4.0));
    }

    /** 100 increments of one series travel as one sample; a gauge as its last value; a histogram series as its bucket counts. */
    public function testCountersGaugesAndHistograms_areCombinedPerSeries(): void
    {
        $r = $this->phpredis();
        $key = 'php-combine-' . getmypid();
        $m = new Metrics($r, ['key' => $key, 'auto_flush' => false]);
        for ($i = 0; $i < 100; $i++) {
            $m->counter('c_total', 0.5, ['q' => 'a']);
            $m->gauge('g', $i);
            $m->histogram('h', $i, [50, 10, 10]);   // sorted and de-duplicated: [10, 50]
        }
        $m->histogram('h', 3, [10, 50], ['q' => 'b']);
        $m->counter('c_total', 1, ['q' => 'b']);
        $this->assertSame(302, $m->flush());
        $elements = $r->lRange($key, 0, -1);
        $r->del($key);
        $this->assertCount(1, $elements);
        $samples = json_decode($elements[0], true);
        $this->assertCount(5, $samples);
        $byName = [];
        foreach ($samples as $s) { $byName[$s['name'] . json_encode($s['labels'] ?? [])][] = $s; }
        $this->assertSame(50, $byName['c_total{"q":"a"}'][0]['value']);
        $this->assertSame(1, $byName['c_total{"q":"b"}'][0]['value']);
        $this->assertSame(99, $byName['g[]'][0]['value']);
        $h = $byName['h[]'][0];
        $this->assertSame([[10.0, 50.0], [11, 40, 49], 4950], [$h['buckets'], $h['counts'], $h['value']], 'le semantics: 10 is in le="10"');
        $this->assertSame([1, 0, 0], $byName['h{"q":"b"}'][0]['counts']);
    }

    /** bucket_histograms false: each observation travels alone, as the .NET gateway reads them. */
    public function testBucketHistogramsOff_sendsEachObservation(): void
    {
        $r = $this->phpredis();
        $key = 'php-observations-' . getmypid();
        $m = new Metrics($r, ['key' => $key, 'auto_flush' => false, 'bucket_histograms' => false]);
        for ($i = 0; $i < 10; $i++) {
            $m->histogram('h', $i, [5]);
        }
        $this->assertSame(10, $m->flush());
        $samples = json_decode($r->lRange($key, 0, -1)[0], true);
        $r->del($key);
        $this->assertCount(10, $samples);
        $this->assertSame([9, [5.0], false], [$samples[9]['value'], $samples[9]['buckets'], isset($samples[9]['counts'])]);
    }

    public function testShards_routeAsTheGatewaySays_oneLpushPerShard(): void
    {
        $names = ['php_a_total', 'php_b_total', 'php_c_total', 'php_d_total', 'php_e_total', 'php_f_total'];
        $shards = [];
        foreach ($names as $n) {
            $out = shell_exec(escapeshellarg(self::env('GATEWAY_BIN')) . ' shard-of ' . escapeshellarg($n) . ' --shards 4');
            preg_match('/^(\d+) /', (string)$out, $mm);
            $this->assertSame((int)$mm[1], Metrics::shardOf($n, 4), "$n: $out");
            $shards[Metrics::shardOf($n, 4)] = true;
        }
        // On keys no gateway drains (its pop script's own LPUSHes would count too).
        $r = $this->phpredis();
        $routing = new Metrics($r, ['key' => 'php:routing', 'shards' => 4, 'auto_flush' => false]);
        foreach ($names as $n) {
            $routing->counter($n, 5);
        }
        $before = $this->lpushCalls();
        $this->assertSame(6, $routing->flush());
        $this->assertSame(count($shards), $this->lpushCalls() - $before, 'one LPUSH per shard used');
        foreach ($names as $n) {
            $this->assertStringContainsString("\"$n\"", implode('', $r->lRange('php:routing:{' . Metrics::shardOf($n, 4) . '}', 0, -1)));
        }
        $m = new Metrics($r, ['key' => self::env('SHARDED_KEY'), 'shards' => 4, 'auto_flush' => false]);
        foreach ($names as $n) {
            $m->counter($n, 5);
        }
        $this->assertSame(6, $m->flush());
        foreach ($names as $n) {
            $this->assertSame(5.0, $this->awaitValue(self::env('SHARDED_GATEWAY_PORT'), $n, 5.0));
        }
    }

    public function testLargeFlushes_splitAboveTheElementCap_stillOneRoundTrip(): void
    {
        $r = $this->phpredis();
        $m = new Metrics($r, ['key' => 'php:split', 'max_element_bytes' => 2048, 'auto_flush' => false]);
        for ($i = 0; $i < 100; $i++) {
            $m->counter('php_split_total', 1, ['i' => (string)$i]);
        }
        $before = $this->lpushCalls();
        $this->assertSame(100, $m->flush());
        $this->assertSame(1, $this->lpushCalls() - $before);
        $elements = $r->lRange('php:split', 0, -1);
        $this->assertGreaterThan(1, count($elements));
        $total = 0;
        foreach ($elements as $e) {
            $this->assertLessThanOrEqual(2048, strlen($e));
            $total += count(json_decode($e, true));
        }
        $this->assertSame(100, $total);
    }

    public function testARedisFailure_isCountedAndReported_neverThrown(): void
    {
        $errors = [];
        $dead = new \Redis();
        $m = new Metrics($dead, ['auto_flush' => false, 'on_error' => function (\Throwable $e) use (&$errors) { $errors[] = $e->getMessage(); }]);
        $m->counter('php_lost_total');
        $this->assertSame(0, $m->flush());
        $this->assertSame(1, $m->failures());
        $this->assertCount(1, $errors);
        $t0 = microtime(true);
        try {
            Metrics::connect('127.0.0.1', 1, 0.2);
            $this->fail('connect to a closed port must fail');
        } catch (\RedisException $e) {
            $this->assertLessThan(1.0, microtime(true) - $t0, 'bounded connect time-out');
        }
        $p = $this->predis();
        $closed = new \Predis\Client(['host' => '127.0.0.1', 'port' => 1, 'timeout' => 0.2]);
        $m2 = new Metrics($closed, ['auto_flush' => false, 'on_error' => function (\Throwable $e) use (&$errors) { $errors[] = $e->getMessage(); }]);
        $m2->gauge('php_lost', 1);
        $this->assertSame(0, $m2->flush());
        $this->assertSame(1, $m2->failures());
        $this->assertCount(2, $errors);
    }

    public function testTimeHelper_observesAndReturns_andTheShutdownFlushSends(): void
    {
        $m = new Metrics($this->phpredis(), ['auto_flush' => false]);
        $this->assertSame('done', $m->time('php_timed_seconds', [0.001, 1], fn () => 'done'));
        $this->assertSame(1, $m->flush());
        $this->assertSame(1.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_timed_seconds_count', 1.0));
        // A script that records and ends without flush(): register_shutdown_function sends it.
        $script = sprintf('require %s; $m = new \PromStreamGateway\Metrics(\PromStreamGateway\Metrics::connect("127.0.0.1", %d)); $m->counter("php_shutdown_total", 3);',
            var_export(__DIR__ . '/../autoload.php', true), (int)self::env('REDIS_PORT'));
        exec('php -r ' . escapeshellarg($script), $out, $status);
        $this->assertSame(0, $status);
        $this->assertSame(3.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_shutdown_total', 3.0));
        // A long-running worker making one per request: what was flushed, or never recorded, is not kept
        // for the shutdown; what was not flushed is sent then.
        $script = sprintf('require %s; $r = \PromStreamGateway\Metrics::connect("127.0.0.1", %d);
            for ($i = 0; $i < 30; $i++) { (new \PromStreamGateway\Metrics($r))->counter("php_many_total"); }
            $flushed = new \PromStreamGateway\Metrics($r); $flushed->counter("php_many_total"); $flushed->flush();
            $gone = [WeakReference::create($flushed), WeakReference::create(new \PromStreamGateway\Metrics($r))]; unset($flushed);
            foreach ($gone as $w) { if ($w->get() !== null) { fwrite(STDERR, "kept\n"); exit(2); } }',
            var_export(__DIR__ . '/../autoload.php', true), (int)self::env('REDIS_PORT'));
        exec('php -r ' . escapeshellarg($script) . ' 2>&1', $out, $status);
        $this->assertSame(0, $status, implode("\n", $out));
        $this->assertSame(31.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_many_total', 31.0));
    }

    public function testLaravelMiddleware_flushesAfterTheResponse(): void
    {
        $m = new Metrics($this->phpredis(), ['auto_flush' => false]);
        $middleware = new FlushMetrics($m);
        $response = $middleware->handle('request', function ($r) use ($m) { $m->counter('php_laravel_total'); return 'response'; });
        $this->assertSame('response', $response);
        $middleware->terminate('request', $response);
        $this->assertSame(1.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_laravel_total', 1.0));
    }

    /** \RedisCluster: one LPUSH per shard, each to the node that holds its slot. */
    public function testRedisCluster_eachShardReachesItsNode_andTheGateway(): void
    {
        $cluster = new \RedisCluster(null, explode(',', self::env('CLUSTER_SEEDS')), 0.5, 0.5);
        $cluster->setOption(\Redis::OPT_PREFIX, 'app_');   // as Laravel's: neither applies to the queue key or the JSON
        $cluster->setOption(\Redis::OPT_SERIALIZER, \Redis::SERIALIZER_PHP);
        $m = new Metrics($cluster, ['key' => self::env('SHARDED_KEY'), 'shards' => 4, 'auto_flush' => false]);
        $names = ['php_cluster_a_total', 'php_cluster_b_total', 'php_cluster_c_total', 'php_cluster_d_total', 'php_cluster_e_total'];
        $this->assertGreaterThan(2, count(array_unique(array_map(fn ($n) => Metrics::shardOf($n, 4), $names))), 'several shards');
        foreach ($names as $i => $name) {
            $m->counter($name, $i + 1);
        }
        $m->histogram('php_cluster_seconds', 0.2, [0.1, 1]);
        $this->assertSame(6, $m->flush());
        $this->assertSame(0, $m->failures());
        foreach ($names as $i => $name) {
            $this->assertSame((float)($i + 1), $this->awaitValue(self::env('CLUSTER_GATEWAY_PORT'), $name, (float)($i + 1)));
        }
        $this->assertSame(1.0, $this->awaitValue(self::env('CLUSTER_GATEWAY_PORT'), 'php_cluster_seconds_bucket{le="1"}', 1.0));
    }

    /** Predis with its cluster option: every shard reaches its node and the gateway (its pipeline failed on MOVED). */
    public function testPredisCluster_eachShardReachesItsNode_andTheGateway(): void
    {
        $this->predis();   // loads Predis
        $cluster = new \Predis\Client(array_map(fn ($s) => 'tcp://' . $s, explode(',', self::env('CLUSTER_SEEDS'))),
            ['cluster' => 'redis', 'prefix' => 'app_']);   // a prefix, as Laravel's: not applied to the queue key
        $m = new Metrics($cluster, ['key' => self::env('SHARDED_KEY'), 'shards' => 4, 'auto_flush' => false]);
        $names = ['php_predis_cluster_a_total', 'php_predis_cluster_b_total', 'php_predis_cluster_c_total', 'php_predis_cluster_d_total'];
        $this->assertGreaterThan(2, count(array_unique(array_map(fn ($n) => Metrics::shardOf($n, 4), $names))), 'several shards');
        foreach ($names as $i => $name) {
            $m->counter($name, $i + 1);
        }
        $this->assertSame(4, $m->flush());
        $this->assertSame(0, $m->failures());
        foreach ($names as $i => $name) {
            $this->assertSame((float)($i + 1), $this->awaitValue(self::env('CLUSTER_GATEWAY_PORT'), $name, (float)($i + 1)));
        }
    }

    /** connect() with $tls: a TLS-only Redis with a private CA; another CA is refused, and through a factory only counted. */
    public function testTls_withThePrivateCA_andAnUntrustedServerCounted(): void
    {
        $port = (int)self::env('TLS_REDIS_PORT');
        $key = 'php-tls:' . getmypid();
        $m = new Metrics(fn () => Metrics::connect('localhost', $port, 0.5, false, ['cafile' => self::env('TLS_CA_FILE')]),
            ['key' => $key, 'auto_flush' => false]);
        $m->counter('php_tls_total', 2);
        $this->assertSame(1, $m->flush());
        $tls = Metrics::connect('localhost', $port, 0.5, false, ['cafile' => self::env('TLS_CA_FILE')]);
        $this->assertStringContainsString('"php_tls_total"', $tls->lRange($key, 0, -1)[0]);
        $untrusted = new Metrics(fn () => Metrics::connect('localhost', $port, 0.5, false, ['cafile' => self::env('TLS_OTHER_CA_FILE')]),
            ['key' => $key, 'auto_flush' => false]);
        $untrusted->counter('php_tls_total');
        $this->assertSame([0, 1], [$untrusted->flush(), $untrusted->failures()]);
        $this->assertSame(1, $tls->lLen($key));
        $tls->del($key);
    }

    /** A loopback port nothing listens on. */
    private static function closedPort(): int
    {
        $s = stream_socket_server('tcp://127.0.0.1:0');
        $port = (int)substr(strrchr(stream_socket_get_name($s, false), ':'), 1);
        fclose($s);
        return $port;
    }

    public function testClientFactory_connectsAtTheFirstFlush_andARedisThatIsDownIsCountedNotThrown(): void
    {
        $down = self::closedPort();
        $calls = 0;
        $errors = [];
        $m = new Metrics(function () use (&$calls, $down) {
            return ++$calls === 1 ? Metrics::connect('127.0.0.1', $down) : $this->phpredis();
        }, ['auto_flush' => false, 'on_error' => function (\Throwable $e) use (&$errors) { $errors[] = $e; }]);
        $this->assertSame(0, $calls, 'nothing connects before a flush sends');
        $wrong = new Metrics(fn () => true, ['auto_flush' => false, 'on_error' => function (\Throwable $e) use (&$errors) { $errors[] = $e; }]);
        $wrong->counter('php_factory_total');
        $this->assertSame([0, 1], [$wrong->flush(), $wrong->failures()]);
        $this->assertStringContainsString('returned bool', array_pop($errors)->getMessage(), 'e.g. fn () => $redis->connect(…)');
        $m->counter('php_factory_total', 2);
        $this->assertSame(0, $m->flush());
        $this->assertSame([1, 1], [$calls, $m->failures()]);
        $this->assertInstanceOf(\RedisException::class, $errors[0]);
        $m->counter('php_factory_total', 5);
        $this->assertSame(1, $m->flush(), 'the next flush calls the function again');
        $m->counter('php_factory_total', 1);
        $this->assertSame(1, $m->flush());
        $this->assertSame(2, $calls, 'the client it returned is kept');
        $this->assertSame(6.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_factory_total', 6.0));
    }

    public function testPersistentConnect_reusesTheProcesssConnection(): void
    {
        $port = (int)self::env('REDIS_PORT');
        $id = fn (\Redis $r) => $r->rawCommand('CLIENT', 'ID');
        $first = $id(Metrics::connect('127.0.0.1', $port, 0.5, true));
        $this->assertSame($first, $id(Metrics::connect('127.0.0.1', $port, 0.5, true)), 'the next request finds it open');
        $this->assertNotSame($first, $id(Metrics::connect('127.0.0.1', $port)));
        $m = new Metrics(fn () => Metrics::connect('127.0.0.1', $port, 0.5, true), ['auto_flush' => false]);
        $m->counter('php_persistent_total');
        $this->assertSame(1, $m->flush());
        $this->assertSame(1.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_persistent_total', 1.0));
    }

    public function testFlushAfter_sendsAfterEveryInvocation_alsoWhenTheHandlerThrows(): void
    {
        $m = new Metrics($this->phpredis(), ['auto_flush' => false]);
        $handler = $m->flushAfter(function (array $event, $context) use ($m) {
            $m->counter('php_invocations_total');
            if ($event['fail'] ?? false) {
                throw new \RuntimeException('handler failed');
            }
            return ['ok' => $context];
        });
        $this->assertSame(['ok' => 'ctx'], $handler([], 'ctx'));
        $this->assertSame(1.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_invocations_total', 1.0));
        try {
            $handler(['fail' => true], 'ctx');
            $this->fail('the exception goes on');
        } catch (\RuntimeException $e) {
            $this->assertSame('handler failed', $e->getMessage());
        }
        $this->assertSame(2.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_invocations_total', 2.0));
    }

    /** Illuminate's container, config and Redis manager (Debian's php-illuminate-*), as a Laravel application wires them. */
    private function laravel(array $config, array &$warnings, array $options = [], string $client = 'phpredis'): \Illuminate\Container\Container
    {
        require_once 'Illuminate/Container/autoload.php';
        require_once 'Illuminate/Config/autoload.php';
        require_once 'Illuminate/Redis/autoload.php';
        $app = new \Illuminate\Container\Container();
        $app->instance('config', new \Illuminate\Config\Repository(['prom-stream-gateway' => $config]));
        $app->instance('redis', new \Illuminate\Redis\RedisManager($app, $client, [
            'options' => $options,
            'default' => ['host' => '127.0.0.1', 'port' => (int)self::env('REDIS_PORT'), 'database' => 0, 'timeout' => 0.5],
            'down' => ['host' => '127.0.0.1', 'port' => self::closedPort(), 'database' => 0, 'timeout' => 0.5],
        ]));
        $app->instance('log', new class($warnings) {
            private array $w;
            public function __construct(array &$w) { $this->w = &$w; }
            public function warning(string $message): void { $this->w[] = $message; }
        });
        (new \PromStreamGateway\Laravel\MetricsServiceProvider($app))->register();
        return $app;
    }

    /** @return array<int, array<string, mixed>> the samples of the one element LPUSHed to $key */
    private function popSamples(string $key): array
    {
        $elements = $this->phpredis()->lRange($key, 0, -1);
        $this->assertCount(1, $elements);
        $this->phpredis()->del($key);
        return json_decode($elements[0], true);
    }

    public function testLaravelProvider_passesItsConfig_andOneMetricsPerRequest(): void
    {
        $warnings = [];
        $key = 'php-laravel-config:' . getmypid();
        $app = $this->laravel(['key' => $key, 'bucket_histograms' => false], $warnings);
        $m = $app->make(Metrics::class);
        $this->assertSame($m, $app->make(Metrics::class), 'one per request');
        $m->histogram('php_laravel_seconds', 0.3, [1]);
        $m->histogram('php_laravel_seconds', 0.7, [1]);
        $this->assertSame(2, $m->flush());
        $samples = $this->popSamples($key);
        $this->assertSame([0.3, 0.7], array_column($samples, 'value'), 'bucket_histograms: false sends each observation');
        $this->assertArrayNotHasKey('counts', $samples[0]);

        $app->forgetScopedInstances();   // the next request
        $app['config']->set('prom-stream-gateway.bucket_histograms', true);
        $next = $app->make(Metrics::class);
        $this->assertNotSame($m, $next);
        $next->histogram('php_laravel_seconds', 0.3, [1]);
        $next->histogram('php_laravel_seconds', 0.7, [1]);
        $this->assertSame(2, $next->flush());
        $this->assertSame([[1.0, 2, 0]], array_map(fn ($x) => [(float)$x['value'], ...$x['counts']], $this->popSamples($key)));
        $this->assertSame([], $warnings);
    }

    /**
     * A Laravel application's Redis has a key prefix by default (`<app>_database_`), often a serializer:
     * the library's LPUSH is a raw command, so the queue key and the JSON arrive as they are.
     * (Before, the samples went to `laravel_database_prom-stream-gateway:metric-queue`, drained by no gateway.)
     * @dataProvider clients
     */
    public function testLaravelProvider_withTheDefaultPrefixAndASerializer_reachesTheGateway(string $client): void
    {
        $warnings = [];
        $options = ['prefix' => 'laravel_database_'] + ($client === 'phpredis' ? ['serializer' => 'php'] : []);
        $app = $this->laravel([], $warnings, $options, $client);
        $m = $app->make(Metrics::class);
        $m->counter('php_laravel_prefixed_total', 1, ['client' => $client]);
        $this->assertSame(1, $m->flush());
        $this->assertSame(1.0, $this->awaitValue(self::env('GATEWAY_PORT'), 'php_laravel_prefixed_total{client="' . $client . '"}', 1.0));
        $this->assertSame([], $warnings);
    }

    public function testLaravelProvider_withRedisDown_resolvesAndLogsTheFailedFlush(): void
    {
        $warnings = [];
        $app = $this->laravel(['connection' => 'down'], $warnings);
        $m = $app->make(Metrics::class);   // phpredis would connect here, and throw, if the provider asked for the client now
        $m->counter('php_laravel_down_total');
        $this->assertSame(0, $m->flush());
        $this->assertSame(1, $m->failures());
        $this->assertCount(1, $warnings);
        $this->assertStringStartsWith('prom-stream-gateway: ', $warnings[0]);
    }
}
