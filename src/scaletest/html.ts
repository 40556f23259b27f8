import { failureKinds, failureLabels, starvingQueries, summaryLine, type LatencyMs, type ScaletestReport } from './report.js';

/**
 * The `--report FILE.html` page: one self-contained file (inline CSS and SVG, no scripts, no fonts, no network) that
 * an operator can attach to a release ticket and open anywhere.
 */

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/** A round step for about `target` ticks over [0, max]. */
function niceStep(max: number, target = 5): number {
  if (max <= 0) return 1;
  const raw = max / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 1000) return `${+(v / 1000).toFixed(1)}k`;
  if (Math.abs(v) >= 10) return String(Math.round(v));
  return String(+v.toFixed(2));
}

export interface Series {
  name: string;
  color: string;
  points: Array<[number, number]>;
}

const W = 720;
const H = 260;
// Room above the plot for the title and a legend of up to three series.
const pad = { left: 56, right: 16, top: 46, bottom: 40 };

/** A line chart over time; each series is a polyline. */
export function lineChart(title: string, yLabel: string, series: Series[]): string {
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1]));
  const xMax = Math.max(1, ...xs);
  const yStep = niceStep(Math.max(0, ...ys));
  const yMax = Math.max(yStep, Math.ceil(Math.max(0, ...ys) / yStep) * yStep);
  const xStep = niceStep(xMax, 8);
  const iw = W - pad.left - pad.right;
  const ih = H - pad.top - pad.bottom;
  const X = (x: number) => pad.left + (x / xMax) * iw;
  const Y = (y: number) => pad.top + ih - (y / yMax) * ih;
  const parts: string[] = [];
  parts.push(`<text x="${pad.left}" y="18" class="title">${esc(title)}</text>`);
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    parts.push(`<line x1="${pad.left}" x2="${W - pad.right}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${(Y(y) + 4).toFixed(1)}" class="tick" text-anchor="end">${fmt(y)}</text>`);
  }
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    parts.push(`<text x="${X(x).toFixed(1)}" y="${H - pad.bottom + 16}" class="tick" text-anchor="middle">${fmt(x)}</text>`);
  }
  parts.push(`<text x="${pad.left + iw / 2}" y="${H - 6}" class="axis" text-anchor="middle">seconds</text>`);
  parts.push(`<text x="14" y="${pad.top + ih / 2}" class="axis" text-anchor="middle" transform="rotate(-90 14 ${pad.top + ih / 2})">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    if (s.points.length > 0) {
      const d = s.points.map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="2"><title>${esc(s.name)}</title></polyline>`);
    }
    const lx = W - pad.right - 150;
    const ly = 14 + i * 14;
    parts.push(`<rect x="${lx}" y="${ly - 8}" width="10" height="3" fill="${s.color}"/><text x="${lx + 14}" y="${ly}" class="tick">${esc(s.name)}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg>`;
}

/** Grouped bars: one group per latency, one bar per percentile. */
export function latencyChart(groups: Array<[string, LatencyMs]>): string {
  const keys = ['p50', 'p95', 'p99', 'max'] as const;
  const colors = ['#4e79a7', '#59a14f', '#f28e2b', '#e15759'];
  const values = groups.flatMap(([, l]) => keys.map((k) => l[k]));
  const yStep = niceStep(Math.max(0, ...values));
  const yMax = Math.max(yStep, Math.ceil(Math.max(0, ...values) / yStep) * yStep);
  const iw = W - pad.left - pad.right;
  const ih = H - pad.top - pad.bottom;
  const Y = (y: number) => pad.top + ih - (y / yMax) * ih;
  const groupW = iw / Math.max(1, groups.length);
  const barW = Math.min(40, (groupW * 0.8) / keys.length);
  const parts: string[] = [`<text x="${pad.left}" y="18" class="title">Latency percentiles (ms)</text>`];
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    parts.push(`<line x1="${pad.left}" x2="${W - pad.right}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" class="grid"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${(Y(y) + 4).toFixed(1)}" class="tick" text-anchor="end">${fmt(y)}</text>`);
  }
  groups.forEach(([name, l], gi) => {
    const gx = pad.left + gi * groupW + (groupW - barW * keys.length) / 2;
    keys.forEach((k, ki) => {
      const v = l[k];
      const x = gx + ki * barW;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${Y(v).toFixed(1)}" width="${(barW - 3).toFixed(1)}" height="${(Y(0) - Y(v)).toFixed(1)}" fill="${colors[ki]}"><title>${esc(name)} ${k}: ${v} ms</title></rect>`,
      );
      parts.push(`<text x="${(x + (barW - 3) / 2).toFixed(1)}" y="${(Y(v) - 3).toFixed(1)}" class="val" text-anchor="middle">${fmt(v)}</text>`);
    });
    parts.push(`<text x="${(pad.left + gi * groupW + groupW / 2).toFixed(1)}" y="${H - pad.bottom + 16}" class="axis" text-anchor="middle">${esc(name)}</text>`);
  });
  keys.forEach((k, ki) => {
    const lx = W - pad.right - 200 + ki * 50;
    parts.push(`<rect x="${lx}" y="10" width="10" height="10" fill="${colors[ki]}"/><text x="${lx + 14}" y="19" class="tick">${k}</text>`);
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="Latency percentiles">${parts.join('')}</svg>`;
}

const css = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:980px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.pass{background:#2e7d32}.fail{background:#c62828}.interrupted{background:#ef6c00}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:130px}
.card b{display:block;font-size:20px}.card span{color:#666;font-size:12px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:right}
td:first-child,th:first-child{text-align:left}tr.starving td{background:#fff6e0}
svg{max-width:100%;height:auto;display:block;margin:10px 0}svg .grid{stroke:#e6e6e6}svg .tick{font-size:11px;fill:#555}
svg .axis{font-size:12px;fill:#333}svg .title{font-size:13px;font-weight:600;fill:#222}svg .val{font-size:10px;fill:#333}
code{font-size:12px;background:#f5f5f5;padding:2px 4px;word-break:break-all}.muted{color:#666}
`;

function cell(c: string | number): string {
  // Thousands grouped, decimals kept: 123456.5 → 123,456.5.
  return typeof c === 'number' ? c.toLocaleString('en-US', { maximumFractionDigits: 3 }) : c;
}

function row(cells: Array<string | number>, cls?: string): string {
  return `<tr${cls ? ` class="${cls}"` : ''}>${cells.map((c) => `<td>${esc(cell(c))}</td>`).join('')}</tr>`;
}

export function renderHtml(r: ScaletestReport): string {
  const c = r.config;
  const m = r.meta;
  const verdict = r.passed ? 'pass' : r.interrupted ? 'interrupted' : 'fail';
  const card = (value: string, label: string) => `<div class="card"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
  const tl = r.timeline;
  const poolChart = lineChart('DB pool over time', 'connections', [
    { name: 'waiting acquisitions', color: '#e15759', points: tl.map((p) => [p.t, p.poolWaiting]) },
    { name: 'open connections', color: '#4e79a7', points: tl.map((p) => [p.t, p.poolTotal]) },
  ]);
  const rateChart = lineChart('Turns per second', 'turns/s', [
    { name: 'turns/s', color: '#59a14f', points: tl.map((p) => [p.t, p.turnsPerSecond]) },
    { name: 'active chats / 10', color: '#bab0ac', points: tl.map((p) => [p.t, p.activeChats / 10]) },
  ]);
  // An interval in which no turn finished has no percentiles: it is left out rather than drawn as 0 ms.
  const finished = tl.filter((p) => p.turnDurationMs.p99 > 0);
  const latencyOverTime = lineChart('Turn duration over time', 'ms', [
    { name: 'p50', color: '#4e79a7', points: finished.map((p) => [p.t, p.turnDurationMs.p50]) },
    { name: 'p95', color: '#f28e2b', points: finished.map((p) => [p.t, p.turnDurationMs.p95]) },
    { name: 'p99', color: '#e15759', points: finished.map((p) => [p.t, p.turnDurationMs.p99]) },
  ]);
  const ms = (v: number | undefined) => (v !== undefined ? `${v} ms` : 'unknown');
  const lat = latencyChart([
    ['time to running', r.latency.timeToRunning],
    ['time to first part', r.latency.timeToFirstPart],
    ['turn duration', r.latency.turnDuration],
  ]);
  const starving = new Set<string>(starvingQueries);
  const failures = failureKinds.filter((k) => (r.failures[k] ?? 0) > 0);
  const latRows = (['timeToRunning', 'timeToFirstPart', 'turnDuration'] as const).map((k) => {
    const l = r.latency[k];
    return row([{ timeToRunning: 'time to running', timeToFirstPart: 'time to first part', turnDuration: 'turn duration' }[k], l.count, l.p50, l.p95, l.p99, l.max]);
  });
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>coder-lite scaletest: ${esc(verdict)} — ${c.chats} chats × ${c.turns} turns</title><style>${css}</style></head>
<body>
<h1>coder-lite scaletest <span class="verdict ${verdict}">${verdict.toUpperCase()}</span></h1>
<p class="muted">${esc(r.startedAt)} · ${c.chats} chats × ${c.turns} turns · ${c.users} users · ${c.pushSubscriptionsPerUser} push subscription(s) per user ·
concurrency ${c.concurrency} · LLM ${c.llmTokens} tokens after ${c.llmLatencyMs} ms · ${c.target === 'remote' ? `${(c.urls ?? []).length > 1 ? 'replicas' : 'daemon'} ${esc((c.urls ?? []).join(' + '))}` : 'in-process daemon'}${c.postgresPoolMax ? ` · pool max ${c.postgresPoolMax}` : ''} ·
config cache ${c.configCache ? 'on' : '<b>off</b>'} · subscription cache ${c.subscriptionCache ? 'on' : '<b>off</b>'}</p>
<p class="muted">coder-lite ${esc(m.version)}${m.gitCommit ? ` (${esc(m.gitCommit.slice(0, 12))})` : ''} · Node ${esc(m.node)} · PostgreSQL ${esc(m.postgres ?? 'unknown')} · ${m.hostCores} cores · <code>${esc(m.commandLine)}</code></p>
<div class="cards">
${card(`${r.chats.passed}/${r.chats.total}`, 'chats passed')}
${card(`${r.turns.completed}/${r.turns.total}`, 'turns')}
${card(`${r.elapsedSeconds.toFixed(1)} s`, 'elapsed')}
${card(r.turns.perSecond.toFixed(1), 'turns/s')}
${card(`${r.pool.acquireWaitMs.p99} ms`, 'pool acquire wait p99')}
${card(r.queries.perTurn.toFixed(2), 'queries per turn')}
${card(`${r.push.received}/${r.push.expected}`, 'pushes received')}
${card(ms(r.cpu.daemonMsPerTurn), 'daemon CPU per turn')}
${card(ms(r.cpu.postgresMsPerTurn), 'PostgreSQL CPU per turn')}
</div>
${failures.length > 0 ? `<h2>Failures</h2><table><tr><th>kind</th><th>chats</th></tr>${failures.map((k) => row([failureLabels[k], r.failures[k]!])).join('')}</table>
<ul>${r.failureSamples.map((s) => `<li>${esc(failureLabels[s.kind])}: ${esc(s.message)}</li>`).join('')}</ul>` : ''}
<h2>Throughput</h2>
${rateChart}
<h2>Database pool</h2>
${poolChart}
<table>
${row(['pool size', r.pool.max])}${row(['waiting: peak', r.pool.peakWaiting])}${row(['waiting: time-weighted mean', r.pool.meanWaiting])}
${row(['acquire wait p50 (ms)', r.pool.acquireWaitMs.p50])}${row(['acquire wait p99 (ms)', r.pool.acquireWaitMs.p99])}${row(['acquire wait max (ms)', r.pool.acquireWaitMs.max])}
${row(['acquisitions', r.pool.acquires])}${row(['acquisitions per turn', r.pool.acquiresPerTurn])}${row(['acquisitions that queued', r.pool.waitCount])}
</table>
<p class="muted">Source: ${r.pool.source === 'in-process' ? "the daemon's instrumented pool (exact)" : "the daemon's /metrics (histogram buckets, sampled gauges)"}.</p>
<h2>Queries per turn</h2>
<table><tr><th>query</th><th>count</th><th>per turn</th></tr>
${r.queries.byName.map((q) => row([q.name, q.count, q.perTurn], starving.has(q.name) ? 'starving' : undefined)).join('\n')}
${row(['total', r.queries.total, r.queries.perTurn])}
</table>
<p class="muted">Highlighted: the reads that starved Coder's pool; ≈ 0 per turn with the caches on.</p>
<h2>Latency</h2>
${latencyOverTime}
<p class="muted">Percentiles of the turns that finished in each ${r.meta.sampleIntervalMs} ms interval.</p>
${lat}
<table><tr><th>ms</th><th>count</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>${latRows.join('')}</table>
<h2>CPU</h2>
<table>
${row(['daemon CPU (s)', r.cpu.daemonSeconds ?? 'unknown'])}${row(['daemon CPU per turn (ms)', r.cpu.daemonMsPerTurn ?? 'unknown'])}
${r.cpu.mainThreadMsPerTurn !== undefined ? row(['of which the main thread (ms)', r.cpu.mainThreadMsPerTurn]) : ''}
${row(['PostgreSQL CPU (s)', r.cpu.postgresSeconds ?? 'unknown'])}${row(['PostgreSQL CPU per turn (ms)', r.cpu.postgresMsPerTurn ?? 'unknown'])}
</table>
<p class="muted">From the release of the runners to the end of the push drain. Daemon: ${
    r.cpu.daemonSource === 'threads' ? 'its main thread and push-encryption threads in this process' : "the remote daemon's process_cpu_seconds_total"
  }; PostgreSQL: the postmaster and its children, when the cluster runs on this host.</p>
<h2>Pubsub, push, LLM</h2>
<table>
${row(['pubsub notices', r.pubsub.publishes])}${row(['pubsub flushes', r.pubsub.flushes])}${row(['notices per flush', r.pubsub.messagesPerFlush])}${row(['stream frames per turn', r.frames.perTurn])}${row(['stream bytes per turn', Math.round(r.frames.bytesPerTurn)])}
${row(['pushes expected', r.push.expected])}${row(['pushes received (decrypted)', r.push.received])}${row(['pushes sent', r.push.sent])}${row(['pushes failed', r.push.failed])}
${row(['subscription cache hit rate', `${(r.push.cacheHitRate * 100).toFixed(1)}%`])}
${row(['LLM requests', r.llm.requests])}${row(['LLM completed', r.llm.completed])}${row(['LLM failed', r.llm.failed])}
</table>
${r.thresholds.length > 0 ? `<h2>Thresholds</h2><table><tr><th>threshold</th><th>measured</th><th>result</th></tr>${r.thresholds.map((t) => row([t.expression, t.value, t.passed ? '✓' : '✗ FAILED'])).join('')}</table>` : ''}
<h2>Summary line</h2>
<p><code>${esc(summaryLine(r))}</code></p>
</body></html>
`;
}
