import { Args } from '@oclif/core';

import { BaseCommand, databaseFlags } from '../../cli/base.js';
import { openCommandDatabase } from '../../cli/database.js';
import { natsTargetFromFlags, pubsubFlags } from '../../cli/pubsub.js';
import { ConfigError } from '../../daemon/config.js';
import { createLogger } from '../../daemon/observability/logger.js';
import { createNatsPubsub, type NatsTarget } from '../../daemon/pubsub/nats.js';
import { publishOnce } from '../../daemon/pubsub/postgres.js';
import { PubsubInputError, validateChannel, validatePayload } from '../../daemon/pubsub/pubsub.js';

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export default class PubsubPublish extends BaseCommand {
  static override summary = 'Publish MESSAGE on a pubsub CHANNEL (PostgreSQL NOTIFY, or NATS with --pubsub nats).';

  static override description = 'With MESSAGE "-", the message is read from stdin (one trailing newline is dropped).';

  static override examples = [
    `<%= config.bin %> pubsub publish chat:config_change '{}'`,
    'echo \'{"status":"waiting"}\' | <%= config.bin %> pubsub publish chat:stream:42 -',
    '<%= config.bin %> pubsub publish my-channel hello --postgres-url postgres://coder:secret@db:5432/coder',
    '<%= config.bin %> pubsub publish my-channel hello --pubsub nats --nats-url nats://127.0.0.1:4222',
  ];

  static override args = {
    channel: Args.string({ description: 'Channel (1 to 63 bytes).', required: true }),
    message: Args.string({ description: "Payload (valid UTF-8, no NUL, under 8000 bytes; on NATS up to the server's max_payload), or - for stdin.", required: true }),
  };

  static override flags = { ...databaseFlags, ...pubsubFlags(['postgres', 'nats']) };

  static override enableJsonFlag = true;

  async run(): Promise<{ channel: string; bytes: number; backend: string }> {
    const { args, flags } = await this.parse(PubsubPublish);
    const payload = args.message === '-' ? stripNewline(await readStdin()) : args.message;
    let nats: NatsTarget | undefined;
    try {
      nats = natsTargetFromFlags(flags);
      validateChannel(args.channel);
      // NATS's size limit is its server's, known once connected.
      if (!nats) validatePayload(payload);
    } catch (err) {
      if (err instanceof PubsubInputError || err instanceof ConfigError) this.usageError(err.message);
      throw err;
    }
    const logger = createLogger({ level: flags['log-level'] as 'info', format: 'json' });
    if (nats) {
      const pubsub = await createNatsPubsub({ target: nats, logger, latencyIntervalMs: 0 });
      try {
        await pubsub.publish(args.channel, payload);
      } catch (err) {
        if (err instanceof PubsubInputError) this.usageError(err.message);
        throw err;
      } finally {
        // Flushes: the message is on the server when the command exits.
        await pubsub.close();
      }
      return { channel: args.channel, bytes: Buffer.byteLength(payload), backend: 'nats' };
    }
    const { db, close } = await openCommandDatabase({ postgresUrl: flags['postgres-url'], dataDir: flags['data-dir'], logger });
    try {
      await publishOnce(db, args.channel, payload);
    } finally {
      await close();
    }
    return { channel: args.channel, bytes: Buffer.byteLength(payload), backend: 'postgres' };
  }
}

function stripNewline(buf: Buffer): Buffer {
  return buf.at(-1) === 0x0a ? buf.subarray(0, buf.at(-2) === 0x0d ? -2 : -1) : buf;
}
