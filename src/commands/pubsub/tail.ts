import { Args, Flags } from '@oclif/core';

import { BaseCommand, databaseFlags } from '../../cli/base.js';
import { openCommandDatabase, resolvePostgresUrl } from '../../cli/database.js';
import { natsTargetFromFlags, pubsubFlags } from '../../cli/pubsub.js';
import { ConfigError, positiveInt } from '../../daemon/config.js';
import { createLogger, type Logger } from '../../daemon/observability/logger.js';
import { createNatsPubsub, type NatsTarget } from '../../daemon/pubsub/nats.js';
import { createPostgresPubsub } from '../../daemon/pubsub/postgres.js';
import { PubsubInputError, validateChannel, type Pubsub } from '../../daemon/pubsub/pubsub.js';
import { createTailFeed, matchesFilter, toNdjson, type TailFeed } from '../../tui/tailFeed.js';

/** Reconnects of a CLI client should not wait a minute for a server that restarts in seconds. */
const tailReconnectMaxMs = 5000;

export default class PubsubTail extends BaseCommand {
  static override summary = 'Show messages on pubsub channels as they arrive, from the database (or NATS) `coder-lite server` uses.';

  static override description = `On a terminal: a live view with per-channel rates and the count of dropped-message signals (space pauses, / filters, q quits). Otherwise, or with --json: one JSON object per line on stdout, {time, channel, size, payload}, or {time, channel, dropped: true} when messages may have been lost (after every reconnect).

When the connection is lost it reconnects (showing "reconnecting…"); against the embedded PostgreSQL of a \`coder-lite server\` it reads the server's connection details again on every attempt, so it follows a restarted server.`;

  static override examples = [
    '<%= config.bin %> pubsub tail chat:config_change',
    '<%= config.bin %> pubsub tail chat:stream:42 chat:owner:7 --filter status',
    '<%= config.bin %> pubsub tail my-channel --max 1 --json',
    '<%= config.bin %> pubsub tail chat:config_change --pubsub nats --nats-url nats://127.0.0.1:4222',
  ];

  // Any number of channels.
  static override strict = false;

  static override args = { channel: Args.string({ description: 'Channels to listen on (1 to 63 bytes each).', required: true }) };

  static override flags = {
    ...databaseFlags,
    ...pubsubFlags(['postgres', 'nats']),
    json: Flags.boolean({ description: 'NDJSON on stdout even on a terminal.' }),
    filter: Flags.string({ description: 'Only messages whose channel or payload matches this regular expression.' }),
    max: Flags.integer({ description: 'Exit after this many (matching) messages.' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(PubsubTail);
    const channels = [...new Set(argv as string[])];
    let filter: RegExp | undefined;
    let nats: NatsTarget | undefined;
    try {
      for (const ch of channels) validateChannel(ch);
      if (flags.max !== undefined) positiveInt('--max', flags.max);
      if (flags.filter !== undefined) filter = new RegExp(flags.filter);
      nats = natsTargetFromFlags(flags);
    } catch (err) {
      if (err instanceof PubsubInputError || err instanceof ConfigError || err instanceof SyntaxError) this.usageError(`invalid argument: ${err.message}`);
      throw err;
    }
    const tui = !flags.json && Boolean(process.stdout.isTTY);
    // The pubsub's own logs carry stack traces; piped output gets one line per connection change instead, and a
    // live view owns the terminal. --log-level debug brings them back.
    const debug = flags['log-level'] === 'debug' || flags['log-level'] === 'trace';
    const logger = createLogger({ level: debug && !tui ? (flags['log-level'] as 'debug') : 'silent', format: 'json' });
    const feed = createTailFeed();
    const onConnectionChange = (connected: boolean, err?: Error) => {
      feed.push({ kind: 'connection', time: new Date(), connected, reason: err?.message });
      if (!tui) process.stderr.write(connected ? 'pubsub tail: reconnected\n' : `pubsub tail: connection lost (${err?.message ?? 'unknown'}); reconnecting…\n`);
    };
    const { pubsub, close } = nats
      ? { pubsub: await createNatsPubsub({ target: nats, logger, latencyIntervalMs: 0, onConnectionChange }), close: async () => undefined }
      : await this.openPostgres(flags['postgres-url'], flags['data-dir'], logger, onConnectionChange);
    try {
      for (const channel of channels) {
        await pubsub.subscribeWithErr(channel, (payload, err) =>
          feed.push(err ? { kind: 'dropped', time: new Date(), channel } : { kind: 'message', time: new Date(), channel, payload: payload! }),
        );
      }
      if (tui) await this.runTui(channels, feed, filter, flags.max);
      else await this.runNdjson(channels, feed, filter, flags.max);
    } finally {
      await pubsub.close();
      await close();
    }
  }

  /**
   * LISTEN on the command's database. Without --postgres-url every reconnect resolves the URL again: the embedded
   * cluster of a restarted server listens on a new port.
   */
  private async openPostgres(
    postgresUrl: string | undefined,
    dataDir: string | undefined,
    logger: Logger,
    onConnectionChange: (connected: boolean, err?: Error) => void,
  ): Promise<{ pubsub: Pubsub; close: () => Promise<void> }> {
    const { db, close } = await openCommandDatabase({ postgresUrl, dataDir, logger });
    const connectionConfig = postgresUrl
      ? db.connectionConfig
      : async () => ({ ...db.connectionConfig, connectionString: (await resolvePostgresUrl({ dataDir, logger })).url });
    try {
      const pubsub = await createPostgresPubsub({
        connectionConfig,
        pool: db,
        logger,
        latencyIntervalMs: 0,
        reconnectMaxMs: tailReconnectMaxMs,
        onConnectionChange,
      });
      return { pubsub, close };
    } catch (err) {
      await close();
      throw err;
    }
  }

  private async runTui(channels: string[], feed: TailFeed, filter: RegExp | undefined, max: number | undefined): Promise<void> {
    // Loaded only for the live view, so NDJSON output starts without React.
    const [{ render }, { createElement }, { TailApp }] = await Promise.all([import('ink'), import('react'), import('../../tui/TailApp.js')]);
    const color = process.env.NO_COLOR === undefined;
    const app = render(createElement(TailApp, { channels, feed, initialFilter: filter, max, color }));
    const stop = () => app.unmount();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await app.waitUntilExit();
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  }

  private async runNdjson(channels: string[], feed: TailFeed, filter: RegExp | undefined, max: number | undefined): Promise<void> {
    process.stderr.write(`Listening on ${channels.join(', ')} (Ctrl+C to stop)\n`);
    let count = 0;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const off = feed.onEvent((event) => {
      if (event.kind === 'connection' || (max !== undefined && count >= max)) return;
      if (event.kind === 'message' && !matchesFilter(filter, event.channel, event.payload.toString('utf8'))) return;
      process.stdout.write(toNdjson(event));
      if (event.kind === 'message' && max !== undefined && ++count >= max) finish();
    });
    // `tail … | head -1`: a closed pipe is the reader saying it has enough.
    const onStdoutError = () => finish();
    process.stdout.on('error', onStdoutError);
    process.once('SIGINT', finish);
    process.once('SIGTERM', finish);
    try {
      await finished;
      // Let the last line reach the pipe before the process ends.
      await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    } finally {
      off();
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      process.stdout.off('error', onStdoutError);
    }
  }
}
