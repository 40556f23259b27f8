import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const binPath = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI (`bin/run.js`, i.e. dist) to completion. `npm test` builds first. */
export function runCli(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], {
      env: { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true', NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  /** Everything the server wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
}

/** Starts `coder-lite server` (dist) and resolves once it logs that it is listening. */
export function startServerProcess(args: string[], opts: { env?: Record<string, string>; detached?: boolean } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [binPath, 'server', '--http-address', '127.0.0.1:0', ...args], {
    env: { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true', NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, as a job a terminal runs in the foreground: a signal to the group reaches its children too.
    detached: opts.detached ?? false,
  });
  let stderr = '';
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /"url":"(http:\/\/[^"]+)","version"/.exec(stderr);
      if (m) resolve({ child, url: m[1]!, stderr: () => stderr, exited });
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
  });
}

/** Runs a TypeScript module snippet in a fresh Node process (to prove it exits by itself); its stdout parsed as JSON. */
export async function runScript(script: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string; output: unknown }> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearTimeout(killer);
  return { code, stderr, output: stdout ? (JSON.parse(stdout) as unknown) : undefined };
}

export interface PtyServer {
  url: string;
  /** Everything the terminal showed so far (stdout and stderr share it), without carriage returns. */
  output(): string;
  /** SIGTERM to the server, then the end of the terminal's session (which ends with it). */
  stop(): Promise<void>;
}

/**
 * Starts `coder-lite server` (dist) on a pseudo-terminal, as a person at a terminal would (util-linux `script`), and
 * resolves once it logs that it is listening, in either log format, and has answered a request: its event loop is
 * then past the start (banner written, signal handlers in place), so a SIGTERM shuts it down gracefully.
 */
export function startServerOnPty(args: string[], opts: { env?: Record<string, string> } = {}): Promise<PtyServer> {
  const quote = (a: string) => `'${a.replaceAll("'", "'\\''")}'`;
  const command = [process.execPath, binPath, 'server', '--http-address', '127.0.0.1:0', ...args].map(quote).join(' ');
  const child = spawn('script', ['-qec', command, '/dev/null'], {
    env: { ...process.env, OCLIF_SKIP_NEW_VERSION_CHECK: 'true', NO_COLOR: '1', ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let found = false;
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString().replaceAll('\r', '');
      // pino-pretty writes `url: "http://…"` under the message, JSON `"url":"http://…"`.
      const m = /coder-lite is listening[^]*?url"?: ?"(http:\/\/[^"]+)"|"url":"(http:\/\/[^"]+)","version"/.exec(output);
      if (!m || found) return;
      found = true;
      const url = (m[1] ?? m[2])!;
      // The server's own pid (pino logs it): `script` stops relaying output once it is signalled itself.
      const pid = Number(/"pid":(\d+)|INFO \((\d+)\)/.exec(output)!.slice(1).find(Boolean));
      fetch(`${url}/healthz`)
        .then(() =>
          resolve({
            url,
            output: () => output,
            stop: async () => {
              process.kill(pid, 'SIGTERM');
              await exited;
            },
          }),
        )
        .catch(reject);
    });
    void exited.then(() => reject(new Error(`server exited before listening: ${output}`)));
  });
}
