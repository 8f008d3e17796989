<?php
declare(strict_types=1);

namespace PromStreamGateway\Laravel;

use PromStreamGateway\Metrics;

/** Terminable middleware: the response is sent first, then the request's measurements (one round trip). */
final class FlushMetrics
{
    private Metrics $metrics;

    public function __construct(Metrics $metrics) { $this->metrics = $metrics; }

    public function handle($request, \Closure $next) { return $next($request); }

    public function terminate($request, $response): void { $this->metrics->flush(); }
}
