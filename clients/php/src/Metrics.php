<?php
declare(strict_types=1);

namespace PromStreamGateway;

/**
 * Buffers measurements during one invocation and sends them to prom-stream-gateway
 * in one round trip: flush() sends one LPUSH per shard (per queue key without
 * shards; several shards pipelined, except on a phpredis RedisCluster), each
 * element a JSON array of samples, split only above max_element_bytes.
 *
 * Never throws into the application: a Redis failure is counted (failures()),
 * passed to on_error, and the buffer is dropped (a Lambda invocation that could not
 * send has nowhere to keep it). Flushes at shutdown unless auto_flush is false.
 *
 * Works with phpredis (\Redis, \RedisCluster) and Predis (Predis\ClientInterface).
 */
final class Metrics
{
    public const DEFAULT_KEY = 'prom-stream-gateway:metric-queue';
    public const DEFAULT_MAX_ELEMENT_BYTES = 524288;

    /** @var object phpredis or Predis client */
    private $redis;
    private string $key;
    private int $shards;
    private int $maxElementBytes;
    /** @var null|callable(\Throwable): void */
    private $onError;
    /** @var array<int, string[]> encoded samples by shard (0 without shards) */
    private array $buffer = [];
    private int $buffered = 0;
    private int $failures = 0;
    private int $invalid = 0;
    /** @var array<string, int> name → shard */
    private array $shardOf = [];
    private const JSON = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE | JSON_PRESERVE_ZERO_FRACTION;

    /**
     * @param object $redis phpredis \Redis / \RedisCluster or a Predis client
     * @param array{key?: string, shards?: int, max_element_bytes?: int, on_error?: callable, auto_flush?: bool} $options
     */
    public function __construct($redis, array $options = [])
    {
        $this->redis = $redis;
        $this->key = (string)($options['key'] ?? self::DEFAULT_KEY);
        $this->shards = max(0, (int)($options['shards'] ?? 0));
        $this->maxElementBytes = max(1024, (int)($options['max_element_bytes'] ?? self::DEFAULT_MAX_ELEMENT_BYTES));
        $this->onError = $options['on_error'] ?? null;
        if ($options['auto_flush'] ?? true) {
            register_shutdown_function(function (): void { $this->flush(); });
        }
    }

    /** A phpredis client with bounded connect and read time-outs (seconds). */
    public static function connect(string $host = '127.0.0.1', int $port = 6379, float $timeout = 0.5): \Redis
    {
        $r = new \Redis();
        $r->connect($host, $port, $timeout);
        $r->setOption(\Redis::OPT_READ_TIMEOUT, $timeout);
        return $r;
    }

    /** @param array<string, string|int|float|bool> $labels */
    public function counter(string $name, float $value = 1, array $labels = []): void
    {
        $this->add($name, '{"type":"counter","name":' . $this->enc($name) . ',"value":' . $this->num($value) . $this->labels($labels) . '}', $value);
    }

    /** @param array<string, string|int|float|bool> $labels */
    public function gauge(string $name, float $value, array $labels = []): void
    {
        $this->add($name, '{"type":"gauge","name":' . $this->enc($name) . ',"value":' . $this->num($value) . $this->labels($labels) . '}', $value);
    }

    /**
     * @param float[] $buckets upper bounds (+Inf implied)
     * @param array<string, string|int|float|bool> $labels
     */
    public function histogram(string $name, float $value, array $buckets, array $labels = []): void
    {
        $this->add($name, '{"type":"histogram","name":' . $this->enc($name) . ',"value":' . $this->num($value)
            . ',"buckets":' . $this->numbers($buckets) . $this->labels($labels) . '}', $value);
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
        $this->add($name, '{"type":"summary","name":' . $this->enc($name) . ',"value":' . $this->num($value)
            . ($quantiles ? ',"quantiles":' . $this->numbers($quantiles) . ',"epsilons":' . $this->numbers($epsilons) : '')
            . $this->labels($labels) . '}', $value);
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

    /** Sends what is buffered; returns the number of samples sent (0 on failure). */
    public function flush(): int
    {
        if ($this->buffered === 0) {
            return 0;
        }
        $buffer = $this->buffer;
        $count = $this->buffered;
        $this->buffer = [];
        $this->buffered = 0;
        $pushes = [];
        foreach ($buffer as $shard => $samples) {
            $pushes[$this->shards > 0 ? $this->key . ':{' . $shard . '}' : $this->key] = $this->elements($samples);
        }
        try {
            $r = $this->redis;
            if ($r instanceof \Redis) {
                // Several shards: one LPUSH each, pipelined in one round trip.
                $replies = count($pushes) > 1 ? $this->pipelined($r, $pushes) : [$r->lPush(array_key_first($pushes), ...reset($pushes))];
                foreach ($replies as $reply) {
                    if (!is_int($reply)) {
                        throw new \RuntimeException('LPUSH failed: ' . ($r->getLastError() ?? 'no reply'));
                    }
                }
            } elseif ($r instanceof \RedisCluster) {
                foreach ($pushes as $key => $elements) {   // shards live on different nodes
                    if (!is_int($r->lPush($key, ...$elements))) {
                        throw new \RuntimeException('LPUSH failed: ' . ($r->getLastError() ?? 'no reply'));
                    }
                }
            } elseif (count($pushes) > 1) {
                $r->pipeline(function ($pipe) use ($pushes) {
                    foreach ($pushes as $key => $elements) {
                        $pipe->lpush($key, $elements);
                    }
                });
            } else {
                $r->lpush(array_key_first($pushes), reset($pushes));
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

    /** @param array<string, string[]> $pushes @return mixed[] */
    private function pipelined(\Redis $r, array $pushes): array
    {
        $pipe = $r->multi(\Redis::PIPELINE);
        foreach ($pushes as $key => $elements) {
            $pipe->lPush($key, ...$elements);
        }
        return $pipe->exec() ?: [false];
    }

    /** Flushes that failed (their samples are dropped). */
    public function failures(): int { return $this->failures; }

    /** Measurements dropped before sending: a value JSON cannot carry (NaN, ±Inf). */
    public function invalid(): int { return $this->invalid; }

    /** The shard a metric name goes to: crc32(name) mod shards, as `gateway shard-of`. */
    public static function shardOf(string $name, int $shards): int
    {
        return $shards > 0 ? crc32($name) % $shards : 0;
    }

    private function add(string $name, string $json, float $value): void
    {
        if (!is_finite($value)) {
            $this->invalid++;
            return;
        }
        $shard = 0;
        if ($this->shards > 0) {
            $shard = $this->shardOf[$name] ??= crc32($name) % $this->shards;
        }
        $this->buffer[$shard][] = $json;
        $this->buffered++;
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

    private function enc(string $s): string
    {
        return json_encode($s, self::JSON);
    }

    /** Non-finite values never reach the buffer (add() drops them). */
    private function num(float $v): string
    {
        return is_finite($v) ? json_encode($v, self::JSON) : '0';
    }

    /** @param float[] $values */
    private function numbers(array $values): string
    {
        return json_encode(array_values(array_map('floatval', array_filter($values, 'is_finite'))), self::JSON);
    }

    /** @param array<string, string|int|float|bool> $labels */
    private function labels(array $labels): string
    {
        if (!$labels) {
            return '';
        }
        $o = [];
        foreach ($labels as $k => $v) {
            $o[(string)$k] = is_bool($v) ? ($v ? 'true' : 'false') : (string)$v;
        }
        return ',"labels":' . json_encode((object)$o, self::JSON);
    }
}
