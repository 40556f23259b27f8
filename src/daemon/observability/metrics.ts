import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * One registry per daemon, so several daemons in one process (tests, the scaletest) keep their figures apart.
 * Components register their own metrics on the registry they are given.
 */
export function createMetricsRegistry(opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

export { Registry } from 'prom-client';
