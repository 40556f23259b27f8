import { writeFile } from 'node:fs/promises';

import { Flags, type Interfaces } from '@oclif/core';
import { createElement } from 'react';

import { BaseCommand } from '../../cli/base.js';
import { ExitCode } from '../../cli/exitCodes.js';
import { durationFlag, FlagValueError, httpAddressFlag, httpUrlFlag, intFlag, numberFlag, postgresUrlFlag } from '../../cli/flags.js';
import { natsTargetFromFlags, pubsubFlags } from '../../cli/pubsub.js';
import { ConfigError, parseHttpAddress } from '../../daemon/config.js';
import { createLogger } from '../../daemon/observability/logger.js';
import { defaultEncryptionThreads } from '../../daemon/webpush/config.js';
import { renderHtml } from '../../scaletest/html.js';
import { startLlmMockWorker } from '../../scaletest/llmMockWorker.js';
import { runMetadata } from '../../scaletest/metadata.js';
import { startPushSinkWorker } from '../../scaletest/pushSinkWorker.js';
import { formatText, summaryLine, type ScaletestReport } from '../../scaletest/report.js';
import { runScaletest, ScaletestSetupError, type LiveProgress, type ScaletestOptions, type Target } from '../../scaletest/runner.js';
import { parseThreshold, thresholdMetrics, type Threshold } from '../../scaletest/thresholds.js';
import { progressLine } from '../../tui/ScaletestProgress.js';

export default class ScaletestRun extends BaseCommand {
  static override summary = 'Drive chats through a daemon and report where the database pool is spent.';

  static override description = `Each chat opens its stream, sends a message, waits for \`waiting\`, and repeats --turns times; every user's push subscriptions point at a loopback push sink that decrypts and counts each notification. The model is a built-in OpenAI-compatible mock on loopback, used through the daemon's real openai-compat provider.

By default an in-process daemon runs on a throwaway embedded PostgreSQL (or on --postgres-url); --url and --token drive a running \`coder-lite server\` instead (pool figures then come from its /metrics).

With --url the chats made are archived and the push subscriptions deleted afterwards (--no-cleanup keeps them).

Prints a report on stdout and, last, one line \`SCALETEST_SUMMARY=<json>\` (--json: the report as one JSON line before it). Exit codes: 0 all passed; 1 a chat failed (or the setup did); 2 usage; 99 a --threshold failed; 130 interrupted (Ctrl-C stops the run and still prints the partial report).`;

  static override examples = [
    '<%= config.bin %> scaletest run',
    '<%= config.bin %> scaletest run --chats 50 --turns 3 --report scaletest.html',
    '<%= config.bin %> scaletest run --no-config-cache --no-subscription-cache   # reproduce the starvation',
    "<%= config.bin %> scaletest run --threshold 'turn_duration.p95<2000' --threshold 'queries_per_turn<=12' --threshold 'push_delivery.rate>=0.99'   # gate a release",
    '<%= config.bin %> scaletest run --chats 600 --turns 1 --rate 20 --concurrency 200   # open loop: 20 new turns/s',
    "<%= config.bin %> scaletest run --prompt 'Write a haiku' --prompt 'Now in French'",
    '<%= config.bin %> scaletest compare before.json after.json',
    '<%= config.bin %> scaletest run --chats 1000 --turns 5 --pubsub nats --nats-url nats://127.0.0.1:4222',
    '<%= config.bin %> scaletest run --url http://127.0.0.1:3000 --token "$TOKEN" --llm-address 127.0.0.1:8090',
  ];

  static override flags = {
    chats: intFlag({ description: 'Chats to run.', min: 1, max: 1_000_000, default: 5000 }),
    turns: intFlag({ description: 'Turns (messages) per chat.', min: 1, max: 10_000, default: 10 }),
    concurrency: intFlag({ description: 'Chats active at once; they start together behind a barrier (with --rate: the most at once). [default: all]', min: 1, max: 1_000_000 }),
    rate: numberFlag({
      description: 'Open loop: start this many new chats per second, whether or not earlier ones are done (with --turns 1: new turns per second). Without it the loop is closed: --concurrency chats, each starting its next turn when the last ended.',
      positive: true,
    }),
    prompt: Flags.string({ description: 'The message of turn 1; repeat for follow-ups (turn n sends the n-th, cycling). [default: a numbered filler]', multiple: true }),
    users: intFlag({ description: 'Chat owners, each with its push subscriptions. [default: chats/10]', min: 1, max: 1_000_000 }),
    'push-subscriptions-per-user': intFlag({ description: 'Push subscriptions per user, all to the loopback push sink; 0 for none.', min: 0, max: 100, default: 1 }),
    'llm-latency': durationFlag({ description: "The LLM mock's delay before the first token (e.g. 50ms).", default: 50 }),
    'llm-tokens': intFlag({ description: 'Tokens per LLM reply (each a message_part).', min: 1, max: 10_000, default: 8 }),
    timeout: durationFlag({ description: 'Stop the whole run after this long; unfinished chats fail as timeout.', default: 30 * 60_000 }),
    'turn-timeout': durationFlag({ description: 'A turn that has not reached waiting after this long fails its chat as timeout.', default: 60_000 }),
    url: httpUrlFlag({
      description:
        'Drive a running daemon at this URL instead of an in-process one (needs --token). Repeat it for replicas on one PostgreSQL: chats spread over them, and each streams from another replica than the one it talks to.',
      multiple: true,
      env: 'CODER_LITE_URL',
      dependsOn: ['token'],
      exclusive: ['postgres-url', 'postgres-pool-max', 'push-encryption-threads', 'config-cache', 'subscription-cache', 'pubsub', 'nats-url', 'users'],
    }),
    token: Flags.string({ description: 'API token for --url; every chat belongs to its user.', env: 'CODER_LITE_TOKEN', dependsOn: ['url'] }),
    'llm-address': httpAddressFlag({
      description: 'With --url: run the LLM mock on this host:port, for a daemon started with --chat-provider openai-compat --llm-base-url http://<host:port>/v1.',
      dependsOn: ['url'],
    }),
    cleanup: Flags.boolean({
      description: 'With --url: archive the chats and delete the push subscriptions the run made (--no-cleanup keeps them to look at).',
      default: true,
      allowNo: true,
    }),
    'postgres-url': postgresUrlFlag({ description: 'PostgreSQL for the in-process daemon. [default: a throwaway embedded PostgreSQL]', env: 'CODER_LITE_POSTGRES_URL' }),
    'postgres-pool-max': intFlag({ description: "The in-process daemon's pool size.", min: 1, max: 1000, default: 10 }),
    ...pubsubFlags(['postgres', 'nats']),
    'push-encryption-threads': intFlag({
      description:
        "The in-process daemon's worker threads for push encryption (server --webpush-encryption-threads); 0 encrypts on its main thread. [default: 1 with two or more cores, else 0]",
      min: 0,
      max: 64,
    }),
    'config-cache': Flags.boolean({ description: "The in-process daemon's chat config cache (--no-config-cache re-reads config every turn).", default: true, allowNo: true }),
    'subscription-cache': Flags.boolean({
      description: "The in-process daemon's web push subscription cache (--no-subscription-cache re-reads subscriptions every push).",
      default: true,
      allowNo: true,
    }),
    report: Flags.string({ description: 'Also write a self-contained HTML report with charts to this file.' }),
    threshold: Flags.custom<Threshold>({
      description: `A release gate, as k6 writes them: metric.stat<limit (<, <=, >, >=, ==; latencies in ms); repeatable; exit 99 when one fails. Metrics: ${Object.entries(
        thresholdMetrics,
      )
        .map(([m, stats]) => `${m}.{${Object.keys(stats).join(',')}}`)
        .join(', ')}.`,
      multiple: true,
      parse: async (input) => {
        try {
          return parseThreshold(input);
        } catch (err) {
          throw new FlagValueError((err as Error).message, { cause: err });
        }
      },
    })(),
    'max-queries-per-turn': intFlag({ description: 'Shorthand for --threshold queries_per_turn<=N.', min: 0, max: 1_000_000 }),
    'max-pool-wait-p99': numberFlag({ description: 'Shorthand for --threshold pool_acquire_wait.p99<=MS.' }),
  };

  static override enableJsonFlag = true;

  async run(): Promise<ScaletestReport> {
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
        process.exit(ExitCode.interrupted);
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
    if (!this.jsonEnabled()) {
      process.stdout.write(formatText(report));
      process.stdout.write(`${summaryLine(report)}\n`);
    }
    // Set, not exit(): oclif still prints the --json result after run() returns.
    process.exitCode = scaletestExitCode(report);
    return report;
  }

  /** The report on one line, then the SCALETEST_SUMMARY line CI greps for. */
  override logJson(json: unknown): void {
    process.stdout.write(`${JSON.stringify(json)}\n`);
    if (json && typeof json === 'object' && 'chats' in json) process.stdout.write(`${summaryLine(json as ScaletestReport)}\n`);
  }

  private options(flags: Interfaces.InferredFlags<typeof ScaletestRun.flags>): Omit<ScaletestOptions, 'logger' | 'signal' | 'onProgress'> {
    const thresholds = [...(flags.threshold ?? [])];
    if (flags['max-queries-per-turn'] !== undefined) thresholds.push(parseThreshold(`queries_per_turn<=${flags['max-queries-per-turn']}`));
    if (flags['max-pool-wait-p99'] !== undefined) thresholds.push(parseThreshold(`pool_acquire_wait.p99<=${flags['max-pool-wait-p99']}`));
    let target: Target;
    if (flags.url !== undefined) {
      const llmAddress = flags['llm-address'] !== undefined ? parseHttpAddress(flags['llm-address']) : undefined;
      target = { kind: 'remote', urls: flags.url.map((u) => new URL(u).origin), token: flags.token!, llmAddress };
    } else {
      const nats = natsTargetFromFlags(flags);
      target = { kind: 'in-process', postgresUrl: flags['postgres-url'], postgresPoolMax: flags['postgres-pool-max'], nats };
    }
    return {
      target,
      chats: flags.chats,
      turns: flags.turns,
      concurrency: flags.concurrency,
      users: flags.users,
      rate: flags.rate,
      prompts: flags.prompt,
      pushSubscriptionsPerUser: flags['push-subscriptions-per-user'],
      llmLatencyMs: flags['llm-latency'],
      llmTokens: flags['llm-tokens'],
      timeoutMs: flags.timeout,
      turnTimeoutMs: flags['turn-timeout'],
      configCache: flags['config-cache'],
      subscriptionCache: flags['subscription-cache'],
      pushEncryptionThreads: flags['push-encryption-threads'] ?? defaultEncryptionThreads,
      thresholds,
      cleanup: flags.cleanup,
      meta: runMetadata(this.argv),
      startPushSink: startPushSinkWorker,
      startLlmMock: startLlmMockWorker,
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

/** Interrupted 130, failed chats 1, a failed threshold 99 (k6's code), else 0. */
export function scaletestExitCode(r: ScaletestReport): number {
  if (r.interrupted) return ExitCode.interrupted;
  if (r.chats.failed > 0 || r.chats.passed < r.chats.total) return ExitCode.failure;
  if (r.thresholds.some((t) => !t.passed)) return ExitCode.thresholdsFailed;
  return ExitCode.ok;
}

interface ProgressView {
  update(p: LiveProgress): void;
  stopping(): void;
  close(): void;
}
