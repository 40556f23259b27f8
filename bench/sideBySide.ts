// Two trees' scaletests side by side on one machine within the same minutes (issue #17's goal 1): the old tree
// (a built git worktree of an earlier commit) and the new one run `scaletest run --json` in turns, and
// ../shared/bench/turn_ceiling.sh measures what PostgreSQL alone can do for a minimal turn, before and after.
//
//   git worktree add --detach /tmp/coder-lite-old <commit> && (cd /tmp/coder-lite-old && npm ci && npm run build)
//   npm run build && node --import tsx bench/sideBySide.ts --old /tmp/coder-lite-old [--runs 2] [--chats 5000] [--turns 10]
//
// Runs go old, new, new, old, old, new, … so a machine that drifts (another job starting) weighs on both alike.
// Everything after `--` is passed to both scaletests; `--old-args '…'` and `--new-args '…'` (split at spaces) to one
// only, e.g. the same tree twice: `--old . --new . --new-args '--push-encryption-threads 1'`.
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    old: { type: 'string' },
    new: { type: 'string', default: '.' },
    runs: { type: 'string', default: '2' },
    chats: { type: 'string', default: '5000' },
    turns: { type: 'string', default: '10' },
    ceiling: { type: 'string' },
    'ceiling-seconds': { type: 'string', default: '15' },
    'no-ceiling': { type: 'boolean', default: false },
    'old-args': { type: 'string', default: '' },
    'new-args': { type: 'string', default: '' },
  },
});
if (!values.old) {
  process.stderr.write(
    "usage: sideBySide.ts --old TREE [--new TREE] [--runs N] [--chats N] [--turns N] [--ceiling SCRIPT] [--no-ceiling] [--old-args '…'] [--new-args '…'] [-- scaletest args]\n",
  );
  process.exit(2);
}
const trees = { old: resolve(values.old), new: resolve(values.new) };
const runs = Number(values.runs);
const ceilingScript = values.ceiling ?? resolve(trees.new, '../shared/bench/turn_ceiling.sh');

/** The figures of one run, from its --json report; a figure the tree does not report is undefined. */
interface RunFigures {
  tree: 'old' | 'new';
  run: number;
  passed: boolean;
  turnsPerSecond: number;
  acquiresPerTurn: number;
  acquireP99Ms: number;
  daemonCpuMsPerTurn?: number;
  mainThreadCpuMsPerTurn?: number;
  postgresCpuMsPerTurn?: number;
  noticesPerTurn: number;
  framesPerTurn?: number;
}

function exec(cmd: string, args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, CI: 'true', OCLIF_SKIP_NEW_VERSION_CHECK: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

async function scaletest(tree: 'old' | 'new', run: number, outDir: string): Promise<RunFigures> {
  const own = values[`${tree}-args`].split(' ').filter(Boolean);
  const args = ['scaletest', 'run', '--chats', values.chats, '--turns', values.turns, '--json', ...positionals, ...own];
  const res = await exec(join(trees[tree], 'bin/run.js'), args, trees[tree]);
  const line = res.stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`${tree} tree, run ${run}: no JSON report (exit ${res.code}): ${res.stderr.slice(-2000)}`);
  await writeFile(join(outDir, `${tree}-${run}.json`), `${line}\n`);
  const r = JSON.parse(line) as {
    passed: boolean;
    turns: { perSecond: number; completed: number };
    pubsub: { publishes: number };
    frames?: { perTurn: number };
    pool: { acquiresPerTurn: number; acquireWaitMs: { p99: number } };
    cpu?: { daemonMsPerTurn?: number; mainThreadMsPerTurn?: number; postgresMsPerTurn?: number };
  };
  return {
    tree,
    run,
    passed: r.passed,
    turnsPerSecond: r.turns.perSecond,
    acquiresPerTurn: r.pool.acquiresPerTurn,
    acquireP99Ms: r.pool.acquireWaitMs.p99,
    daemonCpuMsPerTurn: r.cpu?.daemonMsPerTurn,
    mainThreadCpuMsPerTurn: r.cpu?.mainThreadMsPerTurn,
    postgresCpuMsPerTurn: r.cpu?.postgresMsPerTurn,
    noticesPerTurn: r.turns.completed > 0 ? r.pubsub.publishes / r.turns.completed : 0,
    framesPerTurn: r.frames?.perTurn,
  };
}

async function ceiling(): Promise<number | undefined> {
  if (values['no-ceiling']) return undefined;
  if (process.getuid?.() !== 0) {
    process.stderr.write('sideBySide: turn_ceiling.sh needs root (it runs PostgreSQL as the postgres user); skipping the ceiling\n');
    return undefined;
  }
  const res = await exec('bash', [ceilingScript, '.', '10', values['ceiling-seconds']], trees.new);
  const m = /ceiling_turns_per_s ([\d.]+)/.exec(res.stdout);
  if (!m) throw new Error(`turn_ceiling.sh printed no figure (exit ${res.code}): ${res.stdout}${res.stderr}`);
  return Number(m[1]);
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2;
}

const fmt = (v: number | undefined, digits = 2) => (v === undefined ? '—' : v.toFixed(digits));

const outDir = await mkdtemp(join(tmpdir(), 'side-by-side-'));
const results: RunFigures[] = [];
const ceilings: number[] = [];
const log = (s: string) => process.stderr.write(`sideBySide: ${s}\n`);

log(`old ${trees.old}, new ${trees.new}; ${runs} run(s) each of --chats ${values.chats} --turns ${values.turns}; reports in ${outDir}`);
const before = await ceiling();
if (before !== undefined) {
  ceilings.push(before);
  log(`ceiling before: ${before} turns/s`);
}
for (let i = 1; i <= runs; i++) {
  for (const tree of i % 2 === 1 ? (['old', 'new'] as const) : (['new', 'old'] as const)) {
    const r = await scaletest(tree, i, outDir);
    results.push(r);
    log(`${tree} run ${i}: ${r.turnsPerSecond} turns/s${r.passed ? '' : ' (FAILED)'}`);
  }
}
const after = await ceiling();
if (after !== undefined) {
  ceilings.push(after);
  log(`ceiling after: ${after} turns/s`);
}

const ceilingMean = ceilings.length > 0 ? ceilings.reduce((a, b) => a + b, 0) / ceilings.length : undefined;
const figures = [
  ['turns/s', (r: RunFigures) => r.turnsPerSecond, 1],
  ['pool acquisitions/turn', (r: RunFigures) => r.acquiresPerTurn, 2],
  ['acquire wait p99 ms', (r: RunFigures) => r.acquireP99Ms, 1],
  ['daemon CPU ms/turn', (r: RunFigures) => r.daemonCpuMsPerTurn, 3],
  ['of it main thread', (r: RunFigures) => r.mainThreadCpuMsPerTurn, 3],
  ['PostgreSQL CPU ms/turn', (r: RunFigures) => r.postgresCpuMsPerTurn, 3],
  ['notices/turn', (r: RunFigures) => r.noticesPerTurn, 2],
  ['stream frames/turn', (r: RunFigures) => r.framesPerTurn, 2],
] as const;

const rows: string[][] = [['run', ...figures.map(([name]) => name), 'passed']];
for (const r of results) rows.push([`${r.tree} ${r.run}`, ...figures.map(([, get, d]) => fmt(get(r), d)), r.passed ? 'yes' : 'NO']);
const medians = (tree: 'old' | 'new') =>
  figures.map(([, get]) => median(results.filter((r) => r.tree === tree).flatMap((r) => (get(r) !== undefined ? [get(r)!] : []))));
const oldMed = medians('old');
const newMed = medians('new');
rows.push(['old median', ...oldMed.map((v, i) => fmt(v, figures[i]![2])), '']);
rows.push(['new median', ...newMed.map((v, i) => fmt(v, figures[i]![2])), '']);
rows.push(['new / old', ...newMed.map((v, i) => (v !== undefined && oldMed[i] ? `${(v / oldMed[i]!).toFixed(2)}×` : '—')), '']);
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const out = rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
out.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
process.stdout.write(`${out.join('\n')}\n`);
if (ceilingMean !== undefined) {
  const ratio = (v: number | undefined) => (v !== undefined ? `${((v / ceilingMean) * 100).toFixed(0)}%` : '—');
  process.stdout.write(
    `ceiling (turn_ceiling.sh, 10 clients): ${ceilings.map((c) => c.toFixed(0)).join(' before, ')}${ceilings.length > 1 ? ' after' : ''}; mean ${ceilingMean.toFixed(0)} turns/s` +
      ` — old ${ratio(oldMed[0])} of it, new ${ratio(newMed[0])}\n`,
  );
}
