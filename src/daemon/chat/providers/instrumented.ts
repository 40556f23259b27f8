import { Counter, Histogram, type Registry } from 'prom-client';

import { ProviderError, type ModelProvider } from './provider.js';

export interface LLMMetrics {
  requests: Counter<'provider' | 'model'>;
  firstToken: Histogram<'provider' | 'model'>;
  duration: Histogram<'provider' | 'model'>;
  errors: Counter<'provider' | 'kind'>;
}

export function createLLMMetrics(registry: Registry): LLMMetrics {
  const registers = [registry];
  const buckets = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
  return {
    requests: new Counter({ name: 'coderlite_llm_requests_total', help: 'Model calls started.', labelNames: ['provider', 'model'], registers }),
    firstToken: new Histogram({
      name: 'coderlite_llm_time_to_first_token_seconds',
      help: 'From the start of a model call to its first streamed part.',
      labelNames: ['provider', 'model'],
      buckets,
      registers,
    }),
    duration: new Histogram({ name: 'coderlite_llm_request_duration_seconds', help: 'Model calls that completed, start to end.', labelNames: ['provider', 'model'], buckets, registers }),
    errors: new Counter({
      name: 'coderlite_llm_errors_total',
      help: "Failed model calls by kind: the provider error's kind (e.g. auth, rate_limit, timeout, overloaded, config), canceled (interrupted or shut down), other (a bug).",
      labelNames: ['provider', 'kind'],
      registers,
    }),
  };
}

/** A provider error's own kind where it names one (auth, rate_limit, timeout, …), else `provider`. */
function providerErrorKind(err: ProviderError): string {
  const { kind } = err as ProviderError & { kind?: unknown };
  return typeof kind === 'string' ? kind : 'provider';
}

/** The same provider, timed: latency to the first part, duration, and failures by kind. */
export function instrumentProvider(provider: ModelProvider, type: string, metrics: LLMMetrics): ModelProvider {
  return {
    async complete(req) {
      const labels = { provider: type, model: req.model.model };
      const started = performance.now();
      let first = true;
      metrics.requests.inc(labels);
      try {
        const text = await provider.complete({
          ...req,
          onPart: (part) => {
            if (first) {
              first = false;
              metrics.firstToken.observe(labels, (performance.now() - started) / 1000);
            }
            req.onPart(part);
          },
        });
        metrics.duration.observe(labels, (performance.now() - started) / 1000);
        return text;
      } catch (err) {
        const kind = req.signal.aborted ? 'canceled' : err instanceof ProviderError ? providerErrorKind(err) : 'other';
        metrics.errors.inc({ provider: type, kind });
        throw err;
      }
    },
  };
}
