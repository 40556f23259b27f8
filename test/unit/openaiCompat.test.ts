import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';

import { openaiCompatProvider } from '../../src/daemon/chat/providers/openaiCompat.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

/** An SSE upstream that answers each completion with `pieces` and [DONE]; `end` says whether it then ends the body. */
async function upstream(pieces: string[], end: boolean): Promise<{ baseUrl: string; sockets: () => number; open: ServerResponse[] }> {
  let sockets = 0;
  const open: ServerResponse[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const p of pieces) res.write(`data: ${JSON.stringify({ choices: [{ delta: { content: p } }] })}\n\n`);
      res.write('data: [DONE]\n\n');
      if (end) res.end();
      else open.push(res);
    });
  });
  server.on('connection', () => sockets++);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, sockets: () => sockets, open };
}

const request = (baseUrl: string, parts: string[] = []) => ({
  model: { providerId: 'p', providerType: 'openai-compat' as const, modelConfigId: 'm', model: 'gpt', baseUrl },
  messages: [{ role: 'user' as const, content: 'hi' }],
  signal: new AbortController().signal,
  onPart: (t: string) => parts.push(t),
});

describe('openaiCompatProvider', () => {
  it('keeps the connection for the next turn once a reply is complete', async () => {
    const agent = new Agent();
    const up = await upstream(['Hel', 'lo'], true);
    const origin = new URL(up.baseUrl).origin;
    const provider = openaiCompatProvider({ timeoutMs: 5000, dispatcher: agent });
    const parts: string[] = [];
    for (let turn = 1; turn <= 3; turn++) {
      expect(await provider.complete(request(up.baseUrl, parts))).toBe('Hello');
      // Back in the pool, connected and free, rather than destroyed with the body.
      await expect.poll(() => {
        const stats = agent.stats[origin];
        return stats && 'free' in stats ? stats.free : undefined;
      }).toBe(1);
    }
    expect(parts).toEqual(['Hel', 'lo', 'Hel', 'lo', 'Hel', 'lo']);
    expect(up.sockets()).toBe(1);
    await agent.close();
  });

  it('answers at [DONE] when the upstream keeps the response open', async () => {
    const up = await upstream(['still ', 'open'], false);
    const provider = openaiCompatProvider({ timeoutMs: 60_000 });
    expect(await provider.complete(request(up.baseUrl))).toBe('still open');
    expect(up.open).toHaveLength(1);
    // A second turn does not queue behind the one whose response is still open.
    expect(await provider.complete(request(up.baseUrl))).toBe('still open');
    expect(up.open).toHaveLength(2);
  });
});
