import { ModelAdmin, ModelInputError } from '../daemon/chat/models.js';
import { SecretBox, SecretKeyError } from '../daemon/chat/secretBox.js';
import { ConfigError } from '../daemon/config.js';
import { createLogger, type Logger } from '../daemon/observability/logger.js';
import { createNatsPubsub } from '../daemon/pubsub/nats.js';
import { publishOnce } from '../daemon/pubsub/postgres.js';
import type { Publisher } from '../daemon/pubsub/pubsub.js';
import { UserAdmin, UserInputError } from '../daemon/users/service.js';
import { BaseCommand, databaseFlags } from './base.js';
import { openCommandDatabase } from './database.js';
import { natsTargetFromFlags, pubsubFlags, type PubsubFlagValues } from './pubsub.js';

export interface AdminFlags extends PubsubFlagValues {
  'postgres-url'?: string;
  'data-dir'?: string;
}

export interface AdminContext {
  users: UserAdmin;
  models: ModelAdmin;
  close(): Promise<void>;
}

/**
 * What `users`, `tokens`, `models` and `providers` commands act through: the database, and the pubsub the servers
 * listen on, so a revocation or a config change reaches every running replica at once.
 */
export async function openAdmin(flags: AdminFlags, logger: Logger, encryptionKey?: string): Promise<AdminContext> {
  const nats = natsTargetFromFlags(flags);
  const { db, close: closeDb } = await openCommandDatabase({ postgresUrl: flags['postgres-url'], dataDir: flags['data-dir'], logger });
  let publisher: Publisher & { close?: () => Promise<void> };
  try {
    publisher = nats ? await createNatsPubsub({ target: nats, logger, latencyIntervalMs: 0 }) : { publish: (channel, payload) => publishOnce(db, channel, payload) };
  } catch (err) {
    await closeDb();
    throw err;
  }
  return {
    users: new UserAdmin({ db, publisher }),
    models: new ModelAdmin({ db, publisher, secrets: encryptionKey ? new SecretBox(encryptionKey) : undefined }),
    close: async () => {
      await publisher.close?.();
      await closeDb();
    },
  };
}

/** The flags of every admin command: where the database is, and which pubsub the servers use. */
export const adminFlags = { ...databaseFlags, ...pubsubFlags(['postgres', 'nats']) };

/** A command that changes users, tokens or models: opens the admin context for `fn` and closes it after. */
export abstract class AdminCommand extends BaseCommand {
  protected async withAdmin<T>(flags: AdminFlags & { 'log-level': string }, fn: (ctx: AdminContext) => Promise<T>, encryptionKey?: string): Promise<T> {
    const logger = createLogger({ level: flags['log-level'] as 'info', format: 'json' });
    let ctx: AdminContext;
    try {
      ctx = await openAdmin(flags, logger, encryptionKey);
    } catch (err) {
      if (err instanceof ConfigError) this.usageError(err.message);
      throw err;
    }
    try {
      return await fn(ctx);
    } catch (err) {
      // A value that cannot work is a usage error (exit 2); a name taken or not found is a failure (exit 1).
      if (err instanceof UserInputError || err instanceof ModelInputError || err instanceof SecretKeyError) this.usageError(err.message);
      throw err;
    } finally {
      await ctx.close();
    }
  }

  /** Rows as an aligned table on stdout (the data); nothing under --json, which prints the returned value. */
  protected table(headers: string[], rows: string[][]): void {
    if (this.jsonEnabled()) return;
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
    process.stdout.write(`${[line(headers), ...rows.map(line)].join('\n')}\n`);
  }
}
