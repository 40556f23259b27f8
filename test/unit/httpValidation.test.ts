import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { Type } from 'typebox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildApp } from '../../src/daemon/http/app.js';
import { ErrQueueFull } from '../../src/daemon/http/errors.js';
import { createHttpMetrics } from '../../src/daemon/http/metrics.js';
import { IdempotencyHeaders } from '../../src/daemon/http/schemas.js';
import { maxJsonDepth, textProblem, Uuid, valueProblem } from '../../src/daemon/http/validation.js';
import { silentLogger } from '../../src/daemon/observability/logger.js';
import { DatabaseUnavailableError } from '../../src/daemon/postgres/errors.js';

const id = '0f8fad5b-d9cb-469f-a165-70867728950e';
let app: FastifyInstance;

beforeAll(async () => {
  app = await buildApp({
    logger: silentLogger(),
    metrics: createHttpMetrics(new Registry()),
    limits: { bodyLimit: 1024 },
    routes: [
      async (plain) => {
        const r = plain.withTypeProvider<TypeBoxTypeProvider>();
        r.get(
          '/q/:id',
          {
            schema: {
              params: Type.Object({ id: Uuid() }),
              querystring: Type.Object(
                { n: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 7 }), s: Type.Optional(Type.String()) },
                { additionalProperties: false },
              ),
            },
          },
          async (req) => ({ id: req.params.id, n: req.query.n, s: req.query.s ?? null }),
        );
        r.post('/b', { schema: { headers: IdempotencyHeaders, body: Type.Object({ text: Type.String() }, { additionalProperties: true }) } }, async (req) => ({ ok: req.body.text.length }));
        r.get('/db-down', async () => {
          throw new DatabaseUnavailableError('the database is unavailable (test)', { cause: new Error('ECONNREFUSED') });
        });
        r.get('/full', async () => {
          throw new ErrQueueFull({ detail: 'twenty already' });
        });
        r.get('/bug', async () => {
          throw new Error('a bug');
        });
      },
    ],
  });
});
afterAll(() => app.close());

const get = (url: string) => app.inject({ method: 'GET', url });
const post = (payload: string | Buffer, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/b', payload, headers: { 'content-type': 'application/json', ...headers } });

describe('canonical UUIDs only', () => {
  it.each([id, id.toUpperCase()])('accepts %s', async (u) => {
    expect((await get(`/q/${u}`)).statusCode).toBe(200);
  });
  it.each([`urn:uuid:${id}`, `{${id}}`, id.replaceAll('-', ''), `${id}0`, id.slice(1), ` ${id}`, `${id.slice(0, 35)}g`, 'nope'])('refuses %s', async (u) => {
    const res = await get(`/q/${encodeURIComponent(u)}`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ message: 'invalid request' });
  });
});

describe('integers: decimal, finite, in range', () => {
  it.each([
    ['0', 0],
    ['42', 42],
    [String(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
  ])('accepts %s', async (n, want) => {
    const res = await get(`/q/${id}?n=${n}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ n: want });
  });
  it('fills the default', async () => {
    expect((await get(`/q/${id}`)).json()).toMatchObject({ n: 7 });
  });
  it.each(['Infinity', '-Infinity', '1e309', 'NaN', '1.5', '0x10', '1e3', '', '%205', '05', '-1', String(Number.MAX_SAFE_INTEGER + 2), '99999999999999999999', 'n&n=1'])(
    'refuses %s',
    async (n) => {
      const res = await get(`/q/${id}?n=${n}`);
      expect(res.statusCode).toBe(400);
    },
  );
  it('refuses a repeated parameter and an unknown one', async () => {
    expect((await get(`/q/${id}?n=1&n=2`)).statusCode).toBe(400);
    expect((await get(`/q/${id}?m=1`)).statusCode).toBe(400);
  });
});

describe('text: UTF-8 without NUL in every string', () => {
  it('finds NUL and lone surrogates, in values and keys, at any depth', () => {
    expect(textProblem('héllo 😀')).toBeUndefined();
    expect(textProblem('a\0b')).toMatch(/NUL/);
    expect(textProblem('a\ud800')).toMatch(/surrogate/);
    expect(textProblem('\udc00')).toMatch(/surrogate/);
    expect(valueProblem({ a: [{ b: 'x\0' }] })).toMatch(/^\/a\/0\/b contains a NUL/);
    expect(valueProblem({ 'k\0': 1 })).toMatch(/key/);
    let deep: unknown = 'x';
    for (let i = 0; i < maxJsonDepth + 1; i++) deep = [deep];
    expect(valueProblem(deep)).toMatch(/deeper/);
  });

  it('accepts valid UTF-8', async () => {
    const res = await post(JSON.stringify({ text: 'héllo 😀 \\u00e9' }));
    expect(res.statusCode).toBe(200);
  });
  it.each([
    ['an escaped NUL', '{"text":"a\\u0000b"}'],
    ['an escaped lone surrogate', '{"text":"a\\ud800b"}'],
    ['a NUL in a key', '{"text":"a","x\\u0000":1}'],
    ['a NUL deep down', '{"text":"a","x":[[{"y":"\\u0000"}]]}'],
    ['nesting too deep', `{"text":"a","x":${'['.repeat(40)}${']'.repeat(40)}}`],
  ])('refuses %s in the body', async (_what, body) => {
    const res = await post(body);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ message: 'invalid text' });
  });
  it('refuses bytes that are not UTF-8', async () => {
    const res = await post(Buffer.concat([Buffer.from('{"text":"a'), Buffer.from([0xff, 0xfe]), Buffer.from('"}')]));
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ message: 'invalid text', detail: 'the body is not valid UTF-8' });
  });
  it('refuses NUL in the query string', async () => {
    const res = await get(`/q/${id}?s=a%00b`);
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ message: 'invalid text' });
  });
});

describe('bodies and headers', () => {
  it('answers malformed JSON, prototype keys, other content types and a body past the limit with 4xx', async () => {
    expect((await post('{"text": ')).statusCode).toBe(400);
    expect((await post('{"text":"a","__proto__":{"x":1}}')).statusCode).toBe(400);
    expect((await post('')).statusCode).toBe(400);
    expect((await app.inject({ method: 'POST', url: '/b', payload: 'text=a', headers: { 'content-type': 'application/x-www-form-urlencoded' } })).statusCode).toBe(415);
    expect((await post(JSON.stringify({ text: 'x'.repeat(2000) }))).statusCode).toBe(413);
  });
  it('takes an Idempotency-Key of printable ASCII without spaces, 1–255 characters', async () => {
    const body = JSON.stringify({ text: 'a' });
    expect((await post(body, { 'idempotency-key': 'k-1_2~' })).statusCode).toBe(200);
    expect((await post(body, { 'idempotency-key': 'a b' })).statusCode).toBe(400);
    expect((await post(body, { 'idempotency-key': 'k'.repeat(256) })).statusCode).toBe(400);
    expect((await post(body, { 'idempotency-key': 'é' })).statusCode).toBe(400);
  });
});

describe('the one error handler', () => {
  it('answers an unavailable database with 503 and Retry-After, never 500', async () => {
    const res = await get('/db-down');
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    expect(res.json()).toEqual({ message: 'the database is unavailable; retry shortly' });
  });
  it('answers a defined error with its status, message and detail', async () => {
    const res = await get('/full');
    expect(res.statusCode).toBe(409);
    expect(res.json()).toEqual({ message: 'the chat queue is full', detail: 'twenty already' });
  });
  it('keeps 500 for bugs, without their message', async () => {
    const res = await get('/bug');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ message: 'internal server error' });
  });
});
