import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The scaletest's model: an OpenAI-compatible `/v1/chat/completions` server on loopback. Replies are deterministic
 * (a function of the last user message and the token count), so the daemon's real `openai-compat` provider and its
 * whole streaming path run without a network or a model.
 */
export interface LlmMockOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Delay before the first token, in ms. Default 0. */
  latencyMs?: number;
  /** Tokens per reply. Default 8. */
  tokens?: number;
  /** Delay between tokens, in ms. 0 writes the whole reply at once (cheapest for the machine under test). */
  tokenDelayMs?: number;
  /** When set, requests must carry `Authorization: Bearer <apiKey>` (401 otherwise). */
  apiKey?: string;
  /** Where the counters live (see `statsFrom`): on a SharedArrayBuffer, another thread reads them as they change. */
  counters?: Int32Array;
}

export interface LlmMockStats {
  /** Completion requests accepted (streamed or not). */
  requests: number;
  /** Replies sent to the end. */
  completed: number;
  /** Requests refused (bad path, body, key) or abandoned by the client mid-reply. */
  failed: number;
  tokens: number;
}

/** The order of LlmMockStats' figures in a counters array. */
const counterNames = ['requests', 'completed', 'failed', 'tokens'] as const;
export const llmMockCounters = counterNames.length;

export function statsFrom(counters: Int32Array): LlmMockStats {
  return Object.fromEntries(counterNames.map((name, i) => [name, Atomics.load(counters, i)])) as unknown as LlmMockStats;
}

export interface LlmMock {
  /** Base URL to give the provider, ending in `/v1`. */
  readonly baseUrl: string;
  readonly model: string;
  stats(): LlmMockStats;
  close(): Promise<void>;
}

export const mockModel = 'coder-lite-mock';

const words = [
  'the', 'agent', 'read', 'your', 'request', 'and', 'wrote', 'a', 'short', 'answer', 'about', 'it', 'with', 'care',
  'checking', 'each', 'step', 'twice', 'before', 'replying', 'here', 'in', 'plain', 'words',
];

/** FNV-1a: a stable seed from the prompt, so the same prompt always gets the same reply. */
function seedOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The reply to `prompt` as `count` tokens: capitalised, space-separated, ending in a full stop. */
export function mockReply(prompt: string, count: number): string[] {
  const seed = seedOf(prompt);
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    let word = words[(seed + i * 7) % words.length]!;
    if (i === 0) word = `${word[0]!.toUpperCase()}${word.slice(1)}`;
    if (i === count - 1) word += '.';
    tokens.push(i === 0 ? word : ` ${word}`);
  }
  return tokens;
}

interface ChatRequest {
  model?: unknown;
  messages?: unknown;
  stream?: unknown;
}

/** The text of the last user message; content may be a string or OpenAI's array of parts. */
function lastUserText(messages: unknown[]): string {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i] as { role?: unknown; content?: unknown } | null;
    if (m?.role !== 'user') continue;
    if (typeof m.content === 'string') return m.content;
    if (Array.isArray(m.content)) return m.content.map((p: { text?: unknown }) => (typeof p?.text === 'string' ? p.text : '')).join('');
    return '';
  }
  return '';
}

function sendError(res: ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ error: { message, type: status === 401 ? 'authentication_error' : 'invalid_request_error' } });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startLlmMock(opts: LlmMockOptions = {}): Promise<LlmMock> {
  const latencyMs = opts.latencyMs ?? 0;
  const tokenCount = opts.tokens ?? 8;
  const tokenDelayMs = opts.tokenDelayMs ?? 0;
  const counters = opts.counters ?? new Int32Array(llmMockCounters);
  const count = (name: (typeof counterNames)[number], n = 1) => Atomics.add(counters, counterNames.indexOf(name), n);
  let nextId = 0;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || (path !== '/v1/chat/completions' && path !== '/chat/completions')) {
      count('failed');
      return sendError(res, 404, `no route ${req.method} ${path}`);
    }
    if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`) {
      count('failed');
      return sendError(res, 401, 'invalid API key');
    }
    let body: ChatRequest;
    try {
      body = JSON.parse(await readBody(req, 4 * 1024 * 1024)) as ChatRequest;
    } catch (err) {
      count('failed');
      return sendError(res, 400, `invalid request body: ${(err as Error).message}`);
    }
    if (!Array.isArray(body?.messages)) {
      count('failed');
      return sendError(res, 400, 'messages must be an array');
    }
    count('requests');
    const model = typeof body.model === 'string' && body.model !== '' ? body.model : mockModel;
    const tokens = mockReply(lastUserText(body.messages), tokenCount);
    const id = `chatcmpl-mock-${++nextId}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = { prompt_tokens: body.messages.length, completion_tokens: tokens.length, total_tokens: body.messages.length + tokens.length };

    const timers = new Set<NodeJS.Timeout>();
    let finished = false;
    res.on('close', () => {
      for (const t of timers) clearTimeout(t);
      if (!finished) count('failed');
    });
    const after = (ms: number, fn: () => void) => {
      if (ms <= 0) return fn();
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      timers.add(t);
    };
    const done = () => {
      finished = true;
      count('completed');
      count('tokens', tokens.length);
    };

    if (body.stream !== true) {
      after(latencyMs, () => {
        const reply = JSON.stringify({
          id,
          object: 'chat.completion',
          created,
          model,
          choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: 'stop' }],
          usage,
        });
        done();
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(reply) });
        res.end(reply);
      });
      return;
    }

    const chunk = (delta: object, finishReason: string | null, extra?: object) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra })}\n\n`;
    const tail = `${chunk({}, 'stop', { usage })}data: [DONE]\n\n`;
    after(latencyMs, () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      if (tokenDelayMs <= 0) {
        // One write for the whole reply: the client still parses one SSE event per token.
        let out = chunk({ role: 'assistant', content: '' }, null);
        for (const t of tokens) out += chunk({ content: t }, null);
        done();
        res.end(out + tail);
        return;
      }
      res.write(chunk({ role: 'assistant', content: '' }, null));
      let i = 0;
      const next = () => {
        res.write(chunk({ content: tokens[i++]! }, null));
        if (i < tokens.length) return after(tokenDelayMs, next);
        done();
        res.end(tail);
      };
      next();
    });
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      count('failed');
      if (!res.headersSent) sendError(res, 500, (err as Error).message);
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  let closing: Promise<void> | undefined;
  return {
    baseUrl: `http://${host}:${addr.port}/v1`,
    model: mockModel,
    stats: () => statsFrom(counters),
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
