import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import WebSocket from 'ws';

import type { StreamEvent } from '../../src/daemon/chat/events.js';

/** What a client that retries as a real one would saw: each answer ≥ 500 other than 503 is a bug. */
export interface RetryTally {
  unavailable: number;
  connectionErrors: number;
  serverErrors: Array<{ status: number; body: string }>;
}

export const newTally = (): RetryTally => ({ unavailable: 0, connectionErrors: 0, serverErrors: [] });

/**
 * A request retried on connection errors and 503 until it gets another answer; POSTs carry one Idempotency-Key for
 * all their attempts, so a retry of a request whose answer was lost cannot do the work twice.
 */
export async function retrying(tally: RetryTally, baseUrl: string, token: string, method: string, path: string, body?: unknown, deadlineMs = 60_000) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method === 'POST') headers['idempotency-key'] = randomUUID();
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (Date.now() > deadline) throw new Error(`${method} ${path}: no answer before the deadline`);
    let res: Response;
    try {
      res = await fetch(`${baseUrl}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
    } catch {
      tally.connectionErrors++;
      await sleep(100 + Math.random() * 200);
      continue;
    }
    const text = await res.text();
    if (res.status === 503) {
      tally.unavailable++;
      await sleep(100 + Math.random() * 200);
      continue;
    }
    if (res.status >= 500) tally.serverErrors.push({ status: res.status, body: text });
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
  }
}

/**
 * Follows a chat's stream as a client would: reconnects after a close with `after_id` = the newest message it holds.
 * `ids` are the message ids in the order received; a repeated or decreasing id is recorded in `disorder`.
 */
export function followStream(baseUrl: string, token: string, chatId: string) {
  const state = { ids: [] as number[], disorder: [] as number[], status: '' as string, reconnects: 0, stopped: false };
  let ws: WebSocket | undefined;
  const connect = () => {
    const last = state.ids.at(-1) ?? 0;
    ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/experimental/chats/${chatId}/stream?after_id=${last}`, { headers: { authorization: `Bearer ${token}` } });
    ws.on('message', (data) => {
      for (const e of JSON.parse(data.toString()) as StreamEvent[]) {
        if (e.type === 'status') state.status = e.status;
        if (e.type !== 'message') continue;
        if (e.message.id <= (state.ids.at(-1) ?? 0)) state.disorder.push(e.message.id);
        else state.ids.push(e.message.id);
      }
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      if (state.stopped) return;
      state.reconnects++;
      setTimeout(connect, 200).unref();
    });
  };
  connect();
  return {
    state,
    stop() {
      state.stopped = true;
      ws?.terminate();
    },
  };
}
