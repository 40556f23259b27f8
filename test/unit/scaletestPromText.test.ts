import { describe, expect, it } from 'vitest';

import { bucketDelta, histogramMaxBound, histogramQuantile, Scrape } from '../../src/scaletest/promText.js';

const text = `# HELP coderlite_db_queries_total Queries run, by query name.
# TYPE coderlite_db_queries_total counter
coderlite_db_queries_total{query="getChatByID"} 120
coderlite_db_queries_total{query="insert \\"quoted\\""} 3
coder_pubsub_publishes_total{success="true"} 40
coder_pubsub_publishes_total{success="false"} 2
coderlite_db_pool_waiting_connections 4
coderlite_db_pool_acquire_wait_seconds_bucket{le="0.001"} 90
coderlite_db_pool_acquire_wait_seconds_bucket{le="0.01"} 99
coderlite_db_pool_acquire_wait_seconds_bucket{le="0.1"} 100
coderlite_db_pool_acquire_wait_seconds_bucket{le="+Inf"} 100
coderlite_db_pool_acquire_wait_seconds_sum 0.2
coderlite_db_pool_acquire_wait_seconds_count 100
process_start_time_seconds 1700000000 1700000000000
`;

describe('Scrape', () => {
  const s = Scrape.parse(text);

  it('reads samples, labels (with escapes) and timestamps', () => {
    expect(s.byLabel('coderlite_db_queries_total', 'query')).toEqual({ getChatByID: 120, 'insert "quoted"': 3 });
    expect(s.sum('coder_pubsub_publishes_total', { success: 'true' })).toBe(40);
    expect(s.sum('coder_pubsub_publishes_total')).toBe(42);
    expect(s.sum('coderlite_db_pool_waiting_connections')).toBe(4);
    expect(s.sum('process_start_time_seconds')).toBe(1_700_000_000);
    expect(s.sum('missing')).toBe(0);
  });

  it('lists cumulative buckets in order, +Inf last', () => {
    expect(s.buckets('coderlite_db_pool_acquire_wait_seconds')).toEqual([
      [0.001, 90],
      [0.01, 99],
      [0.1, 100],
      [Infinity, 100],
    ]);
  });
});

describe('histogram quantiles', () => {
  const buckets = Scrape.parse(text).buckets('coderlite_db_pool_acquire_wait_seconds');

  it('interpolates inside the bucket that holds the rank, like histogram_quantile', () => {
    expect(histogramQuantile(0.5, buckets)).toBeCloseTo(0.001 * (50 / 90), 9);
    expect(histogramQuantile(0.99, buckets)).toBeCloseTo(0.01, 9);
    expect(histogramQuantile(0.995, buckets)).toBeCloseTo(0.055, 9);
    expect(histogramQuantile(0.5, [])).toBe(0);
    // A rank in +Inf answers with the highest finite bound.
    expect(histogramQuantile(0.99, [[0.1, 1], [Infinity, 10]])).toBe(0.1);
  });

  it('subtracts a baseline and bounds the maximum by the highest bucket that grew', () => {
    const before: Array<[number, number]> = [[0.001, 80], [0.01, 80], [0.1, 80], [Infinity, 80]];
    const delta = bucketDelta(buckets, before);
    expect(delta).toEqual([[0.001, 10], [0.01, 19], [0.1, 20], [Infinity, 20]]);
    expect(histogramMaxBound(delta)).toBe(0.1);
    expect(histogramMaxBound([[0.001, 5], [0.01, 5], [Infinity, 5]])).toBe(0.001);
  });
});
