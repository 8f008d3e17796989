<?php
declare(strict_types=1);

namespace PromStreamGateway\Laravel;

use Illuminate\Support\ServiceProvider;
use PromStreamGateway\Metrics;

/**
 * Laravel: one Metrics per request on the default Redis connection (phpredis or
 * Predis, as config/database.php says), flushed by FlushMetrics after the response.
 * config/prom-stream-gateway.php (optional): ['key' => …, 'shards' => 0, 'connection' => 'default', 'bucket_histograms' => true].
 */
final class MetricsServiceProvider extends ServiceProvider
{
    public function register(): void
    {
        $this->app->scoped(Metrics::class, function ($app) {
            $config = $app['config']->get('prom-stream-gateway', []);
            // Connected at the first flush: phpredis connects when the connection is made, and a Redis
            // that is down must not fail the request that resolves Metrics.
            $client = fn () => $app['redis']->connection($config['connection'] ?? 'default')->client();
            return new Metrics($client, ['key' => $config['key'] ?? Metrics::DEFAULT_KEY, 'shards' => $config['shards'] ?? 0,
                'bucket_histograms' => $config['bucket_histograms'] ?? true,
                'auto_flush' => false, 'on_error' => fn (\Throwable $e) => $app['log']->warning('prom-stream-gateway: ' . $e->getMessage())]);
        });
    }
}
