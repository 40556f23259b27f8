import { ProviderError, type CompletionRequest, type ModelProvider } from './provider.js';

interface ChunkJson {
  choices?: Array<{ delta?: { content?: string | null } }>;
  error?: { message?: string };
}

/**
 * Streams `POST {baseUrl}/chat/completions` (OpenAI's SSE format) from any compatible server. Every failure —
 * refused connection, timeout, non-2xx, malformed stream — becomes a ProviderError with a readable message.
 */
export function openaiCompatProvider(opts: { timeoutMs: number }): ModelProvider {
  return {
    async complete({ model, messages, signal, onPart }: CompletionRequest): Promise<string> {
      if (!model.baseUrl) throw new ProviderError(`provider ${model.providerId} has no base URL`);
      const url = `${model.baseUrl.replace(/\/+$/, '')}/chat/completions`;
      const timeout = AbortSignal.timeout(opts.timeoutMs);
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'text/event-stream',
            ...(model.apiKey ? { authorization: `Bearer ${model.apiKey}` } : {}),
          },
          body: JSON.stringify({ model: model.model, messages, stream: true }),
          signal: AbortSignal.any([signal, timeout]),
        });
      } catch (err) {
        throw providerFailure(err, signal, timeout, url);
      }
      if (!res.ok) {
        const body = await res.text().catch(() => '');
        throw new ProviderError(`${url} answered ${res.status}: ${body.slice(0, 200).trim() || res.statusText}`);
      }
      if (!res.body) throw new ProviderError(`${url} answered without a body`);
      let text = '';
      let buffered = '';
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body) {
          buffered += decoder.decode(chunk as Uint8Array, { stream: true });
          let nl: number;
          while ((nl = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line.startsWith('data:')) continue;
            const data = line.slice(5).trim();
            if (data === '[DONE]') return text;
            let json: ChunkJson;
            try {
              json = JSON.parse(data) as ChunkJson;
            } catch {
              throw new ProviderError(`${url} sent a malformed stream event`);
            }
            if (json.error) throw new ProviderError(`${url} reported: ${json.error.message ?? 'unknown error'}`);
            const piece = json.choices?.[0]?.delta?.content;
            if (piece) {
              text += piece;
              onPart(piece);
            }
          }
        }
      } catch (err) {
        if (err instanceof ProviderError) throw err;
        throw providerFailure(err, signal, timeout, url);
      }
      throw new ProviderError(`${url} ended the stream without [DONE]`);
    },
  };
}

function providerFailure(err: unknown, signal: AbortSignal, timeout: AbortSignal, url: string): Error {
  // The turn's own abort (interrupt, shutdown) is not the provider's failure.
  if (signal.aborted) return signal.reason instanceof Error ? signal.reason : new Error('aborted', { cause: err });
  if (timeout.aborted) return new ProviderError(`${url} did not finish within the timeout`, { cause: err });
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return new ProviderError(`cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`, { cause: err });
}
