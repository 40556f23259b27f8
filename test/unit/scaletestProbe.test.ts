import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { describe, expect, it } from 'vitest';

import { remoteProbe } from '../../src/scaletest/probe.js';
import { cleanUp } from '../helpers/cleanup.js';

/** A /metrics endpoint serving fixed text. */
async function metricsServer(text: string): Promise<string> {
  const server = createServer((_req, res) => res.end(text));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanUp(() => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('remoteProbe', () => {
  it("counts a NATS daemon's notices (coder_nats_pubsub_*) as it counts PostgreSQL's (coder_pubsub_*)", async () => {
    const nats = await metricsServer(
      'coder_nats_pubsub_publishes_total{success="true"} 12\ncoder_nats_pubsub_batch_flushes_total 3\ncoder_nats_pubsub_batch_size_sum 12\n',
    );
    const postgres = await metricsServer('coder_pubsub_publishes_total{success="true"} 7\ncoder_pubsub_publishes_total{success="false"} 1\n');
    expect(await remoteProbe(nats).figures()).toMatchObject({ pubsubPublishes: 12, pubsubFlushes: 3, pubsubFlushedMessages: 12 });
    expect(await remoteProbe(postgres).figures()).toMatchObject({ pubsubPublishes: 7 });
  });

  it('reads the time spent per query name from coderlite_db_query_duration_seconds', async () => {
    const url = await metricsServer('coderlite_db_query_duration_seconds_sum{query="getChatByID"} 0.25\ncoderlite_db_query_duration_seconds_count{query="getChatByID"} 10\n');
    expect((await remoteProbe(url).figures()).querySeconds).toEqual({ getChatByID: 0.25 });
  });
});
