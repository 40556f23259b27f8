import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';

/**
 * One registry per daemon, so several daemons in one process (tests, the scaletest) keep their figures apart.
 * Components register their own metrics on the registry they are given.
 */
export function createMetricsRegistry(opts: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/** `coderlite_build_info{version, node_version} 1`, so a dashboard can tell which build each replica runs. */
export function registerBuildInfo(registry: Registry, version: string): void {
  new Gauge({ name: 'coderlite_build_info', help: 'Always 1; the labels say what runs.', labelNames: ['version', 'node_version'], registers: [registry] }).set(
    { version, node_version: process.version },
    1,
  );
}

export { Registry } from 'prom-client';
