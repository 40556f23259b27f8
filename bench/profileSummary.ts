// Summarizes a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by file or package, in total and
// per turn, so a profile of a scaletest says where a turn's CPU goes.
//
//   node --max-semi-space-size=64 --cpu-prof --cpu-prof-dir=/tmp/prof ./bin/run.js scaletest run --chats 1000 --turns 5
//   node --import tsx bench/profileSummary.ts /tmp/prof/CPU.*.0.001.cpuprofile --turns 5000 [--top 25]
//
// Each thread writes its own file; the one whose name has thread id 0 (`.0.001`) is the main thread, where the
// in-process daemon runs (the chat clients and the push sink are worker threads).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { turns: { type: 'string' }, top: { type: 'string', default: '25' } },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: profileSummary.ts FILE.cpuprofile [--turns N] [--top N]\n');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as Profile;
const turns = values.turns ? Number(values.turns) : undefined;
const top = Number(values.top);

/** `node_modules/pg/lib/client.js` → `pg`; our sources by their path from src/ or dist/; Node's own as `node:…`. */
function owner(url: string): string {
  if (url === '') return '(native or VM)';
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod) return mod[1]!;
  const ours = /\/(?:src|dist)\/(.+)$/.exec(url);
  if (ours) return ours[1]!.replace(/\.js$/, '.ts');
  if (url.startsWith('node:')) return url;
  return url.replace(/^file:\/\//, '');
}

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const selfUs = new Map<number, number>();
// timeDeltas[i] is the time from sample i-1 to sample i: the time the VM was in sample i's frame.
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
const totalUs = profile.endTime - profile.startTime;

const byFunction = new Map<string, number>();
const byOwner = new Map<string, number>();
for (const [id, us] of selfUs) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const where = owner(url);
  const fn = `${functionName || '(anonymous)'}  ${where}${url ? `:${lineNumber + 1}` : ''}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  byOwner.set(where, (byOwner.get(where) ?? 0) + us);
}
const idleUs = [...byFunction].filter(([k]) => k.startsWith('(idle)')).reduce((a, [, v]) => a + v, 0);
const busyUs = totalUs - idleUs;

function print(title: string, rows: Map<string, number>): void {
  const sorted = [...rows].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top);
  process.stdout.write(`\n${title}\n`);
  process.stdout.write(`${'self ms'.padStart(9)}  ${'% busy'.padStart(6)}${turns ? `  ${'µs/turn'.padStart(8)}` : ''}  name\n`);
  for (const [name, us] of sorted) {
    const perTurn = turns ? `  ${(us / turns).toFixed(1).padStart(8)}` : '';
    process.stdout.write(`${(us / 1000).toFixed(1).padStart(9)}  ${((us / busyUs) * 100).toFixed(1).padStart(6)}${perTurn}  ${name}\n`);
  }
}

process.stdout.write(
  `profile ${(totalUs / 1e6).toFixed(2)} s, busy ${(busyUs / 1e6).toFixed(2)} s (${((busyUs / totalUs) * 100).toFixed(0)}%)` +
    `${turns ? `, ${turns} turns: ${(busyUs / turns).toFixed(0)} µs busy per turn` : ''}\n`,
);
print('by file or package (self time)', byOwner);
print('by function (self time)', byFunction);
