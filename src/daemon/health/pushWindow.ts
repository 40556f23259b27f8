import type { Counter } from 'prom-client';

interface Sample {
  at: number;
  sent: number;
  failed: number;
}

/** Results that mean a push did not arrive; `gone` (404/410) is a subscription that ended, not a failure. */
const failedResults = new Set(['failed', 'rejected']);

/**
 * Push sends and failures over the last few minutes, from the dispatch counter itself (no second set of counters):
 * sampled every 15 s, the oldest sample inside the window is subtracted from the counter now.
 */
export class PushWindow {
  private readonly samples: Sample[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly counter: Counter<'result'>,
    private readonly windowMs = 5 * 60_000,
    sampleMs = 15_000,
  ) {
    this.timer = setInterval(() => void this.sample(), sampleMs).unref();
    void this.sample();
  }

  close(): void {
    clearInterval(this.timer);
  }

  async recent(): Promise<{ sent: number; failed: number; windowSeconds: number }> {
    const now = await this.read();
    const from = this.samples.find((s) => s.at >= now.at - this.windowMs) ?? now;
    return { sent: now.sent - from.sent, failed: now.failed - from.failed, windowSeconds: this.windowMs / 1000 };
  }

  private async sample(): Promise<void> {
    const s = await this.read();
    this.samples.push(s);
    while (this.samples.length > 0 && this.samples[0]!.at < s.at - this.windowMs - 60_000) this.samples.shift();
  }

  private async read(): Promise<Sample> {
    const { values } = await this.counter.get();
    let sent = 0;
    let failed = 0;
    for (const v of values) {
      sent += v.value;
      if (failedResults.has(String(v.labels.result))) failed += v.value;
    }
    return { at: Date.now(), sent, failed };
  }
}
