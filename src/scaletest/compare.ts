import { summarize, type ScaletestReport, type ScaletestSummary } from './report.js';

export interface SummaryDifference {
  figure: string;
  a: number;
  b: number;
  /** b − a */
  change: number;
  /** (b − a) / a, undefined when a is 0. */
  relative?: number;
}

/** The numeric figures of two runs' summaries (nested ones flattened with dots), side by side. */
export function compareSummaries(a: ScaletestSummary, b: ScaletestSummary): SummaryDifference[] {
  const fa = flatten(a);
  const fb = flatten(b);
  const names = [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort();
  return names.map((figure) => {
    const x = fa[figure] ?? 0;
    const y = fb[figure] ?? 0;
    return { figure, a: x, b: y, change: y - x, ...(x !== 0 ? { relative: (y - x) / x } : {}) };
  });
}

function flatten(o: object, prefix = ''): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number') out[prefix + k] = v;
    else if (typeof v === 'boolean') out[prefix + k] = v ? 1 : 0;
    else if (v && typeof v === 'object' && !Array.isArray(v)) Object.assign(out, flatten(v as object, `${prefix}${k}.`));
  }
  return out;
}

/** A `--json` report (one object) or a whole stdout with its SCALETEST_SUMMARY line: either gives a summary. */
export function summaryFromText(text: string): ScaletestSummary {
  const line = text.split('\n').find((l) => l.startsWith('SCALETEST_SUMMARY='));
  if (line) return JSON.parse(line.slice('SCALETEST_SUMMARY='.length)) as ScaletestSummary;
  const first = text.split('\n').find((l) => l.trim().startsWith('{'));
  if (!first) throw new Error('neither a --json report nor a SCALETEST_SUMMARY line');
  const report = JSON.parse(first) as ScaletestReport;
  if (!report.chats || !report.latency) throw new Error('not a scaletest report');
  return summarize(report);
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toFixed(3);
}

export function formatComparison(rows: SummaryDifference[], names: [string, string]): string {
  const changed = rows.filter((r) => r.change !== 0);
  const header = ['figure', names[0], names[1], 'change'];
  const cells = changed.map((r) => [
    r.figure,
    fmt(r.a),
    fmt(r.b),
    `${r.change > 0 ? '+' : ''}${fmt(r.change)}${r.relative !== undefined ? ` (${r.relative > 0 ? '+' : ''}${(r.relative * 100).toFixed(1)}%)` : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) => c.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ');
  const same = rows.length - changed.length;
  return `${[line(header), ...cells.map(line)].join('\n')}\n${same} figure(s) unchanged\n`;
}
