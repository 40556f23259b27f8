import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { extname } from 'node:path';

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';

import { ErrAssetNotFound } from '../errors.js';
import { ErrorBody } from '../schemas.js';

/** Copied next to the compiled routes by scripts/copy-assets.js, so the same path works from src and dist. */
const staticDir = new URL('../static/', import.meta.url);

/** Everything the console loads comes from this origin: no CDN, no inline script, nothing framed. */
export const consoleCsp = "default-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'";

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
};

interface StaticFile {
  body: Buffer;
  type: string;
  etag: string;
  cacheControl: string;
}

const noCache = 'no-cache';
// Asset URLs carry the hash of their content, so a browser may keep them for good.
const immutable = 'public, max-age=31536000, immutable';
// The icon's URL is fixed (push payloads name it), so it is only kept for a day.
const oneDay = 'public, max-age=86400';

function file(body: Buffer, name: string, cacheControl: string): StaticFile {
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
  return { body, type: contentTypes[extname(name)] ?? 'application/octet-stream', etag, cacheControl };
}

/** Reads the console once at start-up: a few small files, held in memory. */
export function loadConsole(dir: URL = staticDir) {
  const read = (name: string) => readFileSync(new URL(name, dir));
  const special = new Set(['index.html', 'sw.js', 'icon.png']);
  const assetNames = readdirSync(dir)
    .filter((name) => !special.has(name) && extname(name) in contentTypes)
    .sort();
  const bodies = new Map(assetNames.map((name) => [name, read(name)] as const));
  const hash = createHash('sha256');
  for (const [name, body] of bodies) hash.update(name).update('\0').update(body);
  const assetBase = `/assets/${hash.digest('hex').slice(0, 12)}`;
  return {
    assetBase,
    assets: new Map([...bodies].map(([name, body]) => [name, file(body, name, immutable)] as const)),
    index: file(Buffer.from(read('index.html').toString('utf8').replaceAll('%ASSETS%', assetBase)), 'index.html', noCache),
    serviceWorker: file(read('sw.js'), 'sw.js', noCache),
    icon: file(read('icon.png'), 'icon.png', oneDay),
  };
}

function send(req: FastifyRequest, reply: FastifyReply, f: StaticFile): void {
  reply
    .header('content-security-policy', consoleCsp)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', f.cacheControl)
    .header('etag', f.etag);
  if (req.headers['if-none-match'] === f.etag) reply.status(304).send();
  else reply.type(f.type).send(f.body);
}

/** Files go out as the bytes read at start (a Buffer is never serialized); the schema documents them. */
const fileResponse = { response: { 200: Type.String({ description: 'the file' }), 304: Type.Null(), 404: ErrorBody } };
const AssetParams = Type.Object({ hash: Type.String({ maxLength: 64 }), name: Type.String({ maxLength: 200 }) });

/** The web console: its page (also for `/chats/:id`, which the page routes itself), service worker, assets and icon. */
export function consoleRoutes(files = loadConsole()): FastifyPluginAsync {
  return async (plain) => {
    const app = plain.withTypeProvider<TypeBoxTypeProvider>();
    const page = (req: FastifyRequest, reply: FastifyReply) => send(req, reply, files.index);
    app.get('/', { schema: fileResponse }, page);
    app.get('/chats/:chat', { schema: fileResponse }, page);
    app.get('/sw.js', { schema: fileResponse }, (req, reply) => {
      // Served from the root so it may control every page of the console.
      reply.header('service-worker-allowed', '/');
      send(req, reply, files.serviceWorker);
    });
    app.get('/icon.png', { schema: fileResponse }, (req, reply) => send(req, reply, files.icon));
    app.get('/assets/:hash/:name', { schema: { params: AssetParams, ...fileResponse } }, (req, reply) => {
      const { hash, name } = req.params;
      const asset = `/assets/${hash}` === files.assetBase ? files.assets.get(name) : undefined;
      // An old page asking for assets of a previous version gets a 404, never today's file under yesterday's URL.
      if (!asset) throw new ErrAssetNotFound();
      send(req, reply, asset);
    });
  };
}
