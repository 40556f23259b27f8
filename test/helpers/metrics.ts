import type { Registry } from 'prom-client';

/**
 * One series of a metric from the real registry: a counter's or gauge's value, a histogram's `_count` (or `_sum`).
 * NaN when there is no such series.
 */
export async function metricValue(registry: Registry, name: string, labels: Record<string, string> = {}, histogramPart: 'count' | 'sum' = 'count'): Promise<number> {
  const metric = await registry.getSingleMetric(name)?.get();
  const isHistogram = String(metric?.type) === 'histogram';
  const match = metric?.values.find(
    (v) =>
      Object.entries(labels).every(([k, val]) => v.labels[k] === val) &&
      (!isHistogram || (v as { metricName?: string }).metricName?.endsWith(`_${histogramPart}`)),
  );
  return match?.value ?? NaN;
}
