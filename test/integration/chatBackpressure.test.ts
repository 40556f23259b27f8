import type { Socket } from 'node:net';

import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

import type { StreamEvent } from '../../src/daemon/chat/events.js';
import { insertChatMessage } from '../../src/daemon/store/messages.js';
import { chatApi, openStream } from '../helpers/chatClient.js';
import { createTestUser, startTestDaemon } from '../helpers/daemon.js';

const pause = (ws: WebSocket) => (ws as unknown as { _socket: Socket })._socket.pause();

async function metric(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

/** A reading client that keeps counts instead of every frame, so a flood does not grow the test itself. */
function countingStream(baseUrl: string, token: string, chatId: string) {
  const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/api/experimental/chats/${chatId}/stream`, { headers: { authorization: `Bearer ${token}` } });
  const state = { ids: [] as number[], bytes: 0, partChars: 0, lastStatus: '', lastMessage: undefined as undefined | { id: number; content: string }, closedWith: undefined as number | undefined, ws };
  ws.on('close', (code) => (state.closedWith = code));
  ws.on('message', (data: Buffer) => {
    state.bytes += data.length;
    for (const e of JSON.parse(data.toString()) as StreamEvent[]) {
      if (e.type === 'message') {
        state.ids.push(e.message.id);
        state.lastMessage = e.message;
      } else if (e.type === 'message_part') state.partChars += e.text.length;
      else if (e.type === 'status') state.lastStatus = e.status;
    }
  });
  return state;
}

describe('a client that stops reading', () => {
  it('is cut with 1013 while a reading client on another chat keeps receiving', async () => {
    // Flooded turns: many tokens, no delay; more than the kernel's socket buffers take, so the bound is reached.
    const d = await startTestDaemon({ chat: { fakeTokens: 400_000, fakeTokenDelayMs: 0, streamBacklogBytes: 64 * 1024 } });
    const { token } = await createTestUser(d);
    const api = chatApi(d.url, token);
    const b = await api.createChat('reader');
    const reader = countingStream(d.url, token, b.id);
    await expect.poll(() => reader.ids.length === 2 && reader.lastStatus === 'waiting', { timeout: 60_000 }).toBe(true);

    const a = await api.createChat('flood');
    const paused = await openStream(d.url, token, a.id);
    pause(paused.ws);
    // While A floods its paused client, B runs a flooded turn of its own; B's reader gets all of it, in order.
    const charsBefore = reader.partChars;
    expect((await api.send(b.id, 'and again')).status).toBe(201);
    await expect.poll(() => metric(d.url, 'coderlite_http_stream_clients_cut_total'), { timeout: 60_000 }).toBe(1);
    await expect.poll(() => reader.ids.length === 4 && reader.lastStatus === 'waiting', { timeout: 120_000 }).toBe(true);
    expect(reader.partChars - charsBefore).toBe(reader.lastMessage!.content.length);
    expect(reader.closedWith).toBeUndefined();
    // The paused client's socket is gone on the server (terminated after the close grace); the reader's stays.
    await expect.poll(() => d.app.websocketServer.clients.size, { timeout: 10_000 }).toBe(1);
    reader.ws.close();
  }, 180_000);
});

describe('a huge history', () => {
  it('reaches a reading client complete and in order, and the stream stays open after it', async () => {
    const d = await startTestDaemon({ chat: { fakeTokens: 2, fakeTokenDelayMs: 0 } });
    const { token } = await createTestUser(d);
    const api = chatApi(d.url, token);
    const chat = await api.createChat('history');
    const s0 = await openStream(d.url, token, chat.id);
    await s0.waitFor((e) => e.type === 'status' && e.status === 'waiting');
    s0.close();
    // ~23 MiB in messages of mixed sizes: many small ones, then large ones, so pages adapt both ways.
    const big = 'x'.repeat(96 * 1024);
    for (let i = 0; i < 1500; i++) await insertChatMessage(d.db, chat.id, 'user', `small ${i}`);
    for (let i = 0; i < 250; i++) await insertChatMessage(d.db, chat.id, 'assistant', `${i} ${big}`);
    const total = 2 + 1500 + 250;

    const client = countingStream(d.url, token, chat.id);
    const { ids } = client;
    await expect.poll(() => ids.length, { timeout: 60_000 }).toBe(total);
    expect(client.bytes).toBeGreaterThan(250 * big.length);
    expect(ids.every((id, i) => i === 0 || id > ids[i - 1]!)).toBe(true);
    expect(new Set(ids).size).toBe(total);
    // Still open and live: a turn after the snapshot arrives too.
    expect((await api.send(chat.id, 'after all that')).status).toBe(201);
    await expect.poll(() => ids.length, { timeout: 30_000 }).toBe(total + 2);
    expect(client.closedWith).toBeUndefined();
    client.ws.close();
  }, 180_000);
});
