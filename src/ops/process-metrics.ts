import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * prom-client's default process metrics (CPU, memory, event loop lag, GC, handles), prefixed, less the three
 * that break the exposition naming rules: `nodejs_active_{handles,requests,resources}_total` are gauges named
 * like counters (`promtool check metrics` fails on them). Each is the sum of its per-type gauge, which stays:
 * `sum(starstream_nodejs_active_handles)` is the total.
 */
export const DROPPED_PROCESS_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

export function collectProcessMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix });
  for (const name of DROPPED_PROCESS_METRICS) registry.removeSingleMetric(`${prefix}${name}`);
}
