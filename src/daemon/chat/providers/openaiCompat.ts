import { Agent, request, type Dispatcher } from 'undici';

import { kindOfStatus, ProviderError, type CompletionRequest, type ModelProvider } from './provider.js';

interface ChunkJson {
  choices?: Array<{ delta?: { content?: string | null } }>;
  error?: { message?: string };
}

/**
 * Streams `POST {baseUrl}/chat/completions` (OpenAI's SSE format) from any compatible server. Every failure —
 * refused connection, a stall past the timeout, non-2xx, malformed stream — becomes a ProviderError with a readable
 * message. undici's `request` rather than `fetch`: a turn is one call, and fetch's web streams and extra abort
 * signals cost a measurable share of a busy daemon's event loop. Its own keep-alive pool, not the process-wide
 * dispatcher: that one is whichever undici (Node's bundled one or ours) happened to install it first.
 */
export function openaiCompatProvider(opts: { timeoutMs: number; dispatcher?: Dispatcher }): ModelProvider {
  const dispatcher = opts.dispatcher ?? new Agent({ keepAliveTimeout: 60_000 });
  return {
    async complete({ model, messages, signal, onPart }: CompletionRequest): Promise<string> {
      if (!model.baseUrl) throw new ProviderError('config', `provider ${model.providerId} has no base URL`);
      const url = `${model.baseUrl.replace(/\/+$/, '')}/chat/completions`;
      let res: Dispatcher.ResponseData;
      try {
        res = await request(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'text/event-stream',
            ...(model.apiKey ? { authorization: `Bearer ${model.apiKey}` } : {}),
          },
          body: JSON.stringify({ model: model.model, messages, stream: true }),
          signal,
          dispatcher,
          // A stall, not the whole reply: long answers stream for as long as tokens keep coming.
          headersTimeout: opts.timeoutMs,
          bodyTimeout: opts.timeoutMs,
        });
      } catch (err) {
        throw providerFailure(err, signal, url);
      }
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const body = await res.body.text().catch(() => '');
        throw new ProviderError(kindOfStatus(res.statusCode), `${url} answered ${res.statusCode}: ${body.slice(0, 500).trim() || 'no body'}`, {
          status: res.statusCode,
          retryAfterMs: retryAfterMs(res.headers['retry-after']),
        });
      }
      let text = '';
      let buffered = '';
      try {
        res.body.setEncoding('utf8');
        // Not destroyed on [DONE]: destroying a body builds an abort error and gives up the connection.
        for await (const chunk of res.body.iterator({ destroyOnReturn: false }) as AsyncIterable<string>) {
          buffered += chunk;
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line.startsWith('data:')) continue;
            const data = line.slice(5).trim();
            if (data === '[DONE]') {
              // The answer is complete: the rest (normally only the end, in the same packet) is read in the
              // background, so the connection goes back to the pool and no turn waits on a server that keeps the
              // response open (its body timeout ends that).
              void res.body.dump().catch(() => undefined);
              return text;
            }
            let json: ChunkJson;
            try {
              json = JSON.parse(data) as ChunkJson;
            } catch {
              throw new ProviderError('generic', `${url} sent a malformed stream event`);
            }
            if (json.error) throw new ProviderError('generic', `${url} reported: ${json.error.message ?? 'unknown error'}`);
            const piece = json.choices?.[0]?.delta?.content;
            if (piece) {
              text += piece;
              onPart(piece);
            }
          }
        }
      } catch (err) {
        res.body.destroy();
        if (err instanceof ProviderError) throw err;
        throw providerFailure(err, signal, url);
      }
      throw new ProviderError('overloaded', `${url} ended the stream without [DONE]`);
    },
  };
}

function providerFailure(err: unknown, signal: AbortSignal, url: string): Error {
  // The turn's own abort (interrupt, shutdown) is not the provider's failure.
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : new Error('aborted', { cause: err });
  const code = (err as { code?: string }).code ?? (err as { cause?: { code?: string } }).cause?.code;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return new ProviderError('timeout', `${url} stopped answering (timeout)`, { cause: err });
  // A refused or reset connection is a provider that is down or restarting: worth a retry.
  return new ProviderError('overloaded', `cannot reach ${url}: ${code ?? (err as Error).message}`, { cause: err });
}

/** Retry-After in seconds or as an HTTP date; undefined when absent or unreadable. */
function retryAfterMs(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
