import { afterAll, describe, expect, it } from 'vitest';

import { mockReply, startLlmMock, type LlmMock } from '../../src/scaletest/llmMock.js';

/** Reads an SSE body into its `data:` payloads. */
async function sseData(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((block) => block.startsWith('data: '))
    .map((block) => block.slice('data: '.length));
}

function completion(mock: LlmMock, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${mock.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const mocks: LlmMock[] = [];
async function mock(opts: Parameters<typeof startLlmMock>[0] = {}) {
  const m = await startLlmMock(opts);
  mocks.push(m);
  return m;
}
afterAll(() => Promise.all(mocks.map((m) => m.close())));

describe('mockReply', () => {
  it('is deterministic per prompt, has the asked token count and ends a sentence', () => {
    const a = mockReply('hello', 5);
    expect(a).toHaveLength(5);
    expect(mockReply('hello', 5)).toEqual(a);
    expect(mockReply('something else entirely', 5)).not.toEqual(a);
    expect(a[0]![0]).toMatch(/[A-Z]/);
    expect(a.join('')).toMatch(/^\S.*\.$/);
    expect(a.slice(1).every((t) => t.startsWith(' '))).toBe(true);
  });
});

describe('LLM mock server', () => {
  it('streams an OpenAI-style SSE reply: role chunk, one chunk per token, finish with usage, [DONE]', async () => {
    const m = await mock({ tokens: 4 });
    const res = await completion(m, { model: 'm1', stream: true, messages: [{ role: 'system', content: 'x' }, { role: 'user', content: 'hi there' }] });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const data = await sseData(res);
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d) as { model: string; choices: Array<{ delta: { role?: string; content?: string }; finish_reason: string | null }>; usage?: { completion_tokens: number } });
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.every((c) => c.model === 'm1')).toBe(true);
    const content = chunks.map((c) => c.choices[0]!.delta.content ?? '');
    expect(content.filter((c) => c !== '')).toEqual(mockReply('hi there', 4));
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.at(-1)!.usage!.completion_tokens).toBe(4);
    expect(m.stats()).toEqual({ requests: 1, completed: 1, failed: 0, tokens: 4 });
  });

  it('paces tokens when asked and reads array content parts', async () => {
    const m = await mock({ tokens: 3, latencyMs: 5, tokenDelayMs: 2 });
    const res = await completion(m, { stream: true, messages: [{ role: 'user', content: [{ type: 'text', text: 'parts' }] }] });
    const data = await sseData(res);
    const text = data
      .slice(0, -1)
      .map((d) => (JSON.parse(d) as { choices: Array<{ delta: { content?: string } }> }).choices[0]!.delta.content ?? '')
      .join('');
    expect(text).toBe(mockReply('parts', 3).join(''));
  });

  it('answers non-streaming requests with one completion object', async () => {
    const m = await mock({ tokens: 6 });
    const res = await completion(m, { messages: [{ role: 'user', content: 'sum' }] });
    const body = (await res.json()) as { object: string; choices: Array<{ message: { content: string } }> };
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0]!.message.content).toBe(mockReply('sum', 6).join(''));
  });

  it('refuses bad paths, bodies and keys with OpenAI-style JSON errors', async () => {
    const m = await mock({ apiKey: 'k1' });
    const auth = { authorization: 'Bearer k1' };
    const notFound = await fetch(`${m.baseUrl}/models`);
    expect(notFound.status).toBe(404);
    const badJson = await completion(m, '{nope', auth);
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as { error: { message: string } }).error.message).toMatch(/invalid request body/);
    expect((await completion(m, { messages: 'x' }, auth)).status).toBe(400);
    const noKey = await completion(m, { messages: [] });
    expect(noKey.status).toBe(401);
    expect((await completion(m, { messages: [] }, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await completion(m, { messages: [{ role: 'user', content: 'a' }] }, auth)).status).toBe(200);
    expect(m.stats()).toMatchObject({ requests: 1, completed: 1, failed: 5 });
  });

  it('counts a reply the client abandons as failed', async () => {
    const m = await mock({ latencyMs: 10_000 });
    const ac = new AbortController();
    const pending = fetch(`${m.baseUrl}/chat/completions`, { method: 'POST', body: JSON.stringify({ stream: true, messages: [] }), signal: ac.signal }).catch(
      () => undefined,
    );
    await expect.poll(() => m.stats().requests).toBe(1);
    ac.abort();
    await pending;
    await expect.poll(() => m.stats().failed).toBe(1);
    expect(m.stats().completed).toBe(0);
  });
});
