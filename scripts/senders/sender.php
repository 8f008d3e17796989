<?php
// One sender method, measured per invocation (make bench-senders):
//   php sender.php METHOD M MAX_INVOCATIONS MAX_SECONDS REDIS_PORT PUSHGATEWAY_PORT
// An invocation records M measurements — even ones a counter, odd ones a histogram
// observation with 11 buckets, over 5 label values each — and sends them:
//   lpush-each   one json_encode + lPush per measurement (what the README showed first until the libraries)
//   library      clients/php Metrics: buffer, one lPush of a JSON array per flush
//   pushgateway  pre-aggregate in memory, render the text format, POST it with curl
//                (keep-alive, no Expect: 100-continue) — what a PromPHP user does,
//                with a registry lighter than PromPHP's, which favours this method
// Connections are made once (a warm Lambda keeps them) and 20 warm-up invocations are
// not measured. Prints: invocations wall_p50_us wall_p99_us cpu_us_per_invocation
declare(strict_types=1);
require (getenv('CLIENTS_DIR') ?: __DIR__ . '/../../clients') . '/php/autoload.php';   // another version's: library-ab.sh

[$_, $method, $m, $maxInvocations, $maxSeconds, $redisPort, $pgwPort] = $argv;
$m = (int)$m;
const KEY = 'prom-stream-gateway:metric-queue';
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const QUEUES = ['mail', 'sms', 'push', 'billing', 'export'];

$redis = new \Redis();
$redis->connect('127.0.0.1', (int)$redisPort, 2.0);

$invoke = match ($method) {
    'lpush-each' => function () use ($redis, $m): void {
        for ($i = 0; $i < $m; $i++) {
            $q = QUEUES[intdiv($i, 2) % 5];
            $sample = $i % 2 === 0
                ? ['type' => 'counter', 'name' => 'bench_jobs_total', 'value' => 1, 'labels' => ['queue' => $q]]
                : ['type' => 'histogram', 'name' => 'bench_job_duration_seconds', 'value' => ($i % 1000) * 0.001,
                   'buckets' => BUCKETS, 'labels' => ['queue' => $q]];
            $redis->lPush(KEY, json_encode($sample));
        }
    },
    'library' => function () use ($redis, $m): void {
        $metrics = new \PromStreamGateway\Metrics($redis, ['auto_flush' => false]);
        for ($i = 0; $i < $m; $i++) {
            $q = QUEUES[intdiv($i, 2) % 5];
            if ($i % 2 === 0) {
                $metrics->counter('bench_jobs_total', 1, ['queue' => $q]);
            } else {
                $metrics->histogram('bench_job_duration_seconds', ($i % 1000) * 0.001, BUCKETS, ['queue' => $q]);
            }
        }
        $metrics->flush();
    },
    'pushgateway' => pushgateway($m, (int)$pgwPort),
};

function pushgateway(int $m, int $port): Closure
{
    $curl = curl_init("http://127.0.0.1:$port/metrics/job/bench");
    curl_setopt_array($curl, [CURLOPT_POST => true, CURLOPT_RETURNTRANSFER => true, CURLOPT_TIMEOUT_MS => 2000,
        CURLOPT_HTTPHEADER => ['Content-Type: text/plain; version=0.0.4', 'Expect:']]);
    return function () use ($curl, $m): void {
        $counters = [];
        $histograms = [];
        for ($i = 0; $i < $m; $i++) {
            $q = QUEUES[intdiv($i, 2) % 5];
            if ($i % 2 === 0) {
                $counters[$q] = ($counters[$q] ?? 0) + 1;
                continue;
            }
            $v = ($i % 1000) * 0.001;
            $h = $histograms[$q] ?? ['buckets' => array_fill(0, count(BUCKETS), 0), 'sum' => 0.0, 'count' => 0];
            foreach (BUCKETS as $b => $le) {
                if ($v <= $le) { $h['buckets'][$b]++; }
            }
            $h['sum'] += $v;
            $h['count']++;
            $histograms[$q] = $h;
        }
        $body = "# TYPE bench_jobs_total counter\n";
        foreach ($counters as $q => $c) { $body .= "bench_jobs_total{queue=\"$q\"} $c\n"; }
        $body .= "# TYPE bench_job_duration_seconds histogram\n";
        foreach ($histograms as $q => $h) {
            foreach (BUCKETS as $b => $le) { $body .= "bench_job_duration_seconds_bucket{queue=\"$q\",le=\"$le\"} {$h['buckets'][$b]}\n"; }
            $body .= "bench_job_duration_seconds_bucket{queue=\"$q\",le=\"+Inf\"} {$h['count']}\n";
            $body .= "bench_job_duration_seconds_sum{queue=\"$q\"} {$h['sum']}\n";
            $body .= "bench_job_duration_seconds_count{queue=\"$q\"} {$h['count']}\n";
        }
        curl_setopt($curl, CURLOPT_POSTFIELDS, $body);
        if (curl_exec($curl) === false || curl_getinfo($curl, CURLINFO_RESPONSE_CODE) !== 200) {
            fwrite(STDERR, "pushgateway: " . curl_error($curl) . " " . curl_getinfo($curl, CURLINFO_RESPONSE_CODE) . "\n");
            exit(1);
        }
    };
}

function cpu(): float
{
    $u = getrusage();
    return $u['ru_utime.tv_sec'] * 1e6 + $u['ru_utime.tv_usec'] + $u['ru_stime.tv_sec'] * 1e6 + $u['ru_stime.tv_usec'];
}

for ($i = 0; $i < 20; $i++) { $invoke(); }
$walls = [];
$deadline = hrtime(true) + (int)((float)$maxSeconds * 1e9);
$cpu0 = cpu();
while (count($walls) < (int)$maxInvocations && ($walls === [] || hrtime(true) < $deadline)) {
    $t = hrtime(true);
    $invoke();
    $walls[] = (hrtime(true) - $t) / 1e3;
}
$cpu = (cpu() - $cpu0) / count($walls);
sort($walls);
$n = count($walls);
printf("%d %.1f %.1f %.1f\n", $n, $walls[intdiv($n, 2)], $walls[min($n - 1, (int)floor($n * 0.99))], $cpu);
