import { readFile } from 'node:fs/promises';
import { PassThrough } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { createLogger } from '../../src/daemon/observability/logger.js';
import { chatApi } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';
import { metricValue } from '../helpers/metrics.js';

/** A logger whose JSON lines the test reads. */
function capturedLogger(level: 'debug' | 'info' = 'debug') {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>);
      buf = buf.slice(i + 1);
    }
  });
  return { logger: createLogger({ level, format: 'json', destination: stream }), lines };
}

describe('observability', () => {
  it("counts requests by route template, method and status under Coder's names, and logs each at debug", async () => {
    const { logger, lines } = capturedLogger();
    const d = await startTestDaemon({ logger });
    const { token } = await createTestUser(d);
    const api = chatApi(d.url, token);
    const chat = await api.createChat('count me');
    await api.call('GET', `/api/v2/chats/${chat.id}`);
    await api.call('GET', `/api/v2/chats/${chat.id}`);
    await api.get(chat.id);
    await api.call('GET', '/api/v2/chats/not-a-uuid');
    await fetch(`${d.url}/no/such/route`);

    const processed = (labels: Record<string, string>) => metricValue(d.registry, 'coderd_api_requests_processed_total', labels);
    expect(await processed({ path: '/api/v2/chats/:chat', method: 'GET', code: '200' })).toBe(2);
    expect(await processed({ path: '/api/experimental/chats/:chat', method: 'GET', code: '200' })).toBe(1);
    expect(await processed({ path: '/api/experimental/chats', method: 'POST', code: '201' })).toBe(1);
    expect(await processed({ path: '/api/v2/chats/:chat', method: 'GET', code: '400' })).toBe(1);
    // Unknown URLs share one label value, so a scanner cannot grow the series without bound.
    expect(await processed({ path: 'unmatched', method: 'GET', code: '404' })).toBe(1);
    expect(await metricValue(d.registry, 'coderd_api_request_latencies_seconds', { path: '/api/v2/chats/:chat', method: 'GET' })).toBe(3);
    expect(await metricValue(d.registry, 'coderd_api_concurrent_requests')).toBe(0);
    expect(await metricValue(d.registry, 'coderlite_build_info', { version: d.app.swagger().info.version })).toBe(1);
    await expect.poll(() => lines.filter((l) => l.msg === 'request' && l.path === '/api/v2/chats/:chat').length, { timeout: 10_000 }).toBe(3);
    expect(lines.find((l) => l.msg === 'request' && l.status === 400)).toMatchObject({ level: 20, method: 'GET' });
  });

  it('times model calls to the first token and counts failed ones by kind; a failed turn is one warn line with its chat', async () => {
    const { logger, lines } = capturedLogger('info');
    const d = await startTestDaemon({ logger, chat: { fakeTokens: 3, fakeTokenDelayMs: 1 } });
    const { token } = await createTestUser(d);
    const api = chatApi(d.url, token);
    const ok = await api.createChat('fine');
    await expect.poll(async () => (await api.get(ok.id)).body.status, { timeout: 10_000 }).toBe('waiting');
    expect(await metricValue(d.registry, 'coderlite_llm_time_to_first_token_seconds', { provider: 'fake', model: 'fake-model' })).toBe(1);
    expect(await metricValue(d.registry, 'coderlite_llm_requests_total', { provider: 'fake' })).toBe(1);

    const bad = await api.createChat('please [fake-fail] now');
    await expect.poll(async () => (await api.get(bad.id)).body.status, { timeout: 10_000 }).toBe('error');
    // Whatever kind the provider names; only one failed.
    expect(await metricValue(d.registry, 'coderlite_llm_errors_total', { provider: 'fake' })).toBe(1);
    await expect.poll(() => lines.filter((l) => l.msg === 'chat turn failed'), { timeout: 10_000 }).toHaveLength(1);
    expect(lines.find((l) => l.msg === 'chat turn failed')).toMatchObject({ level: 40, chatId: bad.id });
  });

  it('serves /metrics on its own listener with --prometheus-address, and not on the public port', async () => {
    const d = await startTestDaemon({ prometheusAddress: '127.0.0.1:0' });
    expect(d.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const res = await fetch(d.metricsUrl!);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('coderd_api_requests_processed_total');
    expect((await fetch(`${d.url}/metrics`)).status).toBe(404);
    expect((await fetch(d.metricsUrl!.replace('/metrics', '/other'))).status).toBe(404);
  });

  it("the Grafana dashboard in docs/ only charts metrics the daemon exports", async () => {
    const d = await startTestDaemon();
    const dashboard = await readFile(new URL('../../docs/grafana-dashboard.json', import.meta.url), 'utf8');
    const charted = new Set([...dashboard.matchAll(/\b(coderd?_[a-z_]+|coderlite_[a-z_]+)\b/g)].map((m) => m[1]!.replace(/_bucket$/, '')));
    const exported = new Set((await d.registry.getMetricsAsJSON()).map((m) => m.name));
    expect(charted.size).toBeGreaterThan(25);
    expect([...charted].filter((name) => !exported.has(name))).toEqual([]);
  });
});
