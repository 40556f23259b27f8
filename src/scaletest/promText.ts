/**
 * Just enough of the Prometheus text format to read a daemon's /metrics: samples with their labels, and the
 * quantile estimate PromQL's histogram_quantile makes from cumulative buckets.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const lineRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(v: string): string {
  return v.replace(/\\(.)/g, (_, ch: string) => (ch === 'n' ? '\n' : ch));
}

export function parsePromText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = lineRe.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) for (const l of m[2].matchAll(labelRe)) labels[l[1]!] = unescapeLabel(l[2]!);
    const value = m[3] === '+Inf' ? Infinity : m[3] === '-Inf' ? -Infinity : Number(m[3]);
    samples.push({ name: m[1]!, labels, value });
  }
  return samples;
}

/** The parsed samples of one scrape, with the lookups the scaletest needs. */
export class Scrape {
  constructor(readonly samples: Sample[]) {}

  static parse(text: string): Scrape {
    return new Scrape(parsePromText(text));
  }

  /** Sum of every sample of `name` whose labels include `match`. */
  sum(name: string, match: Record<string, string> = {}): number {
    let total = 0;
    for (const s of this.samples) {
      if (s.name !== name) continue;
      if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
    }
    return total;
  }

  /** `name` summed by the value of one label. */
  byLabel(name: string, label: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.samples) {
      if (s.name !== name) continue;
      const key = s.labels[label];
      if (key !== undefined) out[key] = (out[key] ?? 0) + s.value;
    }
    return out;
  }

  /** Cumulative buckets of an unlabelled (or label-summed) histogram, sorted by upper bound. */
  buckets(name: string): Array<[number, number]> {
    const byLe = this.byLabel(`${name}_bucket`, 'le');
    return Object.entries(byLe)
      .map(([le, n]): [number, number] => [le === '+Inf' ? Infinity : Number(le), n])
      .sort((a, b) => a[0] - b[0]);
  }
}

/** Per-bucket difference of two cumulative bucket lists with the same bounds (after minus before). */
export function bucketDelta(after: Array<[number, number]>, before: Array<[number, number]>): Array<[number, number]> {
  const prev = new Map(before);
  return after.map(([le, n]) => [le, n - (prev.get(le) ?? 0)]);
}

/**
 * histogram_quantile: find the bucket holding rank q·count and interpolate linearly inside it. A quantile in the
 * +Inf bucket answers with the highest finite bound, as Prometheus does.
 */
export function histogramQuantile(q: number, buckets: Array<[number, number]>): number {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return 0;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevBound;
      const inBucket = count - prevCount;
      return inBucket <= 0 ? le : prevBound + ((le - prevBound) * (rank - prevCount)) / inBucket;
    }
    prevBound = le === Infinity ? prevBound : le;
    prevCount = count;
  }
  return prevBound;
}

/** The upper bound of the highest bucket that gained samples: all a histogram can say of the maximum. */
export function histogramMaxBound(buckets: Array<[number, number]>): number {
  let prevCount = 0;
  let bound = 0;
  let lastFinite = 0;
  for (const [le, count] of buckets) {
    if (count > prevCount) bound = le === Infinity ? lastFinite : le;
    if (le !== Infinity) lastFinite = le;
    prevCount = count;
  }
  return bound;
}
