<?php
declare(strict_types=1);

namespace PromStreamGateway;

/**
 * Buffers measurements during one invocation and sends them to prom-stream-gateway
 * in one round trip: flush() sends one LPUSH per shard (per queue key without
 * shards; several shards pipelined, except on a phpredis RedisCluster), each
 * element a JSON array of samples, split only above max_element_bytes. Increments of
 * one counter series are summed, only a gauge series' last value is sent, and a histogram
 * series' observations are counted into its buckets and sent as one sample with `counts`
 * (the page shows the same); summary observations are sent one by one. With
 * bucket_histograms false each histogram observation is sent, as the .NET gateway reads them.
 *
 * Never throws into the application: a Redis failure is counted (failures()),
 * passed to on_error, and the buffer is dropped (a Lambda invocation that could not
 * send has nowhere to keep it). Flushes at shutdown unless auto_flush is false.
 * Given a function that returns the client, it connects at the first flush that sends,
 * inside that error handling: an application whose Redis is down still starts.
 *
 * Works with phpredis (\Redis, \RedisCluster) and Predis (Predis\ClientInterface).
 */
final class Metrics
{
    public const DEFAULT_KEY = 'prom-stream-gateway:metric-queue';
    public const DEFAULT_MAX_ELEMENT_BYTES = 524288;

    /** @var object|callable phpredis or Predis client, or a function that returns one (until a flush called it) */
    private $redis;
    private string $key;
    private int $shards;
    private int $maxElementBytes;
    /** @var null|callable(\Throwable): void */
    private $onError;
    /** @var array<int, string[]> encoded samples by shard (0 without shards) */
    private array $buffer = [];
    /** @var array<string, array{0: string, 1: string, 2: float, 3: string}> counter and gauge series: type, name, value, labels JSON */
    private array $series = [];
    private int $buffered = 0;
    private int $failures = 0;
    private int $invalid = 0;
    /** @var array<string, int> name → shard */
    private array $shardOf = [];
    /** @var array<string, string> name → its JSON string */
    private array $names = [];
    /** @var array<string, array{0: float[], 1: string, 2: float[]}> histogram name → its last bucket list, its bounds' JSON, the bounds */
    private array $bounds = [];
    /** @var array<string, array{0: string, 1: string, 2: float[], 3: string, 4: int[], 5: float}> name, bounds JSON, bounds, labels, counts, sum */
    private array $histograms = [];
    private bool $bucketHistograms;
    private bool $autoFlush;
    /** @var array<int, self> instances holding measurements, flushed by the one shutdown function (a closure per
     *  instance would keep every instance a long-running worker made, one per request, until the process ends) */
    private static array $pending = [];
    private static bool $shutdownRegistered = false;
    private const CACHE_LIMIT = 1024;
    private const JSON = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE | JSON_PRESERVE_ZERO_FRACTION;

    /**
     * @param object|callable $redis phpredis \Redis / \RedisCluster or a Predis client, or a function returning one
     * @param array{key?: string, shards?: int, max_element_bytes?: int, on_error?: callable, auto_flush?: bool, bucket_histograms?: bool} $options
     */
    public function __construct($redis, array $options = [])
    {
        $this->redis = $redis;
        $this->key = (string)($options['key'] ?? self::DEFAULT_KEY);
        $this->shards = max(0, (int)($options['shards'] ?? 0));
        $this->maxElementBytes = max(1024, (int)($options['max_element_bytes'] ?? self::DEFAULT_MAX_ELEMENT_BYTES));
        $this->onError = $options['on_error'] ?? null;
        $this->bucketHistograms = (bool)($options['bucket_histograms'] ?? true);
        $this->autoFlush = (bool)($options['auto_flush'] ?? true);
        if ($this->autoFlush && !self::$shutdownRegistered) {
            self::$shutdownRegistered = true;
            register_shutdown_function(static function (): void {
                foreach (self::$pending as $m) {
                    $m->flush();
                }
            });
        }
    }

    /**
     * A phpredis client with bounded connect and read time-outs (seconds). It connects now and throws
     * a \RedisException if it cannot: pass `fn () => Metrics::connect(…)` to connect at the first flush.
     * $persistent keeps the connection in the PHP process for the next request (PHP-FPM, Bref's web
     * runtime): without it every request pays one more round trip to connect. $tls (PHP's ssl context
     * options, e.g. ['cafile' => 'ca.crt']) connects over TLS.
     */
    public static function connect(string $host = '127.0.0.1', int $port = 6379, float $timeout = 0.5, bool $persistent = false,
                                   ?array $tls = null): \Redis
    {
        $r = new \Redis();
        // phpredis 5 takes a context only as an array: the arguments after $timeout only with TLS.
        $args = $tls === null ? [$host, $port, $timeout] : ['tls://' . $host, $port, $timeout, null, 0, 0, ['stream' => $tls]];
        $persistent ? $r->pconnect(...$args) : $r->connect(...$args);
        $r->setOption(\Redis::OPT_READ_TIMEOUT, $timeout);
        return $r;
    }

    /**
     * Increments of one series are summed here and sent as one sample: the page shows
     * the same total, and the element is smaller.
     * @param array<string, string|int|float|bool> $labels
     */
    public function counter(string $name, float $value = 1, array $labels = []): void
    {
        if (is_finite($value) && $value >= 0 && ($l = $this->labels($labels)) !== null) {   // a counter only goes up
            $k = "c\0" . $name . "\0" . $l;
            if (isset($this->series[$k])) {
                $this->series[$k][2] += $value;
            } else {   // a new series; so is the first measurement since a flush
                $this->buffered === 0 && $this->holdForShutdown();
                $this->series[$k] = ['counter', $name, $value, $l];
            }
            $this->buffered++;
        } else {
            $this->invalid++;   // JSON cannot carry NaN or ±Inf; a label value without text
        }
    }

    /**
     * Only a series' last value is sent: the gateway keeps the last one anyway.
     * @param array<string, string|int|float|bool> $labels
     */
    public function gauge(string $name, float $value, array $labels = []): void
    {
        if (is_finite($value) && ($l = $this->labels($labels)) !== null) {
            $this->series["g\0" . $name . "\0" . $l] = ['gauge', $name, $value, $l];
            $this->buffered++ === 0 && $this->holdForShutdown();
        } else {
            $this->invalid++;
        }
    }

    /**
     * Observations of one series (name, labels, bucket list) are counted into its buckets
     * here and sent as one sample: its count per bucket and their sum.
     * @param float[] $buckets upper bounds (+Inf implied; sorted and de-duplicated here)
     * @param array<string, string|int|float|bool> $labels
     */
    public function histogram(string $name, float $value, array $buckets, array $labels = []): void
    {
        if (!is_finite($value) || ($l = $this->labels($labels)) === null) {
            $this->invalid++;   // JSON cannot carry NaN or ±Inf; a label value without text
            return;
        }
        [, $json, $bounds] = $this->bounds($name, $buckets);
        if (!$this->bucketHistograms) {
            $this->buffered++ === 0 && $this->holdForShutdown();
            $this->buffer[$this->shards > 0 ? $this->shard($name) : 0][] = '{"type":"histogram","name":' . ($this->names[$name] ?? $this->name($name))
                . ',"value":' . self::num($value) . ',"buckets":' . $json . $l . '}';
            return;
        }
        $k = $name . "\0" . $json . "\0" . $l;
        if (!isset($this->histograms[$k])) {   // a new series; so is the first measurement since a flush
            $this->buffered === 0 && $this->holdForShutdown();
            $this->histograms[$k] = [$name, $json, $bounds, $l, array_fill(0, count($bounds) + 1, 0), 0.0];
        }
        $this->buffered++;
        $i = 0;
        $n = count($bounds);
        while ($i < $n && $value > $bounds[$i]) {   // a bucket holds what is <= its bound, as Prometheus' le
            $i++;
        }
        $this->histograms[$k][4][$i]++;
        $this->histograms[$k][5] += $value;
    }

    /**
     * Quantiles and epsilons as two lists: PHP truncates float array keys, so a
     * map {0.5: 0.05} cannot be written.
     * @param float[] $quantiles
     * @param float[] $epsilons
     * @param array<string, string|int|float|bool> $labels
     */
    public function summary(string $name, float $value, array $quantiles = [], array $epsilons = [], array $labels = []): void
    {
        if (is_finite($value) && count($quantiles) === count($epsilons) && ($l = $this->labels($labels)) !== null) {
            $this->buffer[$this->shards > 0 ? $this->shard($name) : 0][] = '{"type":"summary","name":' . ($this->names[$name] ?? $this->name($name))
                . ',"value":' . self::num($value) . ($quantiles ? self::objectives($quantiles, $epsilons) : '') . $l . '}';
            $this->buffered++ === 0 && $this->holdForShutdown();
        } else {
            $this->invalid++;   // NaN or ±Inf, a label value without text, or quantiles without their epsilons
        }
    }

    /**
     * Runs $fn, observes its wall time in seconds into histogram $name, returns its result
     * (also when it throws: the observation is made, the exception goes on).
     * @param float[] $buckets
     * @param array<string, string|int|float|bool> $labels
     */
    public function time(string $name, array $buckets, callable $fn, array $labels = [])
    {
        $start = hrtime(true);
        try {
            return $fn();
        } finally {
            $this->histogram($name, (hrtime(true) - $start) / 1e9, $buckets, $labels);
        }
    }

    /**
     * $handler wrapped to flush after every call, also when it throws: for a runtime that keeps
     * the process between invocations (Bref's function runtime), where the shutdown flush
     * would wait for the environment's end.
     */
    public function flushAfter(callable $handler): \Closure
    {
        return function (...$args) use ($handler) {
            try {
                return $handler(...$args);
            } finally {
                $this->flush();
            }
        };
    }

    /** The one shutdown function flushes this instance; flush() lets it go. */
    private function holdForShutdown(): void
    {
        if ($this->autoFlush) {
            self::$pending[spl_object_id($this)] = $this;
        }
    }

    /** Sends what is buffered; returns the number of measurements sent (0 on failure). */
    public function flush(): int
    {
        if ($this->buffered === 0) {
            return 0;
        }
        unset(self::$pending[spl_object_id($this)]);
        foreach ($this->series as [$type, $name, $value, $l]) {
            if (!is_finite($value)) {   // a sum past the largest double: the gateway would drop it too
                $this->invalid++;
                continue;
            }
            $this->buffer[$this->shards > 0 ? $this->shard($name) : 0][] =
                '{"type":"' . $type . '","name":' . ($this->names[$name] ?? $this->name($name)) . ',"value":' . self::num($value) . $l . '}';
        }
        foreach ($this->histograms as [$name, $json, , $l, $counts, $sum]) {
            if (!is_finite($sum)) {   // observations summing past the largest double
                $this->invalid += array_sum($counts);
                continue;
            }
            $this->buffer[$this->shards > 0 ? $this->shard($name) : 0][] = '{"type":"histogram","name":' . ($this->names[$name] ?? $this->name($name))
                . ',"value":' . self::num($sum) . ',"buckets":' . $json . ',"counts":[' . implode(',', $counts) . ']' . $l . '}';
        }
        $buffer = $this->buffer;
        $count = $this->buffered;
        $this->buffer = [];
        $this->series = [];
        $this->histograms = [];
        $this->buffered = 0;
        if (!$buffer) {
            return 0;
        }
        $pushes = [];
        foreach ($buffer as $shard => $samples) {
            $pushes[$this->shards > 0 ? $this->key . ':{' . $shard . '}' : $this->key] = $this->elements($samples);
        }
        try {
            $r = $this->redis;
            if (!is_object($r) || $r instanceof \Closure) {   // a factory: called until it returns a client
                $r = $r();
                if (!is_object($r) || $r instanceof \Closure) {
                    throw new \UnexpectedValueException('the client function returned ' . get_debug_type($r) . ', not a Redis client');
                }
                $this->redis = $r;
            }
            // Raw commands: a client's key prefix (Laravel sets one by default), serializer or
            // compression would otherwise rewrite the queue key or the JSON.
            if ($r instanceof \Redis) {
                // Several shards: one LPUSH each, pipelined in one round trip.
                $replies = count($pushes) > 1 ? $this->pipelined($r, $pushes) : [$r->rawCommand('LPUSH', array_key_first($pushes), ...reset($pushes))];
                self::check($replies, fn () => $r->getLastError());
            } elseif ($r instanceof \RedisCluster) {
                foreach ($pushes as $key => $elements) {   // shards live on different nodes
                    self::check([$r->rawCommand($key, 'LPUSH', $key, ...$elements)], fn () => $r->getLastError());
                }
            } elseif ($r instanceof \Predis\ClientInterface) {
                $raw = fn (string $key, array $elements) => \Predis\Command\RawCommand::create('LPUSH', $key, ...$elements);
                if (count($pushes) > 1 && !self::isPredisCluster($r)) {
                    self::check($r->pipeline(function ($pipe) use ($pushes, $raw) {
                        foreach ($pushes as $key => $elements) {
                            $pipe->executeCommand($raw($key, $elements));
                        }
                    }), fn () => null);
                } else {
                    foreach ($pushes as $key => $elements) {   // one shard; or a cluster, whose pipelines do not follow MOVED
                        self::check([$r->executeCommand($raw($key, $elements))], fn () => null);
                    }
                }
            } else {
                foreach ($pushes as $key => $elements) {   // another client with phpredis' or Predis' lpush
                    $r->lpush($key, $elements);
                }
            }
            return $count;
        } catch (\Throwable $e) {
            $this->failures++;
            if ($this->onError !== null) {
                try { ($this->onError)($e); } catch (\Throwable $ignored) {}
            }
            return 0;
        }
    }

    /** A Predis client with the cluster option: its commands follow MOVED, its pipelines do not. */
    private static function isPredisCluster(object $r): bool
    {
        if (!method_exists($r, 'getConnection')) {
            return false;
        }
        $c = $r->getConnection();   // Predis 1 names the interface Aggregate\ClusterInterface, Predis 2 Cluster\ClusterInterface
        return $c instanceof \Predis\Connection\Aggregate\ClusterInterface || $c instanceof \Predis\Connection\Cluster\ClusterInterface;
    }

    /** @param array<string, string[]> $pushes @return mixed[] */
    private function pipelined(\Redis $r, array $pushes): array
    {
        $pipe = $r->multi(\Redis::PIPELINE);
        foreach ($pushes as $key => $elements) {
            $pipe->rawCommand('LPUSH', $key, ...$elements);
        }
        return $pipe->exec() ?: [false];
    }

    /** Every reply an LPUSH's length, or a failure with the client's last error. @param mixed[] $replies */
    private static function check(array $replies, callable $lastError): void
    {
        foreach ($replies as $reply) {
            if (!is_int($reply)) {
                $why = $lastError() ?? (is_object($reply) && method_exists($reply, 'getMessage') ? $reply->getMessage() : 'no reply');
                throw new \RuntimeException('LPUSH failed: ' . $why);
            }
        }
    }

    /** Flushes that failed (their samples are dropped). */
    public function failures(): int { return $this->failures; }

    /**
     * Measurements dropped before sending: a value JSON cannot carry (NaN, ±Inf), a negative counter
     * increment, a label value without text (an array), quantiles without their epsilons.
     */
    public function invalid(): int { return $this->invalid; }

    /** The shard a metric name goes to: crc32(name) mod shards, as `gateway shard-of`. */
    public static function shardOf(string $name, int $shards): int
    {
        return $shards > 0 ? crc32($name) % $shards : 0;
    }

    private function shard(string $name): int
    {
        return $this->shardOf[$name] ??= crc32($name) % $this->shards;
    }

    /** A name's JSON string, cached: names repeat, and an application has few of them. */
    private function name(string $name): string
    {
        if (isset($this->names[$name])) {
            return $this->names[$name];
        }
        if (count($this->names) >= self::CACHE_LIMIT) {
            $this->names = [];
        }
        return $this->names[$name] = json_encode($name, self::JSON);
    }

    /**
     * A histogram's bounds (finite, sorted, de-duplicated) and their JSON, cached per name
     * while the caller passes the same array: formatting eleven doubles costs more than
     * everything else a measurement needs.
     * @param float[] $buckets
     * @return array{0: float[], 1: string, 2: float[]}
     */
    private function bounds(string $name, array $buckets): array
    {
        $cached = $this->bounds[$name] ?? null;
        if ($cached !== null && $cached[0] === $buckets) {
            return $cached;
        }
        if (count($this->bounds) >= self::CACHE_LIMIT) {
            $this->bounds = [];
        }
        $sorted = self::finite($buckets);
        sort($sorted);
        $bounds = [];
        foreach ($sorted as $b) {
            if (!$bounds || $bounds[count($bounds) - 1] !== $b) {
                $bounds[] = $b;
            }
        }
        return $this->bounds[$name] = [$buckets, json_encode($bounds, self::JSON), $bounds];
    }

    /**
     * PHP's 14-digit cast when it reads back as the same double (counts, rounded
     * values), else 17 significant digits, which always read back exactly and cost
     * two thirds of json_encode's shortest form (a timing's full-precision double).
     */
    private static function num(float $v): string
    {
        $s = (string)$v;
        return (float)$s === $v ? $s : sprintf('%.17g', $v);
    }

    /** Quantiles and epsilons as pairs of finite numbers: a pair with anything else is left out, not one side of it. */
    private static function objectives(array $quantiles, array $epsilons): string
    {
        $q = $e = [];
        $epsilons = array_values($epsilons);
        foreach (array_values($quantiles) as $i => $v) {
            if (is_numeric($v) && is_numeric($epsilons[$i]) && is_finite($a = (float)$v) && is_finite($b = (float)$epsilons[$i])) {
                $q[] = $a;
                $e[] = $b;
            }
        }
        return ',"quantiles":' . json_encode($q, self::JSON) . ',"epsilons":' . json_encode($e, self::JSON);
    }

    /**
     * The finite numbers of $values as floats; anything else is left out (is_finite() alone
     * would throw a TypeError at a string that is not a number).
     * @return float[]
     */
    private static function finite(array $values): array
    {
        $out = [];
        foreach ($values as $v) {
            if (is_numeric($v) && is_finite($f = (float)$v)) {
                $out[] = $f;
            }
        }
        return $out;
    }

    /** @param array<string, string|int|float|bool> $labels */
    /** The labels' JSON member, or null when a value has no text (an array, an object without __toString). */
    private function labels(array $labels): ?string
    {
        if (!$labels) {
            return '';
        }
        foreach ($labels as $k => $v) {
            if (!is_string($v)) {
                if (is_bool($v)) {
                    $labels[$k] = $v ? 'true' : 'false';
                } elseif (is_scalar($v) || $v === null || $v instanceof \Stringable) {
                    $labels[$k] = (string)$v;
                } else {
                    return null;   // (string) would warn or throw: the measurement is counted as invalid instead
                }
            }
        }
        // {"0": "x"}, not ["x"]: keys PHP turned into integers stay an object.
        return ',"labels":' . json_encode(array_is_list($labels) ? (object)$labels : $labels, self::JSON);
    }

    /** @param string[] $samples @return string[] JSON arrays of at most maxElementBytes (one sample may exceed it alone) */
    private function elements(array $samples): array
    {
        $out = [];
        $current = [];
        $size = 2;
        foreach ($samples as $s) {
            $n = strlen($s) + 1;
            if ($current && $size + $n > $this->maxElementBytes) {
                $out[] = '[' . implode(',', $current) . ']';
                $current = [];
                $size = 2;
            }
            $current[] = $s;
            $size += $n;
        }
        if ($current) {
            $out[] = '[' . implode(',', $current) . ']';
        }
        return $out;
    }
}
