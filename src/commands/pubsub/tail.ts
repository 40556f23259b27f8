import { Args, Flags } from '@oclif/core';

import { BaseCommand, databaseFlags } from '../../cli/base.js';
import { openCommandDatabase } from '../../cli/database.js';
import { ConfigError, positiveInt } from '../../daemon/config.js';
import { createLogger } from '../../daemon/observability/logger.js';
import { createPostgresPubsub } from '../../daemon/pubsub/postgres.js';
import { PubsubInputError, validateChannel } from '../../daemon/pubsub/pubsub.js';
import { createTailFeed, matchesFilter, toNdjson, type TailFeed } from '../../tui/tailFeed.js';

export default class PubsubTail extends BaseCommand {
  static override summary = 'Show messages on pubsub channels as they arrive, from the database `coder-lite server` uses.';

  static override description = `On a terminal: a live view with per-channel rates and the count of dropped-message signals (space pauses, / filters, q quits). Otherwise, or with --json: one JSON object per line on stdout, {time, channel, size, payload}, or {time, channel, dropped: true} when messages may have been lost.`;

  static override examples = [
    '<%= config.bin %> pubsub tail chat:config_change',
    '<%= config.bin %> pubsub tail chat:stream:42 chat:owner:7 --filter status',
    '<%= config.bin %> pubsub tail my-channel --max 1 --json',
  ];

  // Any number of channels.
  static override strict = false;

  static override args = { channel: Args.string({ description: 'Channels to listen on (1 to 63 bytes each).', required: true }) };

  static override flags = {
    ...databaseFlags,
    json: Flags.boolean({ description: 'NDJSON on stdout even on a terminal.' }),
    filter: Flags.string({ description: 'Only messages whose channel or payload matches this regular expression.' }),
    max: Flags.integer({ description: 'Exit after this many (matching) messages.' }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(PubsubTail);
    const channels = [...new Set(argv as string[])];
    let filter: RegExp | undefined;
    try {
      for (const ch of channels) validateChannel(ch);
      if (flags.max !== undefined) positiveInt('--max', flags.max);
      if (flags.filter !== undefined) filter = new RegExp(flags.filter);
    } catch (err) {
      if (err instanceof PubsubInputError || err instanceof ConfigError || err instanceof SyntaxError) this.usageError(`invalid argument: ${err.message}`);
      throw err;
    }
    const tui = !flags.json && Boolean(process.stdout.isTTY);
    // A live view owns the terminal: logs would tear it.
    const logger = createLogger({ level: tui ? 'silent' : (flags['log-level'] as 'info'), format: 'json' });
    const { db, close } = await openCommandDatabase({ postgresUrl: flags['postgres-url'], dataDir: flags['data-dir'], logger });
    try {
      const pubsub = await createPostgresPubsub({ connectionConfig: db.connectionConfig, pool: db, logger, latencyIntervalMs: 0 });
      try {
        const feed = createTailFeed();
        for (const channel of channels) {
          await pubsub.subscribeWithErr(channel, (payload, err) =>
            feed.push(err ? { kind: 'dropped', time: new Date(), channel } : { kind: 'message', time: new Date(), channel, payload: payload! }),
          );
        }
        if (tui) await this.runTui(channels, feed, filter, flags.max);
        else await this.runNdjson(channels, feed, filter, flags.max);
      } finally {
        await pubsub.close();
      }
    } finally {
      await close();
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
      if (max !== undefined && count >= max) return;
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
