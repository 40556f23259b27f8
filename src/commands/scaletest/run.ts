import { writeFile } from 'node:fs/promises';

import { Flags, type Interfaces } from '@oclif/core';
import { createElement } from 'react';

import { BaseCommand } from '../../cli/base.js';
import { natsTargetFromFlags, pubsubFlags } from '../../cli/pubsub.js';
import { ConfigError, parseDuration, parseHttpAddress, parsePostgresUrl, positiveInt } from '../../daemon/config.js';
import { createLogger } from '../../daemon/observability/logger.js';
import { renderHtml } from '../../scaletest/html.js';
import { startPushSinkWorker } from '../../scaletest/pushSinkWorker.js';
import { formatText, summaryLine, type ScaletestReport } from '../../scaletest/report.js';
import { runScaletest, ScaletestSetupError, type LiveProgress, type ScaletestOptions, type Target } from '../../scaletest/runner.js';
import { progressLine } from '../../tui/ScaletestProgress.js';

export default class ScaletestRun extends BaseCommand {
  static override summary = 'Drive chats through a daemon and report where the database pool is spent.';

  static override description = `Each chat opens its stream, sends a message, waits for \`waiting\`, and repeats --turns times; every user's push subscriptions point at a loopback push sink that decrypts and counts each notification. The model is a built-in OpenAI-compatible mock on loopback, used through the daemon's real openai-compat provider.

By default an in-process daemon runs on a throwaway embedded PostgreSQL (or on --postgres-url); --url and --token drive a running \`coder-lite server\` instead (pool figures then come from its /metrics).

Prints a report on stdout and, last, one line \`SCALETEST_SUMMARY=<json>\`. Exit code 0 when every chat passed and every gate (--max-queries-per-turn, --max-pool-wait-p99) held, 1 otherwise. Ctrl-C stops the run and still prints the partial report.`;

  static override examples = [
    '<%= config.bin %> scaletest run',
    '<%= config.bin %> scaletest run --chats 50 --turns 3 --report scaletest.html',
    '<%= config.bin %> scaletest run --no-config-cache --no-subscription-cache   # reproduce the starvation',
    '<%= config.bin %> scaletest run --max-queries-per-turn 12 --max-pool-wait-p99 5   # gate a release',
    '<%= config.bin %> scaletest run --chats 1000 --turns 5 --pubsub nats --nats-url nats://127.0.0.1:4222',
    '<%= config.bin %> scaletest run --url http://127.0.0.1:3000 --token "$TOKEN" --llm-address 127.0.0.1:8090',
  ];

  static override flags = {
    chats: Flags.integer({ description: 'Chats to run.', default: 5000 }),
    turns: Flags.integer({ description: 'Turns (messages) per chat.', default: 10 }),
    concurrency: Flags.integer({ description: 'Chats active at once; they start together behind a barrier. [default: all]' }),
    users: Flags.integer({ description: 'Chat owners, each with its push subscriptions. [default: chats/10]' }),
    'push-subscriptions-per-user': Flags.integer({ description: 'Push subscriptions per user, all to the loopback push sink; 0 for none.', default: 1 }),
    'llm-latency': Flags.string({ description: "The LLM mock's delay before the first token (e.g. 50ms).", default: '50ms' }),
    'llm-tokens': Flags.integer({ description: 'Tokens per LLM reply (each a message_part).', default: 8 }),
    timeout: Flags.string({ description: 'Stop the whole run after this long; unfinished chats fail as timeout.', default: '30m' }),
    'turn-timeout': Flags.string({ description: 'A turn that has not reached waiting after this long fails its chat as timeout.', default: '60s' }),
    url: Flags.string({ description: 'Drive a running daemon at this URL instead of an in-process one (needs --token).', env: 'CODER_LITE_URL' }),
    token: Flags.string({ description: 'API token for --url; every chat belongs to its user.', env: 'CODER_LITE_TOKEN' }),
    'llm-address': Flags.string({
      description: 'With --url: run the LLM mock on this host:port, for a daemon started with --chat-provider openai-compat --llm-base-url http://<host:port>/v1.',
    }),
    'postgres-url': Flags.string({ description: 'PostgreSQL for the in-process daemon. [default: a throwaway embedded PostgreSQL]', env: 'CODER_LITE_POSTGRES_URL' }),
    'postgres-pool-max': Flags.integer({ description: "The in-process daemon's pool size.", default: 10 }),
    ...pubsubFlags(['postgres', 'nats']),
    'config-cache': Flags.boolean({ description: "The in-process daemon's chat config cache (--no-config-cache re-reads config every turn).", default: true, allowNo: true }),
    'subscription-cache': Flags.boolean({
      description: "The in-process daemon's web push subscription cache (--no-subscription-cache re-reads subscriptions every push).",
      default: true,
      allowNo: true,
    }),
    json: Flags.boolean({ description: 'The report as one JSON object on one line of stdout, before the SCALETEST_SUMMARY line.' }),
    report: Flags.string({ description: 'Also write a self-contained HTML report with charts to this file.' }),
    'max-queries-per-turn': Flags.integer({ description: 'Fail (exit 1) when the queries per turn exceed this.' }),
    'max-pool-wait-p99': Flags.string({ description: 'Fail (exit 1) when the pool acquire wait p99 exceeds this many milliseconds.' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ScaletestRun);
    let options: Omit<ScaletestOptions, 'logger' | 'signal' | 'onProgress'>;
    try {
      options = this.options(flags);
    } catch (err) {
      if (err instanceof ConfigError) this.usageError(err.message);
      throw err;
    }

    const tui = Boolean(process.stderr.isTTY) && process.env.CI === undefined;
    // A live view owns the terminal: logs would tear it.
    const logger = createLogger({ level: tui ? 'silent' : (flags['log-level'] as 'info'), format: 'json' });
    const stop = new AbortController();
    const onSignal = () => {
      if (stop.signal.aborted) {
        // A second Ctrl-C means now; the embedded cluster is stopped by its exit hook.
        process.stderr.write('scaletest: stopped without a report\n');
        process.exit(130);
      }
      view.stopping();
      stop.abort();
    };
    const view = tui ? await this.startView(onSignal) : this.startLines();
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);

    let report: ScaletestReport;
    try {
      report = await runScaletest({ ...options, logger, signal: stop.signal, onProgress: view.update });
    } catch (err) {
      if (err instanceof ScaletestSetupError) throw new Error(`scaletest setup failed: ${err.message}`, { cause: err.cause });
      throw err;
    } finally {
      view.close();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }

    if (flags.report) {
      await writeFile(flags.report, renderHtml(report));
      process.stderr.write(`scaletest: wrote the HTML report to ${flags.report}\n`);
    }
    process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatText(report));
    process.stdout.write(`${summaryLine(report)}\n`);
    await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
    if (!report.passed) this.exit(1);
  }

  private options(flags: Interfaces.InferredFlags<typeof ScaletestRun.flags>): Omit<ScaletestOptions, 'logger' | 'signal' | 'onProgress'> {
    positiveInt('--chats', flags.chats);
    positiveInt('--turns', flags.turns, 10_000);
    if (flags.concurrency !== undefined) positiveInt('--concurrency', flags.concurrency);
    if (flags.users !== undefined) positiveInt('--users', flags.users);
    if (flags['push-subscriptions-per-user'] < 0 || flags['push-subscriptions-per-user'] > 100) {
      throw new ConfigError(`invalid --push-subscriptions-per-user ${flags['push-subscriptions-per-user']}: expected 0 to 100`);
    }
    positiveInt('--llm-tokens', flags['llm-tokens'], 10_000);
    positiveInt('--postgres-pool-max', flags['postgres-pool-max'], 1000);
    let maxPoolWaitP99Ms: number | undefined;
    if (flags['max-pool-wait-p99'] !== undefined) {
      maxPoolWaitP99Ms = Number(flags['max-pool-wait-p99']);
      if (!Number.isFinite(maxPoolWaitP99Ms) || maxPoolWaitP99Ms < 0) {
        throw new ConfigError(`invalid --max-pool-wait-p99 "${flags['max-pool-wait-p99']}": expected milliseconds, e.g. 5 or 2.5`);
      }
    }
    if (flags['max-queries-per-turn'] !== undefined && flags['max-queries-per-turn'] < 0) {
      throw new ConfigError(`invalid --max-queries-per-turn ${flags['max-queries-per-turn']}: expected 0 or more`);
    }
    let target: Target;
    if (flags.url !== undefined) {
      let url: URL;
      try {
        url = new URL(flags.url);
      } catch {
        throw new ConfigError(`invalid --url "${flags.url}": expected e.g. http://127.0.0.1:3000`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`invalid --url "${flags.url}": the scheme must be http or https`);
      if (!flags.token) throw new ConfigError('--url needs --token (or CODER_LITE_TOKEN): the API token of the user the chats belong to');
      for (const local of ['postgres-url', 'config-cache', 'subscription-cache', 'pubsub', 'nats-url'] as const) {
        if (this.argv.some((a) => a === `--${local}` || a === `--no-${local}` || a.startsWith(`--${local}=`))) {
          throw new ConfigError(`--${local} configures the in-process daemon; it cannot be used with --url`);
        }
      }
      const llmAddress = flags['llm-address'] !== undefined ? parseHttpAddress(flags['llm-address']) : undefined;
      target = { kind: 'remote', url: url.origin, token: flags.token, llmAddress };
    } else {
      if (flags.token !== undefined && this.argv.some((a) => a === '--token' || a.startsWith('--token='))) throw new ConfigError('--token needs --url');
      if (flags['llm-address'] !== undefined) throw new ConfigError('--llm-address is for --url runs; the in-process daemon gets its own mock');
      if (flags['postgres-url']) parsePostgresUrl(flags['postgres-url']);
      const nats = natsTargetFromFlags(flags);
      target = { kind: 'in-process', postgresUrl: flags['postgres-url'], postgresPoolMax: flags['postgres-pool-max'], nats };
    }
    return {
      target,
      chats: flags.chats,
      turns: flags.turns,
      concurrency: flags.concurrency,
      users: flags.users,
      pushSubscriptionsPerUser: flags['push-subscriptions-per-user'],
      llmLatencyMs: parseDuration('--llm-latency', flags['llm-latency']),
      llmTokens: flags['llm-tokens'],
      timeoutMs: parseDuration('--timeout', flags.timeout),
      turnTimeoutMs: parseDuration('--turn-timeout', flags['turn-timeout']),
      configCache: flags['config-cache'],
      subscriptionCache: flags['subscription-cache'],
      gates: { maxQueriesPerTurn: flags['max-queries-per-turn'], maxPoolWaitP99Ms },
      startPushSink: startPushSinkWorker,
      clientThread: true,
    };
  }

  /** The Ink view on stderr, so stdout carries only the report. Ctrl-C and q reach `interrupt` as keys in raw mode. */
  private async startView(interrupt: () => void): Promise<ProgressView> {
    const [{ render }, { ScaletestProgress }] = await Promise.all([import('ink'), import('../../tui/ScaletestProgress.js')]);
    const color = process.env.NO_COLOR === undefined;
    let app: ReturnType<typeof render> | undefined;
    let last: LiveProgress | undefined;
    let stopping = false;
    const draw = () => {
      if (!last) return;
      const element = createElement(ScaletestProgress, { progress: last, color, stopping, onInterrupt: interrupt });
      if (app) app.rerender(element);
      else app = render(element, { stdout: process.stderr, exitOnCtrlC: false, patchConsole: false });
    };
    return {
      update: (p) => {
        last = p;
        draw();
      },
      stopping: () => {
        stopping = true;
        draw();
      },
      close: () => app?.unmount(),
    };
  }

  /** Without a terminal: a line on stderr at each phase and every few seconds while running. */
  private startLines(): ProgressView {
    let last: LiveProgress | undefined;
    let lastPhase: string | undefined;
    const timer = setInterval(() => last?.phase === 'running' && process.stderr.write(`${progressLine(last)}\n`), 5000);
    return {
      update: (p) => {
        // The last line of a run shows its final figures, before the phase moves on.
        if (lastPhase === 'running' && p.phase !== 'running' && last) process.stderr.write(`${progressLine(last)}\n`);
        last = p;
        if (p.phase !== lastPhase && p.phase !== 'running') process.stderr.write(`${progressLine(p)}\n`);
        lastPhase = p.phase;
      },
      stopping: () => process.stderr.write('scaletest: stopping; the partial report follows\n'),
      close: () => clearInterval(timer),
    };
  }
}

interface ProgressView {
  update(p: LiveProgress): void;
  stopping(): void;
  close(): void;
}
