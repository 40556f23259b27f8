import { expect } from 'vitest';
import WebSocket from 'ws';

import type { StreamEvent } from '../../src/daemon/chat/events.js';

/** A small client of the chat API for tests. */
export function chatApi(baseUrl: string, token: string) {
  const call = async (method: string, path: string, body?: unknown) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
  };
  return {
    call,
    async createChat(message: string, extra: Record<string, unknown> = {}) {
      const res = await call('POST', '/api/experimental/chats', { message, ...extra });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      return res.body as { id: string; status: string; title: string };
    },
    send: (chatId: string, content: string) => call('POST', `/api/experimental/chats/${chatId}/messages`, { content }),
    interrupt: (chatId: string) => call('POST', `/api/experimental/chats/${chatId}/interrupt`),
    get: (chatId: string) => call('GET', `/api/experimental/chats/${chatId}`),
  };
}

export interface StreamClient {
  frames: StreamEvent[][];
  events(): StreamEvent[];
  statuses(): string[];
  /** Resolves when some event satisfies `pred` (polling the received events). */
  waitFor(pred: (e: StreamEvent, all: StreamEvent[]) => boolean, timeout?: number): Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
  ws: WebSocket;
}

/**
 * Opens `/stream` (from `at`: an `after_id`, or a `cursor` as the stream's events carry it) and records every frame;
 * rejects with the HTTP status when the upgrade is refused.
 */
export function openStream(baseUrl: string, token: string, chatId: string, at?: number | string): Promise<StreamClient> {
  const query = at === undefined ? '' : typeof at === 'number' ? `?after_id=${at}` : `?cursor=${encodeURIComponent(at)}`;
  const url = `${baseUrl.replace(/^http/, 'ws')}/api/experimental/chats/${chatId}/stream${query}`;
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } });
  const frames: StreamEvent[][] = [];
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as StreamEvent[]));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  const events = () => frames.flat();
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', reject);
    ws.on('open', () =>
      resolve({
        frames,
        events,
        statuses: () => events().flatMap((e) => (e.type === 'status' ? [e.status] : [])),
        waitFor: (pred, timeout = 15_000) =>
          expect
            .poll(
              () => {
                const all = events();
                return all.some((e) => pred(e, all));
              },
              { timeout, interval: 10 },
            )
            .toBe(true),
        closed,
        close: () => ws.close(),
        ws,
      }),
    );
  });
}
