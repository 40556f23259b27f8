/**
 * A log-bucketed latency recorder: constant memory whatever the sample count, quantiles within ~2 %.
 * prom-client histograms cannot answer p50/p99 in-process, and the scaletest needs them over 100k+ samples.
 */
export class LatencyRecorder {
  private static readonly growth = 1.02;
  private static readonly minSeconds = 1e-6;
  private readonly buckets = new Map<number, number>();
  private n = 0;
  private sum = 0;
  private maxSeen = 0;

  record(seconds: number): void {
    const v = Math.max(seconds, 0);
    const idx = v <= LatencyRecorder.minSeconds ? 0 : Math.ceil(Math.log(v / LatencyRecorder.minSeconds) / Math.log(LatencyRecorder.growth));
    this.buckets.set(idx, (this.buckets.get(idx) ?? 0) + 1);
    this.n++;
    this.sum += v;
    if (v > this.maxSeen) this.maxSeen = v;
  }

  get count(): number {
    return this.n;
  }

  get max(): number {
    return this.maxSeen;
  }

  get mean(): number {
    return this.n === 0 ? 0 : this.sum / this.n;
  }

  /** The q-quantile (0..1) in seconds: the upper edge of the bucket that holds it, capped at the true max. */
  quantile(q: number): number {
    if (this.n === 0) return 0;
    const rank = Math.ceil(q * this.n);
    let seen = 0;
    for (const idx of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(idx) ?? 0;
      if (seen >= rank) return Math.min(LatencyRecorder.minSeconds * LatencyRecorder.growth ** idx, this.maxSeen);
    }
    return this.maxSeen;
  }

  summary(): LatencySummary {
    return { count: this.n, mean: this.mean, p50: this.quantile(0.5), p95: this.quantile(0.95), p99: this.quantile(0.99), max: this.maxSeen };
  }
}

export interface LatencySummary {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}
